"""Evaluation on the test slice: metrics, slices, plots and the model card."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over `bins` equal-mass bins (sorted by probability)."""
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(p))):
        total += len(chunk) * abs(float(np.mean(p[chunk])) - float(np.mean(y[chunk])))
    return total / len(p)


def lift_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    """Conversion among the top 10% by score divided by the overall conversion."""
    k = max(1, int(np.ceil(0.1 * len(p))))
    top = np.argsort(-p, kind="stable")[:k]
    base = float(np.mean(y))
    return float(np.mean(y[top]) / base) if base > 0 else float("nan")


def binary_metrics(
    y: np.ndarray, p: np.ndarray, is_mql: np.ndarray | None = None
) -> dict[str, float]:
    """The headline metric set (names without prefix or suffix)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    out = {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "ece": ece(y, p),
        "lift_top_decile": lift_top_decile(y, p),
        "positive_rate": float(np.mean(y)),
        "n": float(len(y)),
    }
    if is_mql is not None:
        mql = np.asarray(is_mql, dtype=bool)
        out["precision_at_mql"] = float(np.mean(y[mql])) if mql.any() else float("nan")
        out["recall_at_mql"] = float(mql[y == 1].mean()) if (y == 1).any() else float("nan")
        out["mql_rate"] = float(mql.mean())
    return out


def prefixed(metrics: Mapping[str, float], prefix: str, suffix: str = "") -> dict[str, float]:
    """`{prefix}_{name}{suffix}` names, as logged to MLflow."""
    return {f"{prefix}_{k}{suffix}": v for k, v in metrics.items()}


def json_safe(value: Any) -> Any:
    """`value` as strict JSON data: NaN and infinities become None, numpy scalars Python
    numbers, timestamps ISO text, tuples lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def slug(value: Any) -> str:
    """A metric-name-safe version of a slice value."""
    return "".join(c if c.isalnum() else "_" for c in str(value).lower()).strip("_")


