"""The training table: snapshots at several ages, labels, exclusions and the time split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.errors import LeadscoreError
from leadscore.features.labels import exclusion_counts, label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec
from leadscore.training.config import TrainingConfig

SPLITS = ("train", "stop", "calib", "test")


class TrainingDataError(LeadscoreError, ValueError):
    """The data cannot support a trustworthy model; the message says why, with counts."""


@dataclass
class TrainingSet:
    """Labelled snapshot rows (scoring cases only) with their split, and what was left out."""

    rows: pd.DataFrame
    spec: FeatureSpec
    exclusions: dict[str, int]
    dropped_features: list[str]
    split_ranges: dict[str, dict[str, Any]] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)

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
    crm: CrmData, spec: FeatureSpec, cfg: TrainingConfig, ages: tuple[float, ...] | None = None
) -> TrainingSet:
    """Snapshots of every lead at each age, labelled, with exclusions counted and checked.

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
