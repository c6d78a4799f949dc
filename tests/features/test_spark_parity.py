"""Spark SQL (`features.spark`) gives the snapshot the local builder and DuckDB give.

Spark keeps microseconds, so the drawn histories of the online parity test (events exactly at
as_of, window edges, ties on (lead, timestamp, type), unknown categories, leads without
events) are floored to the microsecond first. The examples are drawn by hypothesis, merged
into one world (ids prefixed by the example's number) and run as one Spark query, not one per
example; the three engines read the same canonical Parquet. Spark starts once per test
session (:func:`~leadscore.features.spark.spark_session` reuses the process's session).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings

pytest.importorskip("pyspark")

from leadscore.features.engines import (
    DuckDBEngine,
    SqlEngine,
    canonical_views,
    moments_view,
    snapshot_batches,
)
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.sources.canonical import write_canonical
from leadscore.features.spark import SparkEngine, spark_session
from leadscore.features.sql import compile_snapshot
from tests.conftest import examples
from tests.features.test_online_parity import (
    AS_OF,
    CONFIG,
    DAY,
    HISTORY,
    LATE_TOUCH,
    LATE_UPDATE,
    US,
    _world,
    crm_of,
    worlds,
)
from tests.features.test_sql_parity import FULL_SPEC, assert_same_snapshot, merged

pytestmark = pytest.mark.slow  # a Spark query takes seconds, its start-up more

# field_update text that Spark's cast and Python's float() read differently, unless handled
NUMBER_TEXTS = ("1_000", "1200d", "1200F", "\u00a042", "0x10", ".5", "5.", "1__0", "_1", "1e3",
                "+7", "-inf", "nan", " 42 ", "1_000e1_0", "Infinity", "1.5e", "")  # fmt: skip


@pytest.fixture(scope="session")
def spark() -> Any:
    """The process's Spark session (started here once; later calls reuse it)."""
    start = time.perf_counter()
    session = spark_session()
    print(f"\nSpark session start: {time.perf_counter() - start:.1f} s")
    return session


@pytest.fixture
def spark_engine(spark: Any) -> Iterator[SparkEngine]:
    engine = SparkEngine(session=spark)
    yield engine
    engine.close()


def micros(world: dict[str, Any]) -> dict[str, Any]:
    """`world` with every moment floored to the microsecond (what Spark keeps)."""

    def floor(moment: Any) -> Any:
        if isinstance(moment, datetime):
            return pd.Timestamp(moment).floor("us").to_pydatetime()
        return moment

    leads = [x | {"created_at": floor(x["created_at"]), "as_of": floor(x["as_of"])}
             for x in world["leads"]]  # fmt: skip
    events = [e | {"timestamp": floor(e["timestamp"])} for e in world["events"]]
    return world | {"leads": leads, "events": events}


def drawn_worlds(n: int) -> list[dict[str, Any]]:
    """`n` histories drawn by hypothesis (run as a generator: the body only collects)."""
    seen: list[dict[str, Any]] = []

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(worlds())
    def collect(world: dict[str, Any]) -> None:
        seen.append(micros(world))

    collect()
    return seen


def boundary_world() -> dict[str, Any]:
    """Events at as_of and 1 µs after it, and a field_update tie on the timestamp."""
    ties = [LATE_UPDATE | {"event_id": eid, "timestamp": AS_OF, "field_value": value}
            for eid, value in (("e10", "5"), ("e9", "1"), ("e100", "3"))]  # fmt: skip
    late = [LATE_TOUCH | {"event_id": "e7", "timestamp": AS_OF + US}]
    at = [LATE_TOUCH | {"event_id": "e50", "timestamp": AS_OF}]
    return _world([*HISTORY, *ties, *late, *at], AS_OF)


