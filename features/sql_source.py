"""A source opened on a SQL engine, as `leadscore features build` and `score` use it.

:func:`sql_source` resolves ``--engine auto``, converts a source that is not canonical Parquet
(a leadforge bundle, a CRM export, a flat file) into a temporary canonical directory first
(what ``leadscore data convert`` writes; keep it with that command to skip this step next
time), registers the tables on the engine and checks them against the contract there
(:func:`~leadscore.features.sql_contract.validate_views`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from leadscore.features.config import FeatureConfig
from leadscore.features.engines import (
    DEFAULT_CHUNK_ROWS,
    EngineName,
    SqlEngine,
    canonical_parquet,
    canonical_views,
    open_engine,
)
from leadscore.features.sql_contract import validate_views

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local (pandas), duckdb (canonical Parquet, out of core), spark (the [spark] "
        "extra), or auto: DuckDB for canonical Parquet above 256 MiB, else local.",
    ),
]
MemoryLimitOpt = Annotated[
    str | None,
    typer.Option(help="DuckDB's memory limit (e.g. 4GB): it spills to disk beyond it."),
]
ChunkRowsOpt = Annotated[
    int,
    typer.Option(min=1, help="Leads per chunk on a SQL engine (peak memory grows with it)."),
]
DEFAULT_CHUNKS = DEFAULT_CHUNK_ROWS


def engine_name(text: str) -> EngineName:
    """`--engine` checked: one of auto, local, duckdb, spark."""
    from leadscore.features.engines import ENGINES
    from leadscore.features.errors import UsageProblem

    if text not in ENGINES:
        raise UsageProblem(f"--engine {text!r}: expected one of {', '.join(ENGINES)}")
    return text


@contextmanager
def sql_source(
    engine: EngineName,
    data: Path,
    mapping: Path | None,
    config: FeatureConfig,
    memory_limit: str | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> Iterator[SqlEngine]:
    """`data` registered and validated on a SQL engine (its canonical views)."""
    with tempfile.TemporaryDirectory(prefix="leadscore-canonical-") as scratch:
        directory = data
        if mapping is not None or canonical_parquet(data) is None:
            directory = _converted(data, mapping, config, Path(scratch), note)
        sql = open_engine(engine, memory_limit=memory_limit)
        try:
            tables = canonical_views(sql, directory, config)
            validate_views(sql, tables, config)
            yield sql
        finally:
            sql.close()


def _converted(
    data: Path,
    mapping: Path | None,
    config: FeatureConfig,
    scratch: Path,
    note: Callable[[str], None],
) -> Path:
    from leadscore.features.sources import load_data
    from leadscore.features.sources.canonical import write_canonical

    note(f"{data} is not canonical Parquet: converting it first (`leadscore data convert "
         "--data SOURCE --out DIR` keeps it for the next run)")  # fmt: skip
    crm, _ = load_data(data, mapping, config)
    return write_canonical(crm, scratch / "canonical")
