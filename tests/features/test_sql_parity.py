"""The spec compiled to SQL and run on DuckDB (`features.sql`) equals the local builder.

Same columns in the same order, same dtypes, counts and booleans equal, floats within 1e-9,
missing where the local builder has missing. The histories are those of the online parity
test (events exactly at as_of, 1 µs / 500 ns after it, window edges, ties on (lead, timestamp,
type), unknown categories, leads without events, microsecond and nanosecond moments), read
through the contract from ISO text, with extra features for the kinds and windows the
built-in spec leaves out.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.features.contract import CrmData
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.sources.canonical import write_canonical
from leadscore.features.spec import EventFilter, Feature, FeatureSpec
from leadscore.features.sql import compile_snapshot, snapshot_duckdb, snapshot_duckdb_parquet
from tests.conftest import examples
from tests.features.test_online_parity import (
    AS_OF,
    CONFIG,
    HISTORY,
    LATE_TOUCH,
    LATE_UPDATE,
    SPEC,
    US,
    _world,
    crm_of,
    worlds,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "small_crm"


def _extra(name: str, kind: Any, dtype: Any = "number", **kw: Any) -> Feature:
    return Feature(name, name.replace("_", " "), "engagement", dtype, kind, "Is {value}", **kw)


# kinds, windows and sources the built-in spec does not combine, and attributes of columns the
# drawn tables lack (missing in both builders)
EXTRA = (
    _extra("value_sum_prev", "sum", source="value", window="prev_7d"),
    _extra("value_max_first", "max", source="value", window="first_7d",
           filter=EventFilter(type=("touch", "sales_activity"))),
    _extra("first_touch_last_week", "days_since_first", window="last_7d",
           filter=EventFilter(type=("touch",))),
    _extra("any_event_prev", "exists", "boolean", window="prev_7d"),
    _extra("events_all", "count", "count"),
    _extra("calls_or_no_answer", "count", "count",
           filter=EventFilter(subtype=("call",), outcome=("no_answer", "connected"))),
    _extra("touch_trend_share", "ratio", inputs=("engagement_trend", "touches")),
    _extra("age_minus_last", "difference", inputs=("lead_age_days", "days_since_last_touch")),
    _extra("budget_attr", "attribute", source="lead.budget_amount"),
    _extra("confirmed_attr", "attribute", "boolean", source="lead.budget_confirmed"),
    _extra("absent_attr", "attribute", "category", source="account.not_a_column"),
)  # fmt: skip
FULL_SPEC = FeatureSpec((*SPEC.features, *EXTRA))


def assert_same_snapshot(local: pd.DataFrame, duck: pd.DataFrame) -> None:
    """Equal frames: columns, dtypes, missing positions; floats within 1e-9, the rest exact."""
    assert list(duck.columns) == list(local.columns)
    assert dict(duck.dtypes) == dict(local.dtypes)
    for col in local.columns:
        a, b = local[col], duck[col]
        if a.dtype == "float64":
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=col)
        else:
            assert a.isna().tolist() == b.isna().tolist(), col
            assert a[a.notna()].tolist() == b[b.notna()].tolist(), col


def both(world: dict[str, Any], spec: FeatureSpec = FULL_SPEC) -> pd.DataFrame:
    """The local snapshot of `world`, after checking DuckDB's equals it."""
    crm, as_of = crm_of(world)
    local = snapshot(crm, spec, as_of)
    assert_same_snapshot(local, snapshot_duckdb(crm, spec, as_of))
    return local


def merged(drawn: list[dict[str, Any]]) -> dict[str, Any]:
    """Several drawn worlds as one, every id prefixed by its world's number: one validation
    and one engine run check many histories (event ids keep their text order within a world,
    so tie-breaks are unchanged)."""
    out: dict[str, list[dict[str, Any]]] = {
        "accounts": [],
        "contacts": [],
        "leads": [],
        "events": [],
    }
    ids = ("account_id", "contact_id", "lead_id", "event_id")
    for k, world in enumerate(drawn):
        for table, rows in out.items():
            rows += [
                r | {c: f"w{k}{r[c]}" for c in ids if r.get(c) is not None} for r in world[table]
            ]
    return out


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(worlds(), min_size=1, max_size=6))
def test_duckdb_equals_local_on_random_histories(drawn: list[dict[str, Any]]) -> None:
    both(merged(drawn))