# ---------------------------------------------------------------------------------------------
# plots


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    """A figure and its axes without pyplot: no global state, no backend to choose, no window."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_all(
    out: Path,
    y: np.ndarray,
    p: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    tiers: np.ndarray,
    raw: np.ndarray,
    importance: pd.Series,
) -> list[Path]:
    """ROC, precision-recall, calibration, cumulative gains, conversion by tier, |SHAP|."""
    out.mkdir(parents=True, exist_ok=True)
    curves = {"lightgbm (calibrated)": p, **baselines}
    paths = []

    fig, ax = _figure(5, 5)
    for name, score in curves.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{name} AUC={roc_auc_score(y, score):.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, out / "roc.png"))

    fig, ax = _figure(5, 5)
    for name, score in curves.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ax.plot(recall, precision, label=f"{name} AP={average_precision_score(y, score):.3f}")
    ax.axhline(float(np.mean(y)), ls=":", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "precision_recall.png"))

    fig, ax = _figure(5, 5)
    for name, score in (("uncalibrated", raw), ("calibrated", p)):
        order = np.argsort(score, kind="stable")
        chunks = np.array_split(order, 10)
        ax.plot([score[c].mean() for c in chunks], [y[c].mean() for c in chunks], "o-",
                label=f"{name} ECE={ece(y, score):.3f}")  # fmt: skip
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="predicted probability", ylabel="observed conversion",
           title="Calibration (10 equal-mass bins)")  # fmt: skip
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "calibration.png"))

    fig, ax = _figure(5, 5)
    for name, score in curves.items():
        order = np.argsort(-score, kind="stable")
        gains = np.cumsum(y[order]) / max(y.sum(), 1)
        ax.plot(np.arange(1, len(y) + 1) / len(y), gains, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="random")
    ax.set(xlabel="share of leads contacted", ylabel="share of conversions",
           title="Cumulative gains (test)")  # fmt: skip
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "cumulative_gains.png"))

    fig, ax = _figure(5, 4)
    frame = pd.DataFrame({"tier": tiers, "y": y}).groupby("tier")["y"].agg(["mean", "size"])
    frame = frame.reindex(["A", "B", "C", "D"]).fillna(0)
    ax.bar(frame.index, frame["mean"])
    for i, (rate, size) in enumerate(zip(frame["mean"], frame["size"], strict=True)):
        ax.text(i, rate, f"{rate:.0%}\nn={int(size)}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="observed conversion", title="Conversion by tier (test)")
    paths.append(_save(fig, out / "conversion_by_tier.png"))

    fig, ax = _figure(6, 6)
    top = importance.sort_values().tail(20)
    ax.barh(top.index, top.to_numpy())
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Feature importance (test)")
    paths.append(_save(fig, out / "shap_importance.png"))
    return paths


def _bullets(items: list[str], empty: str) -> str:
    return "\n".join(f"- {item}" for item in items) or f"- {empty}"


def _calibration(report: Mapping[str, Any]) -> str:
    """How the calibrator was chosen, and its out-of-fold ECE with its interval."""
    why = report.get("why", "")
    chosen = (report.get("methods") or {}).get(report.get("chosen", ""), {})
    low, high = chosen.get("ece_interval") or (None, None)
    if chosen.get("ece") is None or low is None or high is None:
        return why
    snapshots = report.get("out_of_fold_snapshots", 0)
    return (f"{why}; on {snapshots:,} out-of-fold snapshots of the labelled history, "
            f"ECE {chosen['ece']:.4f} (90% interval {low:.4f}-{high:.4f})")  # fmt: skip


def _selection(selection: Mapping[str, Any] | None) -> str:
    """The model-selection paragraph of the card."""
    if not selection:
        return "LightGBM (no selection recorded)."
    scores = ", ".join(f"{f} {v:.4f}" for f, v in selection["scores"].items())
    return (f"Registered: **{selection['family']}**, {selection['why']} "
            f"({selection['metric']} on the validation slice: {scores}).")  # fmt: skip


def model_card(info: Mapping[str, Any]) -> str:
    """A Markdown model card from the run's facts."""
    m = info["metrics"]
    family = (info.get("selection") or {}).get("family", "lightgbm")

    def row(name: str, key: str, criteria_key: str | None = None) -> str:
        shown = [m.get(f"test_{key}"), m.get(f"logreg_test_{key}")]
        shown.append(m.get(f"criteria_test_{criteria_key}") if criteria_key else None)
        return f"| {name} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in shown) + " |"

    splits = "\n".join(
        f"| {name} | {r['leads']} | {r['snapshots']} | {r['positives']} | "
        f"{r['created_from'][:10]} .. {r['created_to'][:10]} |"
        for name, r in info["split_ranges"].items()
    )
    exclusions = (
        "\n".join(f"- {k}: {v} snapshots" for k, v in info["exclusions"].items()) or "- none"
    )
    return f"""# Model card: {info["model_name"]}

Trained {info["trained_at"]} from `{info["fingerprint"]["source"]}`
(content sha256 `{info["fingerprint"]["content_sha256"][:16]}`).

## Task
Probability that a lead reaches **{info["target"]}** within **{info["horizon_days"]:g} days** of
creation, scored at any lead age (trained on snapshots at {info["ages"]} days; headline
metrics at {info["reference_age"]:g} days). Features come only from history dated at or before
the snapshot moment.

## Data and population
| slice | leads | snapshots | positives | created |
| --- | --- | --- | --- | --- |
{splits}

`stop` ends boosting (early stopping); `calib` chooses and fits the calibrator and sets the
thresholds; `test` is only reported on.

Excluded snapshots (not scoring cases, or labels not final):
{exclusions}

Features dropped because they define the target: {info["dropped_features"] or "none"}.

## Model selection
{_selection(info.get("selection"))}

## Test metrics at {info["reference_age"]:g} days
| metric | registered ({family}) | logistic regression | SQL criteria |
| --- | --- | --- | --- |
{row("ROC AUC", "roc_auc")}
{row("PR AUC", "pr_auc")}
{row("Brier", "brier")}
{row("ECE", "ece")}
{row("precision at MQL (criteria: at sql_ready)", "precision_at_mql", "precision")}
{row("recall at MQL (criteria: at sql_ready)", "recall_at_mql", "recall")}
{row("share flagged (MQL / sql_ready)", "mql_rate", "flagged")}

Calibration: `{info["calibrator"]}`, {_calibration(info.get("calibration") or {})}
(cross-validated {(info.get("calibration") or {}).get("criterion", "log loss")} per method:
{info["calibration_scores"]}).
Before calibration: Brier {m.get("test_brier_uncalibrated", float("nan")):.4f},
ECE {m.get("test_ece_uncalibrated", float("nan")):.4f}.

## Threshold policy
{info["policy"]}: global threshold {info["thresholds"]["global_threshold"]:.4f};
per source: {info["thresholds"]["by_source"] or "none (too few positives per source)"}.
Tiers ({info["tiers"].get("kind", "probability")} policy): A = MQL; B >= {info["tiers"]["b"]};
C >= {info["tiers"]["c"]}; D below.

## Caveats and the leakage audit
{_bullets(info.get("caveats") or [], "none: every feature is point in time")}

Columns the leakage audit refused (left out of the model):
{_bullets(info.get("audit_refused") or [], "none")}

## Known limits
- Trained on one source's history; a new market, product or lead mix needs retraining.
- Scores for leads older than {max(info["ages"]):g} days are extrapolation (`stale`).
- Category values never seen in training are scored as missing and reported as unseen.
- Probabilities are calibrated on recent held-out time; recheck calibration each quarter.
"""
