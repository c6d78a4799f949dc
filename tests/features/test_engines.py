"""The SQL engines over canonical Parquet: the same contract errors as the local path, the same
snapshot in the same order, streamed in chunks, and `--engine auto`'s choice."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.features import engines
from leadscore.features.config import FeatureConfig
from leadscore.features.engines import (
    DuckDBEngine,
    canonical_views,
    choose_engine,
    moments_view,
    open_engine,
    snapshot_batches,
)
from leadscore.features.schema import DataContractError
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import from_frames, load_source
from leadscore.features.sources.canonical import load_canonical, write_canonical
from leadscore.features.spec import build_spec
from leadscore.features.sql_contract import validate_views

SQL_ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
Tables = dict[str, pd.DataFrame]


@pytest.fixture(params=SQL_ENGINES)
def sql_engine(request: pytest.FixtureRequest) -> Iterator[engines.SqlEngine]:
    if request.param == "spark" and importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (the [spark] extra)")
    engine = open_engine(request.param)
    yield engine
    engine.close()


def _canonical(tmp_path: Path, tables: Tables, config: FeatureConfig) -> Path:
    """Valid tiny tables written as canonical Parquet, as `leadscore data convert` does."""
    return write_canonical(from_frames(tables, config), tmp_path / "canonical")


def _break(directory: Path, table: str, change: Callable[[pd.DataFrame], None]) -> None:
    """Rewrite one table file after `change` (a bad value a real export could hold)."""
    frame = pd.read_parquet(directory / f"{table}.parquet")
    change(frame)
    frame.to_parquet(directory / f"{table}.parquet", index=False)


def _problems_local(directory: Path, config: FeatureConfig) -> list[str]:
    with pytest.raises(DataContractError) as caught:
        load_canonical(directory, config)
    return caught.value.lines()


def _problems_sql(engine: engines.SqlEngine, directory: Path, config: FeatureConfig) -> list[str]:
    tables = canonical_views(engine, directory, config)
    with pytest.raises(DataContractError) as caught:
        validate_views(engine, tables, config)
    return caught.value.lines()


def test_value_problems_are_worded_as_the_local_path_words_them(
    tmp_path: Path, tiny: Callable[[], Tables], config: FeatureConfig,
    sql_engine: engines.SqlEngine,
) -> None:  # fmt: skip
    """Empty and repeated ids, and counts that are infinite, negative or fractional."""
    directory = _canonical(tmp_path, tiny(), config)

    def leads(frame: pd.DataFrame) -> None:
        frame.loc[1, "lead_id"] = "l1"  # a repeated id
        frame["created_at"] = frame["created_at"].astype("datetime64[us]")

    def events(frame: pd.DataFrame) -> None:
        frame.loc[0, "event_id"] = None  # an empty id
        frame.loc[3, "event_id"] = "N/A"  # a CRM placeholder is empty too
        frame["page_views"] = [np.nan, 5.0, -2.0, np.inf, 2.5, 2.0]
        frame.loc[2, "type"] = "  "

    _break(directory, "leads", leads)
    _break(directory, "events", events)
    want = _problems_local(directory, config)
    assert len(want) == 6, want  # the checks below could not pass on an empty list
    assert _problems_sql(sql_engine, directory, config) == want


def test_reference_and_column_problems_match_too(
    tmp_path: Path, tiny: Callable[[], Tables], config: FeatureConfig,
    sql_engine: engines.SqlEngine,
) -> None:  # fmt: skip
    directory = _canonical(tmp_path, tiny(), config)

    def events(frame: pd.DataFrame) -> None:
        frame.loc[[2, 4], "lead_id"] = ["l9", "l7"]  # leads that do not exist

    _break(directory, "events", events)
    want = _problems_local(directory, config)
    assert len(want) == 1 and "reference an unknown lead_id" in want[0], want
    assert _problems_sql(sql_engine, directory, config) == want

    _break(directory, "outcomes", lambda frame: frame.pop("lead_id"))
    missing = _problems_sql(sql_engine, directory, config)
    assert missing == _problems_local(directory, config)
    assert "outcomes" in missing[0] and "missing column(s) ['lead_id']" in missing[0]


def test_a_column_stored_as_the_wrong_type_is_named(
    tmp_path: Path, tiny: Callable[[], Tables], config: FeatureConfig
) -> None:
    directory = _canonical(tmp_path, tiny(), config)
    _break(directory, "leads", lambda f: f.__setitem__("created_at", f["created_at"].astype(str)))
    engine = DuckDBEngine()
    (line,) = _problems_sql(engine, directory, config)
    assert line.startswith(f"leads ({directory / 'leads.parquet'}).created_at: stored as VARCHAR")
    assert "expected a timestamp" in line


def test_valid_tables_pass_and_snapshot_as_the_local_builder_in_chunks(
    tmp_path: Path, ri_bundle: Path, config: FeatureConfig, sql_engine: engines.SqlEngine
) -> None:
    crm = load_source(ri_bundle, config)
    directory = write_canonical(crm, tmp_path / "world")
    spec = build_spec(config)
    want = snapshot(crm, spec, as_of_after_creation(crm.leads, 30))
    tables = canonical_views(sql_engine, directory, config)
    validate_views(sql_engine, tables, config)  # a valid world raises nothing
    moments_view(sql_engine, 30, None)
    chunks = list(snapshot_batches(sql_engine, spec, "moments", chunk_rows=97))
    assert len(chunks) == -(-len(want) // 97)  # streamed: every chunk but the last is full
    got = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)


def test_a_missing_optional_table_is_empty_not_an_error(
    tmp_path: Path, tiny: Callable[[], Tables], config: FeatureConfig
) -> None:
    tables = {k: v for k, v in tiny().items() if k not in ("events", "accounts")}
    crm = from_frames(tables, config)
    directory = _canonical(tmp_path, tables, config)
    for name in ("events", "accounts"):
        (directory / f"{name}.parquet").unlink()
    spec = build_spec(config)
    engine = DuckDBEngine()
    validate_views(engine, canonical_views(engine, directory, config), config)
    moments_view(engine, 10, None)
    got = pd.concat(snapshot_batches(engine, spec, "moments"), ignore_index=True)
    want = snapshot(crm, spec, as_of_after_creation(crm.leads, 10))
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)


def test_auto_takes_duckdb_only_for_large_canonical_parquet(
    tmp_path: Path, tiny: Callable[[], Tables], config: FeatureConfig,
    monkeypatch: pytest.MonkeyPatch, ri_bundle: Path,
) -> None:  # fmt: skip
    directory = _canonical(tmp_path, tiny(), config)
    assert choose_engine("auto", directory) == "local"
    assert choose_engine("auto", ri_bundle) == "local"  # not canonical Parquet: read locally
    monkeypatch.setattr(engines, "AUTO_DUCKDB_BYTES", 1_000)
    assert choose_engine("auto", directory) == "duckdb"
    assert choose_engine("auto", ri_bundle) == "local"
    assert choose_engine("spark", directory) == "spark"  # asked for: taken
    (directory / "events.csv").write_text("event_id\n")  # a table in two formats: not canonical
    assert choose_engine("auto", directory) == "local"
