"""The leakage audit: which candidate columns encode the outcome, before anything trains on them.

Point-in-time features built from dated events cannot see the future by construction; undated
attributes can (a rep's notes typed after the call, a quality grade, the CRM's own score). Each
attribute column of the training population is checked on its own, against the label:

Blocking (training refuses the column unless a person keeps it):

* its single-column cross-validated ROC AUC is >= 0.85 (out-of-fold target means of its values,
  numbers in deciles, missing as its own value);
* one value held by >= 100 leads converts at >= 95%, or at <= a tenth of the base rate
  (categories and booleans: an exact number is not a "value" a rep types);
* whether it is missing alone predicts the label with ROC AUC >= 0.75;
* it holds dates, and >= 5% of converted leads (at least 10) have one dated after their outcome;
* its name is one of the contract's current-state columns (stage, is_sql, ...): this one no
  person can keep.

Warning only: a name that suggests an after-the-fact field (status, stage, quality, score,
rating, reason, note, tag, converted, closed, won, lost).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.criteria.evidence import labelled_rows
from leadscore.features.labels import TARGET_COLUMN, Target
from leadscore.features.schema import CURRENT_STATE_COLUMNS
from leadscore.features.spec import BUILTIN_FEATURES

SINGLE_AUC = 0.85
MISSING_AUC = 0.75
PURE_LEADS = 100
PURE_HIGH = 0.95
PURE_LOW_SHARE = 0.1  # of the base rate
AFTER_SHARE, AFTER_LEADS = 0.05, 10
FOLDS = 5
SMOOTHING = 10.0  # pseudo-leads at the base rate behind each value's out-of-fold mean
AFTER_THE_FACT = re.compile(
    r"status|stage|quality|score|rating|reason|note|tag|converted|closed|\bwon\b|\blost\b", re.I
)


@dataclass
class ColumnAudit:
    """One column's evidence and verdict."""

    column: str  # as a person knows it (the export's own name)
    feature: str
    kind: str
    auc: float
    missing_share: float
    missing_auc: float
    purest: str | None = None  # "value: n leads, r% converted" of the most extreme common value
    after_outcome: float | None = None  # share of converted leads dated after their outcome
    blocked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kept: bool = False  # blocked, but a person kept it (config or --allow-column)

    @property
    def verdict(self) -> str:
        """``blocked``, ``kept`` (blocked but allowed), ``warning`` or ``ok``."""
        if self.blocked:
            return "kept" if self.kept else "blocked"
        return "warning" if self.warnings else "ok"


@dataclass
class AuditReport:
    """Every candidate column audited on one labelled population."""

    columns: list[ColumnAudit]
    leads: int
    converted: int

    @property
    def base_rate(self) -> float:
        """Share of leads that converted."""
        return self.converted / self.leads if self.leads else math.nan

    def refused(self) -> list[ColumnAudit]:
        """Blocked columns no person kept."""
        return [c for c in self.columns if c.verdict == "blocked"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: population and every column's evidence."""
        return {
            "leads": self.leads,
            "converted": self.converted,
            "base_rate": self.base_rate,
            "thresholds": {"single_column_auc": SINGLE_AUC, "missingness_auc": MISSING_AUC,
                           "pure_value_leads": PURE_LEADS, "pure_high": PURE_HIGH,
                           "pure_low_share_of_base": PURE_LOW_SHARE,
                           "after_outcome_share": AFTER_SHARE},
            "columns": [asdict(c) | {"verdict": c.verdict} for c in self.columns],
        }

    def rows(self) -> list[tuple[str, ...]]:
        """Text cells per column: column, verdict, AUC, missing, why."""
        out: list[tuple[str, ...]] = []
        for c in sorted(self.columns, key=lambda c: (c.verdict != "blocked", -c.auc)):
            why = "; ".join(c.blocked + c.warnings) or (c.purest or "")
            missing = f"{c.missing_share:.0%}" + (
                f" (AUC {c.missing_auc:.2f})" if c.missing_share > 0 else ""
            )
            out.append((c.column, c.verdict, f"{c.auc:.3f}", missing, why))
        return out


def _oriented_auc(y: np.ndarray, score: np.ndarray) -> float:
    if len(np.unique(y)) < 2 or len(np.unique(score)) < 2:
        return 0.5
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _levels(values: pd.Series, kind: str) -> pd.Series:
    """Values as discrete levels: numbers in deciles, missing as its own level."""
    if kind in ("number", "count"):
        numbers = pd.to_numeric(values, errors="coerce")
        present = numbers.dropna()
        if present.nunique() > 10:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)))
            levels = pd.Series(np.digitize(numbers, edges[1:-1]), index=values.index).astype(str)
        else:
            levels = numbers.astype(str)
        return levels.where(numbers.notna(), "<missing>")
    text = values.astype("string")
    return text.fillna("<missing>").astype(str)


def single_column_auc(levels: pd.Series, y: np.ndarray, seed: int = 0) -> float:
    """Cross-validated ROC AUC of one column on its own: out-of-fold smoothed conversion rate
    of each value (unseen values get the fold's base rate)."""
    if len(np.unique(y)) < 2:
        return 0.5
    folds = min(FOLDS, int(np.bincount(y.astype(int)).min()))
    if folds < 2:
        return 0.5
    oof = np.empty(len(y))
    values = levels.to_numpy()
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(values, y):
        base = y[fit].mean()
        part = pd.DataFrame({"v": values[fit], "y": y[fit]})
        stats = part.groupby("v")["y"].agg(["sum", "count"])
        rate = (stats["sum"] + SMOOTHING * base) / (stats["count"] + SMOOTHING)
        oof[held] = pd.Series(values[held]).map(rate).fillna(base).to_numpy()
    return _oriented_auc(y, oof)