def number_world() -> dict[str, Any]:
    """One lead per text in :data:`NUMBER_TEXTS`, its only event a deal_budget update."""
    world = _world([], AS_OF)
    lead = world["leads"][0]
    event = dict(world["events"][0]) | {"type": "field_update", "field": "deal_budget",
                                        "timestamp": AS_OF - DAY}  # fmt: skip
    world["leads"] = [lead | {"lead_id": f"N{i}"} for i in range(len(NUMBER_TEXTS))]
    world["events"] = [event | {"event_id": f"n{i}", "lead_id": f"N{i}", "field_value": text}
                       for i, text in enumerate(NUMBER_TEXTS)]  # fmt: skip
    return world


def engine_snapshot(engine: SqlEngine, root: Path, wanted: Path) -> pd.DataFrame:
    """The snapshot of the leads and moments of `wanted` (lead_id, as_of) in its row order,
    from the canonical Parquet directory `root`."""
    canonical_views(engine, root, CONFIG)
    engine.parquet_view("wanted", wanted)
    frames = list(snapshot_batches(engine, FULL_SPEC, "wanted", chunk_rows=100))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def three_ways(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Drawn, boundary and number-text histories as one world, snapshotted by the local
    builder, DuckDB and (one query) Spark."""
    worlds_ = [*drawn_worlds(examples(150)), boundary_world(), number_world()]
    world = merged(worlds_)
    crm, as_of = crm_of(world)
    root = write_canonical(crm, tmp_path_factory.mktemp("spark_parity") / "canonical")
    wanted = root.parent / "wanted.parquet"
    pd.DataFrame({"lead_id": crm.leads["lead_id"], "as_of": as_of}).to_parquet(wanted)
    out: dict[str, Any] = {"examples": len(worlds_), "leads": len(crm.leads)}
    out["local"] = snapshot(crm, FULL_SPEC, as_of)
    duck = DuckDBEngine()
    try:
        out["duckdb"] = engine_snapshot(duck, root, wanted)
    finally:
        duck.close()
    start = time.perf_counter()
    engine = SparkEngine(session=spark)
    try:
        out["spark"] = engine_snapshot(engine, root, wanted)
    finally:
        engine.close()
    print(f"\nSpark: {out['examples']} examples, {out['leads']} leads in one query: "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return out


def test_spark_equals_local_and_duckdb_on_drawn_histories(three_ways: dict[str, Any]) -> None:
    local, spark = three_ways["local"], three_ways["spark"]
    assert three_ways["examples"] >= examples(150) // 2  # hypothesis drew them
    assert spark["lead_id"].tolist() == local["lead_id"].tolist()
    assert_same_snapshot(local, spark)
    assert_same_snapshot(three_ways["duckdb"], spark)


def _row(frame: pd.DataFrame, lead_id: str) -> pd.Series:
    return frame.set_index("lead_id").loc[lead_id]


def test_boundaries_at_as_of_on_spark(three_ways: dict[str, Any]) -> None:
    """The boundary world is the last but one: at as_of counts, 1 µs after does not, the
    field_update tie goes to the greatest event_id as text ("e9")."""
    k = three_ways["examples"] - 2
    row = _row(three_ways["spark"], f"w{k}L0")
    assert row["touches"] == 2 and row["days_since_last_touch"] == 0.0
    assert row["deal_budget"] == 1.0 and row["events_all"] == 7


def test_field_value_numbers_read_as_float_does(three_ways: dict[str, Any]) -> None:
    k = three_ways["examples"] - 1
    spark = three_ways["spark"].set_index("lead_id")
    local = three_ways["local"].set_index("lead_id")
    duck = three_ways["duckdb"].set_index("lead_id")
    for i, text in enumerate(NUMBER_TEXTS):
        a = local.loc[f"w{k}N{i}", "deal_budget"]
        for name, engine in (("spark", spark), ("duckdb", duck)):
            b = engine.loc[f"w{k}N{i}", "deal_budget"]
            assert (pd.isna(a) and pd.isna(b)) or a == b, f"{text!r}: local {a}, {name} {b}"
    assert spark.loc[f"w{k}N0", "deal_budget"] == 1000.0  # not vacuous: 1_000 is read


def test_spark_sql_is_the_dialects_query() -> None:
    sql = compile_snapshot(FULL_SPEC, "spark")
    assert "unix_micros(" in sql and "named_struct(" in sql and '"' not in sql


def test_leadforge_world_through_canonical_parquet(
    ri_bundle: Path, spark_engine: SparkEngine, tmp_path: Path
) -> None:
    """A leadforge world as canonical Parquet: Spark, DuckDB and the local builder give the
    same rows in the same order (the order of leads.parquet)."""
    crm = load_source(ri_bundle, CONFIG)
    root = write_canonical(crm, tmp_path / "canonical")
    duck = DuckDBEngine()
    try:
        for days in (3, 21):
            start = time.perf_counter()
            canonical_views(spark_engine, root, CONFIG)
            moments_view(spark_engine, days, None)
            spark = pd.concat(snapshot_batches(spark_engine, FULL_SPEC, "moments", 128),
                              ignore_index=True)  # fmt: skip
            took = time.perf_counter() - start
            print(f"\nleadforge world ({len(crm.leads)} leads, {days} d) on Spark: {took:.1f} s")
            canonical_views(duck, root, CONFIG)
            moments_view(duck, days, None)
            duckdb = pd.concat(snapshot_batches(duck, FULL_SPEC, "moments"), ignore_index=True)
            local = snapshot(crm, FULL_SPEC, as_of_after_creation(crm.leads, days))
            assert spark["lead_id"].tolist() == crm.leads["lead_id"].tolist()
            assert_same_snapshot(local, spark)
            assert_same_snapshot(duckdb, spark)
            assert local["touches"].sum() > 0
    finally:
        duck.close()


def test_rows_keep_naive_utc_microseconds(spark_engine: SparkEngine, tmp_path: Path) -> None:
    """A pandas-written timestamp (ns) comes back floored to the µs, naive, unshifted, and
    `_row` is the row's number in its file."""
    moments = pd.Series(pd.to_datetime(["2024-03-01 00:00:00.000001500",
                                        "1969-12-31 23:59:59.999999999"]))  # fmt: skip
    path = tmp_path / "t.parquet"
    pd.DataFrame({"k": ["a", "b"], "t": moments.astype("datetime64[ns]")}).to_parquet(path)
    spark_engine.parquet_view("t", path)
    assert spark_engine.columns("t") == {"k": "string", "t": "timestamp"}
    rows = spark_engine.rows("SELECT k, t, _row FROM t ORDER BY _row DESC")
    assert rows == [("b", datetime(1969, 12, 31, 23, 59, 59, 999999), 1),
                    ("a", datetime(2024, 3, 1) + timedelta(microseconds=1), 0)]  # fmt: skip


def test_features_build_on_spark_writes_the_local_rows_as_a_directory(
    ri_bundle: Path, spark: Any, tmp_path: Path
) -> None:
    """`leadscore features build --engine spark`: Spark writes the snapshot as partitioned
    Parquet; read back in file order it is the local command's snapshot, floats within 1e-9."""
    from typer.testing import CliRunner

    from leadscore.cli import app

    runner = CliRunner()
    root = tmp_path / "canonical"
    assert runner.invoke(app, ["data", "convert", "--data", str(ri_bundle),
                               "--out", str(root)]).exit_code == 0  # fmt: skip
    args = ["features", "build", "--data", str(root), "--as-of-days", "14"]
    local = runner.invoke(app, [*args, "--engine", "local", "--out", str(tmp_path / "l.parquet")])
    assert local.exit_code == 0, local.output
    done = runner.invoke(app, [*args, "--engine", "spark", "--out", str(tmp_path / "s")])
    assert done.exit_code == 0, done.output
    parts = sorted((tmp_path / "s").glob("part-*.parquet"))
    assert parts  # a directory of part files, written by Spark
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    want = pd.read_parquet(tmp_path / "l.parquet")
    assert got["lead_id"].tolist() == want["lead_id"].tolist()  # ORDER BY survives the write
    assert got.columns.tolist() == want.columns.tolist()
    # Spark's files carry no pandas metadata (and µs timestamps): the values are compared
    assert_same_snapshot(want, got.astype(want.dtypes.to_dict()))
