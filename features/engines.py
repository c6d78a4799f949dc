"""The engines that build snapshots: the local Arrow/pandas builder, and SQL engines that run
the compiled spec (:mod:`~leadscore.features.sql`) over canonical Parquet.

Every SQL engine implements :class:`SqlEngine`: Parquet files become views (with each row's
number in its file, so that errors can name it), queries run in the engine and rows come back
as Arrow batches. DuckDB (:class:`DuckDBEngine`) is embedded; Spark
(:class:`leadscore.features.spark.SparkEngine`, the ``[spark]`` extra) is for clusters.

Over any engine, :func:`canonical_views` registers a canonical Parquet directory,
:func:`moments_view` each lead's as_of, :func:`cases_view` why a lead is not a scoring case at
it, and :func:`snapshot_batches` streams the point-in-time snapshot in the order of
``leads.parquet``, chunk by chunk, with the local builder's dtypes: peak memory is bounded by
the chunk, not by the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from leadscore.features.config import FeatureConfig
from leadscore.features.errors import UsageProblem
from leadscore.features.labels import ALREADY_LOST, ALREADY_REACHED, ALREADY_WON, TARGET_COLUMN
from leadscore.features.schema import TABLES, Kind, schemas
from leadscore.features.spec import DAY_NS, FeatureSpec
from leadscore.features.sql import (
    DIALECTS,
    Dialect,
    SqlSnapshotError,
    compile_snapshot,
    typed_rows,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

EngineName = Literal["auto", "local", "duckdb", "spark"]
ENGINES: tuple[EngineName, ...] = ("auto", "local", "duckdb", "spark")
# `auto` picks DuckDB for canonical Parquet larger than this (measured: the local builder's
# load + validation is most of its time above ~100k leads, and it holds everything in memory)
AUTO_DUCKDB_BYTES = 256 * 2**20
ROW = "_row"  # a view's column: the row's 0-based number in its file
NOT_CREATED = "not_created_yet"
DEFAULT_CHUNK_ROWS = 100_000


class SqlEngine(Protocol):
    """What the SQL path needs of an engine."""

    dialect: Dialect

    def parquet_view(self, name: str, path: Path) -> None:
        """A view `name` over one Parquet file: its columns and :data:`ROW` (0-based)."""

    def view(self, name: str, sql: str) -> None:
        """A view `name` defined by the query `sql`."""

    def columns(self, name: str) -> dict[str, str]:
        """A view's columns (but :data:`ROW`) and their lower-case type names, in order."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Every row of a (small) query result."""

    def batches(self, sql: str, size: int) -> Iterator[pa.RecordBatch]:
        """The rows of `sql` in Arrow batches of at most `size` rows, in the query's order."""

    def close(self) -> None:
        """Release the engine's resources."""


class DuckDBEngine:
    """An embedded DuckDB connection; `memory_limit` (e.g. ``"4GB"``) makes it spill to disk
    rather than grow past it."""

    dialect = DIALECTS["duckdb"]

    def __init__(self, memory_limit: str | None = None, threads: int | None = None):
        import duckdb

        self.con: duckdb.DuckDBPyConnection = duckdb.connect()
        if memory_limit is not None:
            try:
                self.con.execute(f"SET memory_limit = {self.dialect.literal(memory_limit)}")
            except duckdb.Error as exc:
                raise UsageProblem(f"--memory-limit {memory_limit!r}: {exc}; expected a size "
                                   "such as 4GB or 512MB") from None  # fmt: skip
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        # every query that needs an order says ORDER BY; without the promise DuckDB needs less
        # memory on larger-than-memory inputs
        self.con.execute("SET preserve_insertion_order = false")

    def parquet_view(self, name: str, path: Path) -> None:
        source = f"read_parquet({self.dialect.literal(str(path))}, file_row_number = true)"
        self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * EXCLUDE '
                         f"(file_row_number), file_row_number AS {ROW} FROM {source}")  # fmt: skip

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')

    def columns(self, name: str) -> dict[str, str]:
        described = self.con.execute(f'DESCRIBE "{name}"').fetchall()
        return {str(r[0]): str(r[1]).lower() for r in described if r[0] != ROW}

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql).fetchall())

    def batches(self, sql: str, size: int) -> Iterator[pa.RecordBatch]:
        relation = self.con.sql(sql)
        # a streaming reader: DuckDB 2 calls it to_arrow_reader, 1.x fetch_arrow_reader
        reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        yield from reader(size)

    def close(self) -> None:
        self.con.close()