def _purest(values: pd.Series, y: np.ndarray, base: float) -> tuple[str | None, str | None]:
    """(description of the most extreme common value, blocking reason if it is pure)."""
    text = values.astype("string")
    frame = pd.DataFrame({"v": text, "y": y}).dropna(subset=["v"])
    stats = frame.groupby("v")["y"].agg(["sum", "count"])
    common = stats[stats["count"] >= PURE_LEADS]
    if common.empty:
        return None, None
    rate = (common["sum"] / common["count"]).to_numpy(dtype="float64")
    i = int(np.argmax(np.abs(rate - base)))
    extreme, n, r = common.index[i], int(common["count"].iloc[i]), float(rate[i])
    shown = f"{extreme!r}: {n:,} leads, {r:.1%} converted"
    if r >= PURE_HIGH or r <= base * PURE_LOW_SHARE:
        return shown, f"value {shown} (base rate {base:.1%})"
    return shown, None


def _after_outcome(values: pd.Series, outcome: pd.Series, y: np.ndarray) -> float | None:
    """Share of converted leads whose value, read as a date, falls after their outcome."""
    if outcome.isna().all():
        return None
    present = values.dropna().astype(str)
    if present.empty:
        return None
    moments = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed")
    if moments.notna().sum() < 0.9 * len(present):
        return None  # not a date column
    converted = y.astype(bool) & moments.notna().to_numpy() & outcome.notna().to_numpy()
    if not converted.any():
        return None
    after = (moments.to_numpy()[converted] > outcome.to_numpy()[converted]).sum()
    return float(after / converted.sum()) if after >= AFTER_LEADS else 0.0


def audit_columns(
    frame: pd.DataFrame,
    y: np.ndarray,
    columns: Sequence[tuple[str, str, str]],
    outcome: pd.Series | None = None,
    allow: Sequence[str] = (),
) -> AuditReport:
    """Audit `columns` ((column in `frame`, name a person knows, kind)) against labels `y`.

    `outcome` is each row's conversion moment (NaT when not converted or not dated), for the
    after-the-outcome check; `allow` names columns (either name) a person keeps although
    blocked.
    """
    y = np.asarray(y).astype(int)
    base = float(y.mean()) if len(y) else math.nan
    audits = []
    for name, shown, kind in columns:
        values = frame[name].reset_index(drop=True)
        missing = values.isna().to_numpy()
        audit = ColumnAudit(
            column=shown, feature=name, kind=kind,
            auc=single_column_auc(_levels(values, kind), y),
            missing_share=float(missing.mean()) if len(missing) else 0.0,
            missing_auc=_oriented_auc(y, missing.astype(float)) if missing.any() else 0.5,
        )  # fmt: skip
        if audit.auc >= SINGLE_AUC:
            audit.blocked.append(f"on its own it predicts the label: CV ROC AUC {audit.auc:.3f}")
        if kind not in ("number", "count"):
            audit.purest, reason = _purest(values, y, base)
            if reason:
                audit.blocked.append(f"near-pure {reason}")
        if audit.missing_auc >= MISSING_AUC:
            audit.blocked.append(
                f"whether it is missing predicts the label: ROC AUC {audit.missing_auc:.3f}"
            )
        if outcome is not None:
            audit.after_outcome = _after_outcome(values, outcome, y)
            if audit.after_outcome is not None and audit.after_outcome >= AFTER_SHARE:
                audit.blocked.append(f"dated after the outcome for {audit.after_outcome:.0%} of "
                                     "converted leads")  # fmt: skip
        if AFTER_THE_FACT.search(shown) or AFTER_THE_FACT.search(name):
            audit.warnings.append("its name suggests a field filled in after the fact")
        if name.split(".")[-1] in CURRENT_STATE_COLUMNS:  # never a feature, whoever asks
            audit.blocked.insert(0, "current state by name: the contract never makes it a "
                                    "feature")  # fmt: skip
            audit.kept = False
        else:
            audit.kept = bool(audit.blocked) and (shown in allow or name in allow)
        audits.append(audit)
    return AuditReport(audits, len(y), int(y.sum()))


def audit_source(
    crm: CrmData,
    config: FeatureConfig,
    *,
    target: Target = "won",
    horizon_days: float = 90,
    allow: Sequence[str] = (),
) -> AuditReport:
    """Audit a source's undated attribute columns on its scoring cases at creation, against the
    label for `target` within `horizon_days`: the spec's attributes (built-in and custom) and
    every column the adapter names as a candidate (a flat file's mapped columns)."""
    frame = labelled_rows(crm, target=target, horizon_days=horizon_days)
    kinds: dict[str, str] = {f"{c.entity}.{c.name}": c.type for c in config.custom_fields}
    shown = {c.qualified: c.source_column or c.qualified for c in config.custom_fields}
    wanted: dict[str, str] = {}
    for f in BUILTIN_FEATURES:
        if f.kind == "attribute" and str(f.source) in frame.columns:
            wanted[str(f.source)] = shown.get(str(f.source), str(f.source))
            kinds.setdefault(str(f.source), f.dtype)
    for c in config.custom_fields:
        if not c.dated and c.is_feature and c.qualified in frame.columns:
            wanted[c.qualified] = shown[c.qualified]
    wanted |= {k: v for k, v in crm.candidates.items() if k in frame.columns}
    columns = [(q, name, kinds.get(q, "category")) for q, name in wanted.items()
               if frame[q].notna().any()]  # an empty column has nothing to say  # fmt: skip
    outcome = None
    if crm.outcome_moments_real:
        outcome = frame["lead_id"].map(crm.outcomes.set_index("lead_id")[TARGET_COLUMN[target]])
    return audit_columns(frame, frame["label"].to_numpy(), columns, outcome, allow)
