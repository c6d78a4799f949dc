"""Labels: whether a snapshot is a scoring case, and what it later turned into.

A pure function of the outcomes, the target (`won` or `sql`), the horizon and as_of, used by
training, the criteria report and batch scoring alike.

* label = the target moment falls within ``horizon_days`` of ``created_at``;
* not a scoring case: the lead already reached the target, or was already won or lost, at
  as_of (there is nothing left to predict);
* not final (right-censored): the horizon ends after the source's observation end, so a
  conversion could still happen unseen.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from leadscore.features.errors import LeadscoreError

Target = Literal["won", "sql"]
TARGET_COLUMN: dict[str, str] = {"won": "won_at", "sql": "sql_at"}

# Exclusion reasons, in the order they are checked.
ALREADY_WON = "won_before_as_of"
ALREADY_LOST = "lost_before_as_of"
ALREADY_REACHED = "target_reached_before_as_of"  # e.g. already an SQL, for target sql
NOT_FINAL = "label_not_final"


class LabelError(LeadscoreError, ValueError):
    """Labels cannot be computed from this source."""


def label_snapshots(
    snapshots: pd.DataFrame,
    outcomes: pd.DataFrame,
    created_at: pd.Series,
    *,
    target: Target = "won",
    horizon_days: float = 90,
    observation_end: pd.Timestamp,
    has_outcome_dates: bool = True,
) -> pd.DataFrame:
    """Label each snapshot row (`lead_id`, `as_of`).

    `created_at` is indexed by lead_id. Returns `lead_id`, `as_of`, `label` (bool, missing
    when excluded) and `excluded` (a reason from this module, or missing for scoring cases),
    aligned with `snapshots`.
    """
    if not has_outcome_dates:
        raise LabelError(
            "this source carries no dated outcomes: labels need the moments leads reached SQL, "
            "won or lost; give an outcomes table (lead_id, sql_at, won_at, lost_at), or for "
            "leadforge a research_instructor bundle (student_public keeps only a final label)"
        )
    if target not in TARGET_COLUMN:
        raise LabelError(f"unknown target {target!r}; expected one of {sorted(TARGET_COLUMN)}")
    moments = _moments(outcomes, snapshots["lead_id"], target)
    as_of = snapshots["as_of"].to_numpy(dtype="datetime64[ns]")
    created = snapshots["lead_id"].map(created_at).to_numpy(dtype="datetime64[ns]")
    horizon_end = created + np.timedelta64(int(horizon_days * 86_400), "s")
    closed = _closed(moments, as_of)
    with np.errstate(invalid="ignore"):
        reasons = np.where(
            closed == "",
            np.where(horizon_end > np.datetime64(observation_end, "ns"), NOT_FINAL, ""),
            closed,
        )
    label = moments["reached"] <= horizon_end  # NaT compares False: never reached
    excluded = pd.Series(reasons, index=snapshots.index, dtype="string").replace("", pd.NA)
    return pd.DataFrame(
        {
            "lead_id": snapshots["lead_id"],
            "as_of": snapshots["as_of"],
            "label": pd.Series(label, index=snapshots.index, dtype="boolean").mask(
                excluded.notna()
            ),
            "excluded": excluded,
        }
    )


def _moments(outcomes: pd.DataFrame, lead_ids: pd.Series, target: Target) -> dict[str, np.ndarray]:
    """The target, won and lost moments of each lead (NaT when it never happened)."""
    by_lead = outcomes.set_index("lead_id")

    def moment(column: str) -> np.ndarray:
        # no column, or no outcome rows at all (scoring-only data: pandas cannot map an empty
        # datetime column): nothing happened to any lead
        if column not in by_lead.columns or by_lead.empty:
            return np.full(len(lead_ids), np.datetime64("NaT"), dtype="datetime64[ns]")
        return lead_ids.map(by_lead[column]).to_numpy(dtype="datetime64[ns]")

    return {"reached": moment(TARGET_COLUMN[target]), "won": moment("won_at"),
            "lost": moment("lost_at")}  # fmt: skip


def _closed(moments: dict[str, np.ndarray], as_of: np.ndarray) -> np.ndarray:
    """The rule of a scoring case: '' when the lead is still open at as_of, else why not."""
    with np.errstate(invalid="ignore"):
        return np.select(
            [moments["won"] <= as_of, moments["lost"] <= as_of, moments["reached"] <= as_of],
            [ALREADY_WON, ALREADY_LOST, ALREADY_REACHED],
            default="",
        )


def closed_at(
    outcomes: pd.DataFrame, lead_ids: pd.Series, as_of: pd.Series, target: Target = "won"
) -> pd.Series:
    """Why each lead is not a scoring case at its as_of (the target already reached, or won or
    lost), missing for open leads: the rule :func:`label_snapshots` applies, for scoring."""
    moments = _moments(outcomes, lead_ids.reset_index(drop=True), target)
    reasons = _closed(moments, as_of.to_numpy(dtype="datetime64[ns]"))
    return pd.Series(reasons, index=lead_ids.index, dtype="string").replace("", pd.NA)


def exclusion_counts(labels: pd.DataFrame) -> dict[str, int]:
    """How many snapshots each reason excluded (reasons with no rows left out)."""
    counts = labels["excluded"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
