"""Batch scoring: every open lead of a source, by the same scorer the API and the pyfunc use.

A lead is scored when it exists and is still open at its as_of (the scoring-case rule of
:func:`leadscore.features.labels.closed_at`); the others are listed with the reason, so that
nothing is dropped without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.labels import closed_at
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.serving.runtime import TIERS, Scorer

CHUNK = 50_000
NOT_CREATED = "not_created_yet"


@dataclass
class BatchScores:
    """Scores of the open leads, and the leads left out with why."""

    scores: pd.DataFrame
    excluded: pd.DataFrame
    model_name: str
    version: str

    def tier_counts(self) -> dict[str, int]:
        """Scored leads per tier (every tier listed)."""
        counts = self.scores["tier"].value_counts()
        return {t: int(counts.get(t, 0)) for t in TIERS}

    def write(self, out: Path) -> tuple[Path, Path]:
        """The scores to `out` and the excluded leads beside it (`*.excluded.parquet`)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        self.scores.to_parquet(out, index=False)
        excluded = out.with_suffix(".excluded.parquet")
        self.excluded.to_parquet(excluded, index=False)
        return out, excluded


def as_of_for(crm: CrmData, as_of_days: float | None, moment: datetime) -> pd.Series:
    """Each lead's as_of: created_at + N days, or one moment for all."""
    if as_of_days is not None:
        return as_of_after_creation(crm.leads, as_of_days)
    return pd.Series(pd.Timestamp(moment), index=crm.leads.index).astype("datetime64[ns]")


def score_source(
    crm: CrmData,
    scorer: Scorer,
    as_of: pd.Series,
    progress: Callable[[int], None] = lambda _: None,
) -> BatchScores:
    """Score every lead of `crm` open at its `as_of` (aligned to `crm.leads`) in chunks."""
    leads = crm.leads
    target = str(scorer.meta.get("target", "won"))
    reason = closed_at(crm.outcomes, leads["lead_id"], as_of, target)  # type: ignore[arg-type]
    reason[(leads["created_at"] > as_of).to_numpy()] = NOT_CREATED
    excluded = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": as_of, "reason": reason})
    excluded = excluded[excluded["reason"].notna()].reset_index(drop=True)
    open_mask = reason.isna().to_numpy()
    open_crm = CrmData(**{**crm.__dict__, "leads": leads[open_mask].reset_index(drop=True)})
    rows = snapshot(open_crm, scorer.spec, as_of[open_mask].reset_index(drop=True))
    parts = []
    for start in range(0, len(rows), CHUNK):
        parts.append(scorer.score_frame(rows.iloc[start : start + CHUNK]))
        progress(min(CHUNK, len(rows) - start))
    scores = pd.concat(parts, ignore_index=True) if parts else scorer.score_frame(rows)
    name = str(scorer.meta.get("model_name") or "")
    return BatchScores(scores, excluded, name, str(scorer.meta.get("version", "")))
