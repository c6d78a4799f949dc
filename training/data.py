"""The training table: snapshots at several ages, labels, exclusions and the time split."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData, isin
from leadscore.features.errors import LeadscoreError
from leadscore.features.labels import exclusion_counts, label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec
from leadscore.training.config import TrainingConfig

SPLITS = ("train", "stop", "calib", "test")


class TrainingDataError(LeadscoreError, ValueError):
    """The data cannot support a trustworthy model; the message says why, with counts."""


@dataclass(frozen=True)
class LeadExclusion:
    """Leads to leave out of training, each with its reason: the reps' rejections whose reason
    says the lead was never a real prospect (``train --exclude-feedback``)."""

    leads: Mapping[str, str]  # lead_id -> rejection reason
    reasons: tuple[str, ...]  # the reasons asked for, recorded even when no lead has one


@dataclass(frozen=True)
class ExcludedLeads:
    """What a :class:`LeadExclusion` took out of a source."""

    reasons: tuple[str, ...]
    by_reason: dict[str, int]  # leads of the source left out, per reason asked for
    not_in_data: int  # leads of the exclusion the source does not have (counted, not an error)

    @property
    def leads(self) -> int:
        """Leads left out, all reasons."""
        return sum(self.by_reason.values())

    def summary(self) -> str:
        """One line: how many leads were left out, by reason, and how many were not found."""
        counts = ", ".join(f"{r}: {n:,}" for r, n in self.by_reason.items())
        line = f"{self.leads:,} lead(s) left out by the reps' verdicts ({counts or 'no reason'})"
        if self.not_in_data:
            line += f"; {self.not_in_data:,} rejected lead(s) of the feedback are not in the data"
        return line

    def to_dict(self) -> dict[str, Any]:
        """For the run's records (MLflow params and population.json)."""
        return {"reasons": list(self.reasons), "excluded_leads": self.leads,
                "by_reason": dict(self.by_reason), "not_in_data": self.not_in_data}  # fmt: skip


def without_leads(crm: CrmData, exclusion: LeadExclusion) -> tuple[CrmData, ExcludedLeads]:
    """`crm` without the excluded leads (their events and outcomes too), and the counts.

    Lead ids of the exclusion that the source does not have are counted as `not_in_data`.
    """
    ids = crm.leads["lead_id"].astype("string")
    asked = pd.Series(list(exclusion.leads), dtype="string")
    found = isin(asked, ids)
    hits = Counter(exclusion.leads[str(i)] for i in asked[found])
    counted = ExcludedLeads(
        reasons=exclusion.reasons,
        by_reason={r: hits.get(r, 0) for r in exclusion.reasons}
        | {r: n for r, n in hits.items() if r not in exclusion.reasons},
        not_in_data=int((~found).sum()),
    )
    if not found.any():
        return crm, counted
    drop = asked[found]

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~isin(frame["lead_id"], drop)].reset_index(drop=True)

    return replace(crm, leads=keep(crm.leads), events=keep(crm.events),
                   outcomes=keep(crm.outcomes)), counted  # fmt: skip


@dataclass
class TrainingSet:
    """Labelled snapshot rows (scoring cases only) with their split, and what was left out."""

    rows: pd.DataFrame
    spec: FeatureSpec
    exclusions: dict[str, int]
    dropped_features: list[str]
    split_ranges: dict[str, dict[str, Any]] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # leads left out before labels and split by the reps' verdicts (None: none asked for)
    excluded_leads: ExcludedLeads | None = None

    def part(self, name: str) -> pd.DataFrame:
        """Rows of one split: train, stop (early stopping), calib (calibration), test."""
        return self.rows[self.rows["split"] == name]


def time_split(leads: pd.DataFrame, cfg: TrainingConfig) -> pd.Series:
    """Split leads by created_at: oldest train, then validation (stop, calib), newest test.

    Returns the split name per lead_id. Ties in created_at are broken by lead_id so the split
    is deterministic.
    """
    ordered = leads.sort_values(["created_at", "lead_id"])["lead_id"].to_numpy()
    n = len(ordered)
    edges = np.cumsum([cfg.split.train, cfg.split.valid / 2, cfg.split.valid / 2])
    cut = np.round(edges * n).astype(int)
    names = np.empty(n, dtype=object)
    names[: cut[0]] = "train"
    names[cut[0] : cut[1]] = "stop"
    names[cut[1] : cut[2]] = "calib"
    names[cut[2] :] = "test"
    return pd.Series(names, index=ordered, name="split")


