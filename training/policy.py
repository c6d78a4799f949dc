"""The written MQL policy turned into thresholds on calibrated probabilities.

* ``capacity``: the top `capacity` share of leads are MQLs (sales can take that many);
* ``precision``: the lowest threshold at which the observed conversion among MQLs is at
  least `precision` (the most MQLs that keep that promise).

Thresholds are set on the held-out leads as they stand at the reference age (30 days), one
snapshot per lead, so "the top 20% of leads" counts each lead once. Each lead source with at
least `per_source_min_positives` converting leads in the held-out slice gets its own
threshold under the same policy (with capacity, each source hands over its own top share, so
no channel is starved); other sources use the global threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from leadscore.serving.runtime import Thresholds, TierCuts
from leadscore.training.config import PolicyConfig, TierConfig


def policy_dict(cfg: PolicyConfig) -> dict[str, Any]:
    """The policy as it is recorded with the model."""
    value = cfg.capacity if cfg.kind == "capacity" else cfg.precision
    return {
        "kind": cfg.kind,
        "value": value,
        "per_source_min_positives": cfg.per_source_min_positives,
    }


def threshold_for(p: np.ndarray, y: np.ndarray, kind: str, value: float) -> float:
    """One threshold on probabilities `p` (labels `y`) under one policy."""
    if len(p) == 0:
        raise ValueError("no held-out scores to set a threshold on")
    if kind == "capacity":
        # the k-th highest score, so that ~`value` of leads are at or above it
        k = max(1, int(np.ceil(value * len(p))))
        return float(np.sort(p)[::-1][k - 1])
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order].astype(float)
    precision = np.cumsum(sorted_y) / np.arange(1, len(p) + 1)
    # thresholds only at the last occurrence of each distinct score (ties go together)
    last_of_value = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    ok = np.flatnonzero((precision >= value) & last_of_value)
    if ok.size == 0:
        return float(sorted_p[0])  # nothing reaches it: only the very best leads
    return float(sorted_p[ok[-1]])


def policy_rows(held_out: pd.DataFrame, reference_age: float) -> pd.DataFrame:
    """The held-out snapshots a policy is set on: one per lead, at the reference age."""
    return held_out[held_out["lead_age_days"] == reference_age]


def compute_thresholds(held_out: pd.DataFrame, cfg: PolicyConfig, revision: int = 0) -> Thresholds:
    """Thresholds from held-out calibrated scores (`p`, `label`, `lead_source`, `lead_id`)."""
    value = cfg.capacity if cfg.kind == "capacity" else cfg.precision
    p, y = held_out["p"].to_numpy(), held_out["label"].to_numpy()
    global_t = threshold_for(p, y, cfg.kind, value)
    by_source: dict[str, float] = {}
    for source, part in held_out.groupby("lead_source"):
        converted = part.loc[part["label"].astype(bool), "lead_id"].nunique()
        if converted >= cfg.per_source_min_positives:
            by_source[str(source)] = threshold_for(
                part["p"].to_numpy(), part["label"].to_numpy(), cfg.kind, value
            )
    return Thresholds(policy_dict(cfg), global_t, by_source, revision)


def tier_cuts(rows: pd.DataFrame, thresholds: Thresholds, cfg: TierConfig) -> TierCuts:
    """The B and C cuts under the tier policy, from the policy rows (`p`, `label`,
    `lead_source`): fixed cuts as written, or learned on the leads below their source's MQL
    threshold (shares of all leads, or the conversion each tier keeps)."""
    if cfg.kind == "probability":
        return TierCuts(cfg.b, cfg.c)
    p, y = rows["p"].to_numpy(dtype=float), rows["label"].to_numpy()
    cut = np.array([thresholds.for_source(s) for s in rows["lead_source"].astype("string")])
    rest = p < cut
    if not rest.any():  # every lead is an MQL: nothing to split
        return TierCuts(1.0, 1.0)
    rest_p, rest_y = p[rest], y[rest]
    if cfg.kind == "share":  # shares of all leads, taken from those below the MQLs
        scale = len(p) / len(rest_p)
        b = _share_cut(rest_p, rest_y, cfg.b * scale)
        c = _share_cut(rest_p, rest_y, (cfg.b + cfg.c) * scale)
    else:
        b = threshold_for(rest_p, rest_y, "precision", cfg.b)
        c = threshold_for(rest_p, rest_y, "precision", cfg.c)
    return TierCuts(b, min(b, c))


def _share_cut(p: np.ndarray, y: np.ndarray, share: float) -> float:
    """The cut at or above which about `share` of `p` lies (all of it past 1; nothing at 0).

    Scores can tie in blocks (an isotonic calibrator is flat between its knots): the cut goes
    above the block at the k-th highest score when that comes nearer the share than taking
    the whole block in, so a tier is not swallowed by the one above it.
    """
    if share <= 0:
        return float(np.nextafter(p.max(), np.inf))
    cut = threshold_for(p, y, "capacity", min(1.0, share))
    higher = p[p > cut]
    if higher.size and abs(higher.size / p.size - share) < abs(np.mean(p >= cut) - share):
        return float(higher.min())
    return cut
