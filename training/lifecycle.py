"""The quarterly loop after training: promote (or roll back) the champion, change the policy.

* promotion is a gate: the candidate becomes `champion` only if, on the same rows, its ROC AUC
  is not lower and its Brier score not higher than the champion's (margins in training.yaml);
* the MQL policy can change without retraining: thresholds are recomputed from the version's
  logged held-out scores and written as the version tag `leadscore.thresholds`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.errors import LeadscoreError
from leadscore.features.labels import label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.serving.loader import load_scorer
from leadscore.serving.registry import (
    CHALLENGER,
    CHAMPION,
    PROMOTED_AT_TAG,
    REPLACED_TAG,
    THRESHOLDS_TAG,
)
from leadscore.serving.runtime import Scorer
from leadscore.training.config import PolicyConfig, TrainingConfig
from leadscore.training.data import time_split
from leadscore.training.evaluate import binary_metrics
from leadscore.training.policy import compute_thresholds, policy_rows

HELD_OUT = "heldout/calib_scores.parquet"
TEST_ROWS = "heldout/test_snapshots.parquet"


class LifecycleError(LeadscoreError, ValueError):
    """A promotion or policy change cannot be done as asked; the message says why."""


@dataclass
class Comparison:
    """Both models' metrics on the same rows, and the gate's verdict."""

    candidate: str
    champion: str | None
    rows: str
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float]
    passed: bool
    reasons: list[str]

    def table(self) -> str:
        """Both sets of numbers, side by side (one set when there is nothing to compare)."""
        keys = ["roc_auc", "brier", "pr_auc", "ece", "log_loss", "n"]
        if not self.champion_metrics:
            shown = ", ".join(f"{k} {self.candidate_metrics[k]:.4f}" for k in ("roc_auc", "brier"))
            return f"version {self.candidate} on {self.rows}: {shown} ({self.reasons[0]})"
        head = f"{'metric':<10} {'v' + self.candidate + ' (candidate)':>20} "
        head += f"{'v' + str(self.champion) + ' (champion)':>20}"
        lines = [f"compared on {self.rows}", head]
        for k in keys:
            a = self.candidate_metrics.get(k, float("nan"))
            b = self.champion_metrics.get(k, float("nan"))
            fmt = ",.0f" if k == "n" else ".4f"
            lines.append(f"{k:<10} {a:>20{fmt}} {b:>20{fmt}}")
        return "\n".join(lines)


def _version(client: MlflowClient, name: str, version: str | None, alias: str) -> str | None:
    if version:
        try:
            return str(client.get_model_version(name, version).version)
        except MlflowException as exc:
            raise LifecycleError(f"{name} has no version {version}") from exc
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _logged_frame(client: MlflowClient, name: str, version: str, artifact: str) -> pd.DataFrame:
    run_id = client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=tmp
            )
        except MlflowException as exc:
            raise LifecycleError(f"version {version}'s run {run_id} has no {artifact}") from exc
        return pd.read_parquet(path)


def _metrics(scorer: Scorer, rows: pd.DataFrame) -> dict[str, float]:
    missing = [n for n in scorer.spec.names if n not in rows.columns]
    if missing:
        raise LifecycleError(
            f"version {scorer.meta.get('version')} needs features the logged rows lack "
            f"({missing[:5]}...): compare on fresh data with --data"
        )
    p = scorer.calibrator(scorer.raw_frame(rows))
    return binary_metrics(rows["label"].to_numpy().astype(int), p)


def rows_from_data(crm: CrmData, scorer: Scorer, cfg: TrainingConfig, age: float) -> pd.DataFrame:
    """Labelled scoring cases at `age` among the newest leads (the test share of the split)."""
    created = crm.leads.set_index("lead_id")["created_at"]
    rows = snapshot(crm, scorer.spec, as_of_after_creation(crm.leads, age))
    labels = label_snapshots(
        rows, crm.outcomes, created, target=scorer.meta.get("target", "won"),
        horizon_days=float(scorer.meta.get("horizon_days", 90)),
        observation_end=crm.observation_end, has_outcome_dates=crm.has_outcome_dates,
    )  # fmt: skip
    rows = rows.assign(label=labels["label"])[labels["excluded"].isna().to_numpy()]
    split = time_split(crm.leads, cfg)
    return rows[rows["lead_id"].map(split).eq("test").to_numpy()]


def compare(
    client: MlflowClient,
    name: str,
    candidate: str,
    champion: str | None,
    cfg: TrainingConfig,
    data: tuple[CrmData, FeatureConfig] | None = None,
) -> Comparison:
    """Evaluate candidate and champion on the same rows and apply the promotion gate."""
    cand = load_scorer(f"models:/{name}/{candidate}")
    age = float(cand.meta.get("reference_age", cfg.reference_age))
    if data is not None:
        rows_of = {candidate: rows_from_data(data[0], cand, cfg, age)}
        where = f"the newest {cfg.split.test:.0%} of leads in {data[0].source}, at {age:g} days"
    else:
        logged = _logged_frame(client, name, candidate, TEST_ROWS)
        rows_of = {candidate: logged[logged["lead_age_days"] == age]}
        where = f"version {candidate}'s logged test snapshots at {age:g} days"
    cand_m = _metrics(cand, rows_of[candidate])
    if champion is None or champion == candidate:
        reason = "no champion yet" if champion is None else "it is already champion"
        return Comparison(candidate, champion, where, cand_m, {}, True, [reason])
    champ = load_scorer(f"models:/{name}/{champion}")
    rows = rows_from_data(data[0], champ, cfg, age) if data else rows_of[candidate]
    champ_m = _metrics(champ, rows)
    reasons = []
    margin = cfg.promotion
    if cand_m["roc_auc"] < champ_m["roc_auc"] - margin.max_roc_auc_drop:
        reasons.append(
            f"ROC AUC {cand_m['roc_auc']:.4f} < champion's {champ_m['roc_auc']:.4f} "
            f"- margin {margin.max_roc_auc_drop:g}"
        )
    if cand_m["brier"] > champ_m["brier"] + margin.max_brier_increase:
        reasons.append(
            f"Brier {cand_m['brier']:.4f} > champion's {champ_m['brier']:.4f} "
            f"+ margin {margin.max_brier_increase:g}"
        )
    return Comparison(candidate, champion, where, cand_m, champ_m, not reasons, reasons)


def promote(
    name: str,
    cfg: TrainingConfig,
    version: str | None = None,
    force: bool = False,
    data: tuple[CrmData, FeatureConfig] | None = None,
) -> Comparison:
    """Move `champion` to `version` (default: the challenger) if it passes the gate (or force)."""
    client = MlflowClient()
    candidate = _version(client, name, version, CHALLENGER)
    if candidate is None:
        raise LifecycleError(f"{name} has no {CHALLENGER}; train a model first or give --version")
    champion = _version(client, name, None, CHAMPION)
    result = compare(client, name, candidate, champion, cfg, data)
    if result.passed or force:
        client.set_registered_model_alias(name, CHAMPION, candidate)
        client.set_model_version_tag(name, candidate, PROMOTED_AT_TAG,
                                     datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
        if champion and champion != candidate:
            client.set_model_version_tag(name, candidate, REPLACED_TAG, champion)
    return result


def set_policy(
    name: str, kind: str, value: float, version: str | None = None, min_positives: int | None = None
) -> tuple[str, dict[str, Any]]:
    """Recompute thresholds of a version (default: champion) under a new policy; tag it."""
    client = MlflowClient()
    target = _version(client, name, version, CHAMPION)
    if target is None:
        raise LifecycleError(f"{name} has no {CHAMPION}; give --version")
    scorer = load_scorer(f"models:/{name}/{target}")
    logged = _logged_frame(client, name, target, HELD_OUT)
    held_out = policy_rows(logged, float(scorer.meta.get("reference_age", 30)))
    previous = scorer.thresholds
    per_source = min_positives or int(previous.policy.get("per_source_min_positives", 50))
    policy = PolicyConfig.model_validate(
        {"kind": kind, kind: value, "per_source_min_positives": per_source}
    )
    thresholds = compute_thresholds(held_out, policy, revision=previous.revision + 1)
    tag = {
        "policy": thresholds.policy,
        "global_threshold": thresholds.global_threshold,
        "by_source": thresholds.by_source,
        "revision": thresholds.revision,
        "set_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mql_rate_held_out": float((held_out["p"] >= thresholds.global_threshold).mean()),
    }
    client.set_model_version_tag(name, target, THRESHOLDS_TAG, json.dumps(tag))
    return target, tag