def fingerprint(crm: CrmData) -> dict[str, Any]:
    """Row counts, date range and a content hash of the source tables."""
    digest = hashlib.sha256()
    for name in ("accounts", "contacts", "leads", "events", "outcomes"):
        table = crm.table(name)
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    created = crm.leads["created_at"]
    return {
        "source": crm.source,
        "leads": len(crm.leads),
        "events": len(crm.events),
        "accounts": len(crm.accounts),
        "created_from": str(created.min()),
        "created_to": str(created.max()),
        "observation_end": str(crm.observation_end),
        "content_sha256": digest.hexdigest(),
    }


def build_training_set(
    crm: CrmData,
    spec: FeatureSpec,
    cfg: TrainingConfig,
    ages: tuple[float, ...] | None = None,
    *,
    exclude: LeadExclusion | None = None,
) -> TrainingSet:
    """Snapshots of every lead at each age, labelled, with exclusions counted and checked.

    Leads of `exclude` are taken out first, before labels and the time split, so they are in
    no slice; ``excluded_leads`` records how many, by reason.

    Raises :class:`TrainingDataError` for a source without dated outcomes, a single class, or
    fewer positives in train than `cfg.min_train_positives`.
    """
    if not crm.has_outcome_dates:
        raise TrainingDataError(
            f"{crm.source}: this source has no dated outcomes, so labels and exclusions cannot "
            "be computed point in time; give an outcomes table (lead_id, sql_at, won_at, "
            "lost_at), or for leadforge a research_instructor bundle (student_public keeps "
            "only a final label)"
        )
    excluded = None
    if exclude is not None:
        crm, excluded = without_leads(crm, exclude)
    target = cfg.label.target
    model_spec = spec.without_target_defining(target)
    dropped = [n for n in spec.names if n not in model_spec.names]
    created = crm.leads.set_index("lead_id")["created_at"]
    parts = []
    for age in ages or cfg.snapshot_ages:
        rows = snapshot(crm, model_spec, as_of_after_creation(crm.leads, age))
        labels = label_snapshots(
            rows, crm.outcomes, created, target=target, horizon_days=cfg.label.horizon_days,
            observation_end=crm.observation_end, has_outcome_dates=True,
        )  # fmt: skip
        parts.append(rows.assign(label=labels["label"], excluded=labels["excluded"]))
    every = pd.concat(parts, ignore_index=True)
    exclusions = exclusion_counts(every)
    split = time_split(crm.leads, cfg)
    rows = every[every["excluded"].isna()].drop(columns="excluded").reset_index(drop=True)
    rows["label"] = rows["label"].astype(bool)
    rows["split"] = rows["lead_id"].map(split).to_numpy()
    rows["created_at"] = rows["lead_id"].map(created).to_numpy()
    _check(rows, cfg)
    ranges = {
        name: {
            "leads": int(part["lead_id"].nunique()),
            "snapshots": len(part),
            "positives": int(part["label"].sum()),
            "created_from": str(part["created_at"].min()),
            "created_to": str(part["created_at"].max()),
        }
        for name, part in rows.groupby("split", sort=False)
    }
    return TrainingSet(
        rows=rows,
        spec=model_spec,
        exclusions=exclusions,
        dropped_features=dropped,
        split_ranges={k: ranges[k] for k in SPLITS if k in ranges},
        fingerprint=fingerprint(crm)
        | {"snapshots": len(rows), "positive_rate": float(rows["label"].mean())},
        excluded_leads=excluded,
    )


def _check(rows: pd.DataFrame, cfg: TrainingConfig) -> None:
    if rows.empty:
        raise TrainingDataError("no scoring cases left after exclusions; nothing to learn from")
    classes = rows["label"].unique()
    if len(classes) < 2:
        raise TrainingDataError(
            f"every one of the {len(rows)} scoring snapshots has label {bool(classes[0])}: "
            "a model needs both converters and non-converters"
        )
    for name in SPLITS:
        part = rows[rows["split"] == name]
        if part.empty or part["label"].nunique() < 2:
            raise TrainingDataError(
                f"the {name} slice has {len(part)} snapshots and "
                f"{int(part['label'].sum())} positives: it needs both classes; "
                "use more leads or change `split` in training.yaml"
            )
    train = rows[rows["split"] == "train"]
    positives = int(train["label"].sum())
    if positives < cfg.min_train_positives:
        raise TrainingDataError(
            f"train has {positives} positive snapshots ({train['lead_id'].nunique()} leads, "
            f"{len(train)} snapshots); at least {cfg.min_train_positives} are required "
            "(min_train_positives in training.yaml)"
        )