def open_engine(
    name: EngineName, memory_limit: str | None = None, threads: int | None = None
) -> SqlEngine:
    """A SQL engine by name (``duckdb`` or ``spark``)."""
    if name == "duckdb":
        return DuckDBEngine(memory_limit, threads)
    if name == "spark":
        try:
            from leadscore.features.spark import SparkEngine
        except ImportError as exc:
            raise UsageProblem(f"--engine spark needs pyspark ({exc}); install the extra: "
                               "pip install 'leadscore[spark]'") from None  # fmt: skip
        return SparkEngine(memory_limit=memory_limit, threads=threads)
    raise UsageProblem(f"--engine {name!r} is not a SQL engine; expected duckdb or spark")


# ---------------------------------------------------------------------------------------------
# which engine: auto


def canonical_parquet(directory: Path) -> dict[str, Path] | None:
    """The table files of a canonical Parquet directory (leads.parquet at least, no table in
    another format), or None when `directory` is not one."""
    if not directory.is_dir() or not (directory / "leads.parquet").is_file():
        return None
    other = [p for t in TABLES for p in directory.glob(f"{t}.*") if p.suffix != ".parquet"]
    if other:
        return None
    return {t: directory / f"{t}.parquet" for t in TABLES if (directory / f"{t}.parquet").exists()}


def choose_engine(name: EngineName, data: Path) -> Literal["local", "duckdb", "spark"]:
    """The engine `name` asks for; ``auto`` is DuckDB for canonical Parquet above
    :data:`AUTO_DUCKDB_BYTES`, else the local builder."""
    if name != "auto":
        return name
    tables = canonical_parquet(data)
    if tables is None:
        return "local"
    size = sum(p.stat().st_size for p in tables.values())
    return "duckdb" if size > AUTO_DUCKDB_BYTES else "local"


# ---------------------------------------------------------------------------------------------
# views over a canonical Parquet directory


def _sql_type(dialect: Dialect, kind: Kind) -> str:
    if kind == "timestamp":
        return "TIMESTAMP"
    if kind in ("number", "count"):
        return "DOUBLE"
    return "BOOLEAN" if kind == "boolean" else dialect.text


def file_view(table: str) -> str:
    """The view of a table's file as it is (what validation reads); the table's own view adds
    the contract's optional columns the file lacks, as the local path does."""
    return f"{table}_file"


def canonical_views(engine: SqlEngine, directory: Path, config: FeatureConfig) -> dict[str, Path]:
    """Register the tables of a canonical Parquet directory as views; a table the directory
    does not have (only leads is required) becomes an empty view with the contract's columns,
    and an optional column a file lacks is NULL. Returns the files found."""
    tables = canonical_parquet(directory)
    if tables is None:
        raise SqlSnapshotError(
            f"{directory}: not a canonical Parquet directory (leads.parquet and the other tables "
            "as .parquet); convert the source first: leadscore data convert --data SOURCE --out DIR"
        )
    d = engine.dialect
    for name, schema in schemas(config).items():
        if name in tables:
            engine.parquet_view(file_view(name), tables[name])
            have = engine.columns(file_view(name))
            added = [f"CAST(NULL AS {_sql_type(d, c.kind)}) AS {d.quote.format(c.name)}"
                     for c in schema.columns if c.name not in have]  # fmt: skip
            engine.view(name, f"SELECT {', '.join(['*', *added])} FROM {file_view(name)}")
            continue
        cols = [f"CAST(NULL AS {_sql_type(d, c.kind)}) AS {d.quote.format(c.name)}"
                for c in schema.columns]  # fmt: skip
        cols.append(f"CAST(NULL AS BIGINT) AS {ROW}")
        engine.view(name, f"SELECT * FROM (SELECT {', '.join(cols)}) t WHERE 1 = 0")
    return tables


