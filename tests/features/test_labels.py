"""Labels: scoring cases, exclusions and right-censoring, from outcomes alone."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.features.labels import (
    ALREADY_LOST,
    ALREADY_REACHED,
    ALREADY_WON,
    NOT_FINAL,
    LabelError,
    closed_at,
    exclusion_counts,
    label_snapshots,
)

T = pd.Timestamp


def _case(
    *,
    sql: str | None = None,
    won: str | None = None,
    lost: str | None = None,
    as_of: str = "2024-01-31",
    target: str = "won",
    end: str = "2024-12-31",
) -> tuple[bool | None, str | None]:
    snaps = pd.DataFrame({"lead_id": ["x"], "as_of": [T(as_of)]})
    outcomes = pd.DataFrame(
        {"lead_id": ["x"], "sql_at": [T(sql) if sql else pd.NaT],
         "won_at": [T(won) if won else pd.NaT], "lost_at": [T(lost) if lost else pd.NaT]}
    )  # fmt: skip
    out = label_snapshots(
        snaps, outcomes, pd.Series({"x": T("2024-01-01")}),
        target=target, horizon_days=90, observation_end=T(end),  # type: ignore[arg-type]
    )  # fmt: skip
    label, reason = out["label"].iloc[0], out["excluded"].iloc[0]
    return (None if pd.isna(label) else bool(label)), (None if pd.isna(reason) else str(reason))


def test_won_within_horizon_is_positive() -> None:
    assert _case(sql="2024-02-10", won="2024-03-30") == (True, None)


def test_won_after_horizon_is_negative() -> None:
    assert _case(won="2024-04-01") == (False, None)  # day 91


def test_won_on_the_last_day_of_the_horizon_counts() -> None:
    assert _case(won="2024-03-31") == (True, None)  # exactly created + 90 d


def test_never_converted_is_negative() -> None:
    assert _case() == (False, None)


def test_already_won_is_not_a_scoring_case() -> None:
    # the more specific fact is named: won (which, for target won, is also the target)
    assert _case(won="2024-01-31") == (None, ALREADY_WON)


def test_already_lost_is_not_a_scoring_case() -> None:
    assert _case(lost="2024-01-20") == (None, ALREADY_LOST)


def test_sql_target() -> None:
    assert _case(sql="2024-02-15", target="sql") == (True, None)
    assert _case(sql="2024-01-15", target="sql") == (None, ALREADY_REACHED)
    assert _case(sql="2024-01-02", won="2024-01-20", target="sql") == (None, ALREADY_WON)
    # won without ever being SQL: the sql target was not reached, but nothing is left to score
    assert _case(won="2024-01-20", target="sql") == (None, ALREADY_WON)


def test_right_censored_label_is_not_final() -> None:
    # horizon ends 2024-03-31, the source was observed only to 2024-03-01
    assert _case(end="2024-03-01") == (None, NOT_FINAL)
    assert _case(end="2024-03-31") == (False, None)


def test_exclusion_counts() -> None:
    frame = pd.DataFrame(
        {"excluded": pd.Series([None, ALREADY_LOST, ALREADY_LOST], dtype="string")}
    )
    assert exclusion_counts(frame) == {ALREADY_LOST: 2}


def test_undated_source_is_refused() -> None:
    with pytest.raises(LabelError, match="no dated outcomes"):
        label_snapshots(
            pd.DataFrame({"lead_id": [], "as_of": []}), pd.DataFrame({"lead_id": []}),
            pd.Series(dtype="datetime64[ns]"), observation_end=T("2024-01-01"),
            has_outcome_dates=False,
        )  # fmt: skip


def test_batch_scoring_applies_the_same_rule() -> None:
    """`closed_at` (what batch scoring excludes) says what `label_snapshots` says at as_of."""
    outcomes = pd.DataFrame({
        "lead_id": ["a", "b", "c", "d"],
        "sql_at": pd.to_datetime([None, "2024-01-10", None, None]),
        "won_at": pd.to_datetime(["2024-01-20", None, None, None]),
        "lost_at": pd.to_datetime([None, None, "2024-01-05", "2024-03-01"]),
    })  # fmt: skip
    ids = pd.Series(["a", "b", "c", "d"])
    as_of = pd.Series(pd.to_datetime(["2024-01-31"] * 4))
    assert closed_at(outcomes, ids, as_of, "won").tolist() == [
        ALREADY_WON, pd.NA, ALREADY_LOST, pd.NA
    ]
    assert closed_at(outcomes, ids, as_of, "sql").tolist() == [
        ALREADY_WON, ALREADY_REACHED, ALREADY_LOST, pd.NA
    ]


def test_scoring_only_data_without_outcomes_leaves_every_lead_open() -> None:
    """A source with no outcome rows (e.g. today's open leads) is all scoring cases."""
    empty = pd.DataFrame({
        "lead_id": pd.Series([], dtype="string"),
        "sql_at": pd.Series([], dtype="datetime64[ns]"),
        "won_at": pd.Series([], dtype="datetime64[ns]"),
        "lost_at": pd.Series([], dtype="datetime64[ns]"),
    })  # fmt: skip
    ids = pd.Series(["a", "b"])
    as_of = pd.Series(pd.to_datetime(["2024-01-31"] * 2))
    assert closed_at(empty, ids, as_of, "won").isna().all()
