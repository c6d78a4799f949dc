"""Batch scoring: every open lead of a source, by the same scorer the API and the pyfunc use.

A lead is scored when it exists and is still open at its as_of (the scoring-case rule of
:func:`leadscore.features.labels.closed_at`); the others are listed with the reason, so that
nothing is dropped without a word.

With next steps (`leadscore score --next-steps`), each step of `next_steps.yaml` is tried on
every open lead at once: its event is added to every open lead at that lead's as_of and the
snapshot is built and scored again, one extra pass per step. The best step per lead (largest
gain above zero) becomes three columns: `next_step`, `next_step_probability`, `next_step_gain`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.engines import NOT_CREATED, ROW, cases_view, snapshot_batches
from leadscore.features.labels import closed_at
from leadscore.features.sinks import ParquetSink, excluded_path
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.serving.next_steps import EVENT_ID_PREFIX, Step
from leadscore.serving.runtime import TIERS, Scorer

if TYPE_CHECKING:
    from leadscore.features.engines import SqlEngine

CHUNK = 50_000


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

    def write(self, out: Path | str) -> tuple[Path | str, Path | str]:
        """The scores to `out` and the excluded leads beside it (:func:`excluded_path`)."""
        excluded = excluded_path(out)
        for frame, path in ((self.scores, out), (self.excluded, excluded)):
            sink = ParquetSink(path)
            sink.write(frame)
            sink.close()
        return out, excluded


@dataclass
class StreamedScores:
    """What :func:`score_sql` wrote: counts, as :class:`BatchScores` reports them."""

    scores_path: Path | str
    excluded_path: Path | str
    model_name: str
    version: str
    scored: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    mqls: int = 0
    stale: int = 0
    excluded: Counter[str] = field(default_factory=Counter)

    def tier_counts(self) -> dict[str, int]:
        """Scored leads per tier (every tier listed)."""
        return {t: int(self.tiers.get(t, 0)) for t in TIERS}

    def add(self, scores: pd.DataFrame) -> None:
        """Count one written chunk of scores."""
        self.scored += len(scores)
        self.tiers.update(scores["tier"].tolist())
        self.mqls += int(scores["is_mql"].sum())
        self.stale += int(scores["stale"].sum())


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
    steps: Sequence[Step] | None = None,
) -> BatchScores:
    """Score every lead of `crm` open at its `as_of` (aligned to `crm.leads`) in chunks; with
    `steps` (even none), add each lead's best next step (:func:`best_steps`)."""
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
    if steps is not None:
        best = best_steps(open_crm, scorer, as_of[open_mask].reset_index(drop=True), steps,
                          scores["mql_probability"].to_numpy())  # fmt: skip
        scores = pd.concat([scores, best], axis=1)
    name = str(scorer.meta.get("model_name") or "")
    return BatchScores(scores, excluded, name, str(scorer.meta.get("version", "")))


def score_sql(
    engine: SqlEngine,
    scorer: Scorer,
    out: Path | str,
    chunk_rows: int,
    progress: Callable[[int], None] = lambda _: None,
) -> StreamedScores:
    """Score every lead open at its as_of on a SQL engine whose canonical views and
    ``moments`` are registered (:func:`~leadscore.features.engines.canonical_views`,
    :func:`~leadscore.features.engines.moments_view`), streaming `chunk_rows` leads at a time
    into `out` (a file or `DIR/`); the excluded leads, with why, beside it."""
    target = str(scorer.meta.get("target", "won"))
    cases_view(engine, target)
    engine.view("open_cases", f"SELECT lead_id, as_of, {ROW} FROM cases WHERE reason IS NULL")
    result = StreamedScores(out, excluded_path(out), str(scorer.meta.get("model_name") or ""),
                            str(scorer.meta.get("version", "")))  # fmt: skip
    sink = ParquetSink(out)
    chunks: Iterable[pd.DataFrame] = snapshot_batches(engine, scorer.spec, "open_cases",
                                                      chunk_rows)  # fmt: skip
    for rows in chunks:
        scores = scorer.score_frame(rows)
        sink.write(scores)
        result.add(scores)
        progress(len(rows))
    if not sink.rows:  # no open lead: an empty file with the scores' columns all the same
        sink.write(scorer.score_frame(_empty_rows(scorer)))
    sink.close()
    excluded = ParquetSink(result.excluded_path)
    sql = f"SELECT lead_id, as_of, reason FROM cases WHERE reason IS NOT NULL ORDER BY {ROW}"
    for batch in engine.batches(sql, chunk_rows):
        frame = _excluded_frame(batch.to_pandas())
        excluded.write(frame)
        result.excluded.update(frame["reason"].tolist())
    if not excluded.rows:
        excluded.write(_excluded_frame(pd.DataFrame({"lead_id": [], "as_of": [], "reason": []})))
    excluded.close()
    return result


def _excluded_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The local path's dtypes for the excluded leads."""
    return pd.DataFrame({
        "lead_id": frame["lead_id"].astype("string"),
        "as_of": frame["as_of"].astype("datetime64[ns]"),
        "reason": frame["reason"].astype("string"),
    })  # fmt: skip


def _empty_rows(scorer: Scorer) -> pd.DataFrame:
    from leadscore.features.sql import typed_rows

    columns: dict[str, Any] = {"lead_id": [], "as_of": [], "lead_age_days": []}
    columns |= {f.name: [] for f in scorer.spec if f.kind != "age"}
    return typed_rows(pd.DataFrame(columns), scorer.spec)


def step_events(leads: pd.DataFrame, as_of: pd.Series, step: Step) -> pd.DataFrame:
    """The step's event for every lead of `leads`, dated at its as_of (aligned to `leads`)."""
    ids = leads["lead_id"].astype(str).to_numpy()
    frame = pd.DataFrame({
        "event_id": np.char.add(f"{EVENT_ID_PREFIX}{step.id}:", ids.astype("U")),
        "lead_id": leads["lead_id"].to_numpy(),
        "timestamp": pd.Series(as_of).astype("datetime64[ns]").to_numpy(),
    })  # fmt: skip
    for column, value in step.event.record().items():
        frame[column] = value
    return frame


def best_steps(
    crm: CrmData,
    scorer: Scorer,
    as_of: pd.Series,
    steps: Sequence[Step],
    before: np.ndarray,
) -> pd.DataFrame:
    """Each lead's best step: `next_step` (id; missing when no step raises the score),
    `next_step_probability` and `next_step_gain` (probability points; missing likewise).

    `crm.leads`, `as_of` and `before` (the leads' probabilities now) are aligned. One snapshot
    and one scoring pass per step; equal gains go to the step listed first, as in the API.
    """
    n = len(crm.leads)
    best = np.full(n, None, dtype=object)
    gain = np.zeros(n)
    after = np.full(n, np.nan)
    for step in steps if n else ():
        events = pd.concat([crm.events, step_events(crm.leads, as_of, step)], ignore_index=True)
        rows = snapshot(replace(crm, events=events), scorer.spec, as_of)
        probability = scorer.calibrator(scorer.raw_frame(rows))
        better = probability - before > gain
        best[better] = step.id
        gain[better] = (probability - before)[better]
        after[better] = probability[better]
    return pd.DataFrame({
        "next_step": pd.Series(best, dtype="string"),
        "next_step_probability": after,
        "next_step_gain": np.where(np.isnan(after), np.nan, gain),  # NaN where no step raises
    })  # fmt: skip