def test_boundaries_at_as_of() -> None:
    """At as_of counts; 1 µs or 500 ns after it does not; a field_update tie on the timestamp
    goes to the greatest event_id as text ("e9" > "e100" > "e10")."""
    ties = [
        LATE_UPDATE | {"event_id": eid, "timestamp": AS_OF, "field_value": value}
        for eid, value in (("e10", "5"), ("e9", "1"), ("e100", "3"))  # e9: neither max
    ]
    late = [
        LATE_TOUCH | {"event_id": "e7", "timestamp": AS_OF + US},
        LATE_TOUCH | {"event_id": "e6", "timestamp": "2024-03-11T05:00:00.000123500"},
    ]
    at = [LATE_TOUCH | {"event_id": "e50", "timestamp": AS_OF}]  # fmt: skip
    row = both(_world([*HISTORY, *ties, *late, *at], AS_OF)).iloc[0]
    assert row["touches"] == 2  # e1 (day 1) and e50 at as_of; e7, e6 after it
    assert row["inbound_touches"] == row["webinars"] == row["touches_last_7d"] == 1
    assert row["inbound_share"] == 0.5
    assert row["days_since_last_touch"] == 0.0
    assert row["deal_budget"] == 1.0
    assert row["events_all"] == 7  # e1, e2, e3, three tied updates, e50 (L1's touch is L1's)


def test_a_lead_without_events_has_zeros_and_missing() -> None:
    row = both(_world([], AS_OF + timedelta(days=3))).iloc[0]
    assert row["touches"] == row["events_all"] == 0
    assert row["page_views"] == 0.0 and not row["opportunity_opened"]
    assert np.isnan(row["days_since_last_touch"]) and np.isnan(row["inbound_share"])
    assert np.isnan(row["deal_budget"]) and row["deal_tier"] is pd.NA


@pytest.fixture(scope="module")
def small_crm() -> CrmData:
    return load_source(FIXTURE, CONFIG)


@pytest.mark.parametrize("days", [0, 1.5, 7, 14, 30, 90])
def test_small_crm_at_several_ages(small_crm: CrmData, days: float) -> None:
    as_of = as_of_after_creation(small_crm.leads, days)
    local = snapshot(small_crm, FULL_SPEC, as_of)
    assert_same_snapshot(local, snapshot_duckdb(small_crm, FULL_SPEC, as_of))
    if days >= 30:  # the comparison is not vacuous (the fixture has no field updates)
        assert local["touches"].sum() > 0 and local["days_since_last_session"].notna().any()


def test_small_crm_from_parquet(small_crm: CrmData, tmp_path: Path) -> None:
    """The Parquet entry point reads what write_canonical writes: by age, at one moment and
    for a chosen list of leads, under a memory limit on one thread."""
    root = write_canonical(small_crm, tmp_path / "canonical")
    limits = {"memory_limit": "256MB", "threads": 1}
    by_age = snapshot_duckdb_parquet(root, FULL_SPEC, 10.25, **limits)
    local = snapshot(small_crm, FULL_SPEC, as_of_after_creation(small_crm.leads, 10.25))
    assert_same_snapshot(local, by_age)
    moment = pd.Timestamp("2024-05-01 12:00:00.000001")
    at_moment = snapshot_duckdb_parquet(root, FULL_SPEC, moment)
    fixed = pd.Series(moment, index=small_crm.leads.index)
    assert_same_snapshot(snapshot(small_crm, FULL_SPEC, fixed), at_moment)
    chosen = small_crm.leads["lead_id"].iloc[[5, 1, 3]]
    some = snapshot_duckdb_parquet(
        root, FULL_SPEC, pd.DataFrame({"lead_id": chosen, "as_of": moment})
    )
    assert_same_snapshot(at_moment.iloc[[1, 3, 5]].reset_index(drop=True), some)  # file order


def test_leadforge_world(ri_bundle: Path) -> None:
    crm = load_source(ri_bundle, CONFIG)
    for days in (3, 21):
        as_of = as_of_after_creation(crm.leads, days)
        assert_same_snapshot(
            snapshot(crm, FULL_SPEC, as_of), snapshot_duckdb(crm, FULL_SPEC, as_of)
        )


def test_unknown_kind_and_dialect_are_named() -> None:
    odd = FeatureSpec((_extra("weird", "median"),))
    with pytest.raises(NotImplementedError, match="'median'"):
        compile_snapshot(odd)
    with pytest.raises(NotImplementedError, match="'bigquery'"):
        compile_snapshot(SPEC, "bigquery")  # type: ignore[arg-type]