def _epoch_literal(dialect: Dialect, moment: pd.Timestamp) -> str:
    return dialect.from_epoch.format(moment.value // (DAY_NS // dialect.units_per_day))


def moments_view(engine: SqlEngine, as_of_days: float | None, moment: pd.Timestamp | None) -> None:
    """The view ``moments`` (lead_id, as_of, _row): each lead's as_of, ``created_at + N x 24 h``
    (as :func:`~leadscore.features.snapshot.as_of_after_creation`, to the engine's unit) or
    one moment for every lead."""
    import pandas as pd

    d = engine.dialect
    if as_of_days is not None:
        shift = pd.Timedelta(days=float(as_of_days)).value // (DAY_NS // d.units_per_day)
        when = d.from_epoch.format(f"{d.epoch.format('created_at')} + {shift}")
    elif moment is not None:
        when = _epoch_literal(d, pd.Timestamp(moment))
    else:
        raise UsageProblem("give exactly one of --as-of-days N or --as-of TIMESTAMP")
    engine.view("moments", f"SELECT lead_id, {when} AS as_of, {ROW} FROM leads")


def cases_view(engine: SqlEngine, target: str) -> None:
    """The view ``cases`` (lead_id, as_of, _row, reason): why a lead is not a scoring case at
    its as_of (not created yet, or won, lost or the target reached by then), NULL when open;
    the rule of :func:`~leadscore.features.labels.closed_at`."""
    d = engine.dialect
    outcome_cols = engine.columns("outcomes")
    when = [(f"{d.epoch.format('l.created_at')} > {d.epoch.format('m.as_of')}", NOT_CREATED)]
    for column, reason in (("won_at", ALREADY_WON), ("lost_at", ALREADY_LOST),
                           (TARGET_COLUMN[target], ALREADY_REACHED)):  # fmt: skip
        if column in outcome_cols:
            moment = d.epoch.format(f"o.{d.quote.format(column)}")
            when.append((f"{moment} <= {d.epoch.format('m.as_of')}", reason))
    reason = "CASE " + " ".join(f"WHEN {c} THEN {d.literal(r)}" for c, r in when) + " END"
    engine.view("cases", f"SELECT m.lead_id, m.as_of, m.{ROW}, {reason} AS reason FROM moments m "
                         "JOIN leads l ON l.lead_id = m.lead_id "
                         "LEFT JOIN outcomes o ON o.lead_id = m.lead_id")  # fmt: skip


def ordered_snapshot_sql(engine: SqlEngine, spec: FeatureSpec, rows_view: str) -> str:
    """The snapshot of the leads of `rows_view` (lead_id, as_of, _row), in `_row` order: the
    compiled query reads the view ``as_of``, made here from `rows_view`."""
    engine.view("as_of", f"SELECT lead_id, as_of, {ROW} FROM {rows_view}")
    columns = {name: set(engine.columns(name)) for name in TABLES}
    return compile_snapshot(spec, engine.dialect.name, columns, order_by=ROW)  # type: ignore[arg-type]


def snapshot_batches(
    engine: SqlEngine, spec: FeatureSpec, rows_view: str, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The snapshot of the leads of `rows_view` in frames of at most `chunk_rows` rows, in
    the order of ``leads.parquet``, with the local builder's columns and dtypes."""
    sql = ordered_snapshot_sql(engine, spec, rows_view)
    for batch in engine.batches(sql, chunk_rows):
        if batch.num_rows:
            yield typed_rows(batch.to_pandas(), spec)
