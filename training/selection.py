"""Model selection: which family is registered, LightGBM or logistic regression.

Both are fitted on the training slice and scored on the same held-out rows: the whole
validation slice (both halves: at a few thousand leads one half alone is too few to tell
families apart; the booster's early stopping looked at the first half, which favours it
slightly, so logistic regression wins only where it holds its own). The
better by the configured metric wins, except that the simpler model, logistic regression, wins
whenever it is within the tolerance of the best: a model the reps can read term by term is
worth more than a difference smaller than the metric's own noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.training.config import SelectionConfig

SIMPLEST_FIRST = ("logistic", "lightgbm")  # simpler families first: they win ties


@dataclass(frozen=True)
class Selection:
    """The chosen family, every candidate's score and the margin over the runner-up."""

    family: str
    metric: str
    scores: dict[str, float]
    margin: float  # chosen score minus the best other score (negative: won by simplicity)
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the model's metadata, the model card)."""
        return {"family": self.family, "metric": self.metric, "scores": self.scores,
                "margin": self.margin, "why": self.why}  # fmt: skip


def score(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """`metric` of probabilities `p` for labels `y` (NaN with one class only)."""
    if len(np.unique(y)) < 2:
        return float("nan")
    if metric == "pr_auc":
        return float(average_precision_score(y, p))
    return float(roc_auc_score(y, p))


def select_family(
    predictions: Mapping[str, np.ndarray], y: np.ndarray, cfg: SelectionConfig
) -> Selection:
    """Choose among `predictions` (family -> probabilities on the same rows, labels `y`)."""
    scores = {f: score(cfg.metric, y, p) for f, p in predictions.items()}
    order = sorted(scores, key=lambda f: SIMPLEST_FIRST.index(f))
    if len(order) == 1 or not all(np.isfinite(v) for v in scores.values()):
        family = order[0] if len(order) == 1 else order[-1]
        why = "the only family configured" if len(order) == 1 else "no score to compare"
        return Selection(family, cfg.metric, scores, 0.0, why)
    best = max(scores.values())
    family = next(f for f in order if scores[f] >= best - cfg.tolerance)
    others = max(v for f, v in scores.items() if f != family)
    margin = scores[family] - others
    if scores[family] == best:
        why = f"best {cfg.metric} by {margin:.4f}"
    else:
        why = (f"{cfg.metric} within {cfg.tolerance:g} of the best ({-margin:.4f} below): "
               "the simpler model")  # fmt: skip
    return Selection(family, cfg.metric, scores, margin, why)
