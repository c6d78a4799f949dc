"""The quarterly review's data drift: the leads the model learned on against the newest ones.

Both sides are snapshots taken the same way (each lead at the same age, only its history up to
then), so a feature moves only when the leads themselves changed, never because one side is
seen later in its life. Each feature's population stability index comes from
:mod:`leadscore.features.drift`; the model's most important features are marked, since a shift
there moves scores, while one elsewhere mostly does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.criteria.evidence import wilson_interval
from leadscore.features.drift import FeatureDrift, Kind, drift_table, reference
from leadscore.features.errors import LeadscoreError
from leadscore.features.labels import Target, label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec
from leadscore.serving.runtime import Scorer
from leadscore.training.evaluate import binary_metrics

# how a feature's values are binned: numbers by deciles, the rest one bin per value
_KIND_OF_DTYPE: dict[str, Kind] = {
    "number": "number", "count": "number",
    "category": "category", "ordinal": "category", "boolean": "category",
}  # fmt: skip
TOP_FEATURES = 5  # the most important features marked in the review


@dataclass(frozen=True)
class DriftRow:
    """One feature's drift, with its rank by the model's importance (None: not in the top)."""

    drift: FeatureDrift
    importance_rank: int | None


def feature_kinds(spec: FeatureSpec) -> dict[str, Kind]:
    """How each model feature is binned (the lead's age, the same on both sides, is left out)."""
    return {f.name: _KIND_OF_DTYPE[f.dtype] for f in spec if f.kind != "age"}


def snapshot_at_age(data: CrmData, spec: FeatureSpec, age_days: float) -> pd.DataFrame:
    """Every lead of `data` as known `age_days` after its creation."""
    return snapshot(data, spec, as_of_after_creation(data.leads, age_days))


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    importance: Mapping[str, float] | None = None,
    top: int = TOP_FEATURES,
) -> list[DriftRow]:
    """Each feature's shift from `reference` to `current` snapshots, largest first; the `top`
    features by `importance` (gain, say) carry their rank."""
    kinds = feature_kinds(spec)
    rank = {name: i + 1 for i, name in enumerate(top_features(importance or {}, kinds, top))}
    rows = drift_table(reference, current, kinds)
    return [DriftRow(row, rank.get(row.feature)) for row in rows]


def top_features(
    importance: Mapping[str, float], names: Mapping[str, object], top: int = TOP_FEATURES
) -> list[str]:
    """The `top` features of `names` by `importance`, largest first (ties by name; none at 0)."""
    ranked = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, value in ranked if value > 0 and name in names][:top]


def drift_reference(
    rows: pd.DataFrame,
    scores: np.ndarray,
    spec: FeatureSpec,
    importance: Mapping[str, float],
    top: int = TOP_FEATURES,
) -> dict[str, Any]:
    """What the service compares its traffic with (kept in the model's metadata): the bins and
    counts of the calibrated scores and of the `top` features by `importance` on the training
    snapshots."""
    kinds = feature_kinds(spec)
    chosen = top_features(importance, kinds, top)
    return {
        "rows": len(rows),
        "score": reference(pd.Series(scores, dtype="float64"), "number"),
        "features": {name: reference(rows[name], kinds[name]) | {"kind": kinds[name]}
                     for name in chosen},
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the periods compared, the back-test, the criteria's separation and the recommendation

QUARTER_DAYS = 91.0  # the newest quarter: leads created within this many days of the last one
BINS = 10  # calibration curve: equal-mass bins
MIN_TIER_LEADS = 30  # a tier with fewer leads in the cohort is shown, not judged
Z_CHANGED = 1.96  # a criterion's separation changed when it moved by this many standard errors


class ReviewError(LeadscoreError, ValueError):
    """The review cannot be made from what it was given (the message names what is missing)."""


@dataclass(frozen=True)
class Periods:
    """The leads each part of the review reads (lead ids, as strings, with their window)."""

    reference: pd.Index  # created within the champion's training window
    current: pd.Index  # the newest quarter, minus leads the champion learned on
    cohort: pd.Index  # created after the champion's window with final labels: the back-test
    reference_window: tuple[pd.Timestamp, pd.Timestamp]
    current_window: tuple[pd.Timestamp, pd.Timestamp]
    cohort_window: tuple[pd.Timestamp, pd.Timestamp] | None


def periods(
    reference: CrmData,
    data: CrmData,
    data_window: Mapping[str, str],
    horizon_days: float,
    age_days: float,
    quarter_days: float = QUARTER_DAYS,
) -> Periods:
    """Split the leads: the champion's training window (from `reference`, which may be `data`
    itself); the newest quarter of `data` among leads at least `age_days` old at its
    observation end (a younger lead cannot be seen at the age the model scores), minus those
    of the window; and the back-test cohort of `data`: leads created after the window and at
    least `horizon_days` before the observation end (their labels are final), the newest
    `quarter_days` of them."""
    start, end = (_naive(data_window[k]) for k in ("created_from", "created_to"))
    observed = _naive(data.observation_end)
    created = _created(reference)
    ref = created[(created >= start) & (created <= end)].index
    if not len(ref):
        raise ReviewError(
            f"{reference.source}: no lead created in the champion's training window "
            f"({start:%Y-%m-%d}..{end:%Y-%m-%d}); give the data it was trained on with "
            "--reference PATH"
        )
    every = _created(data)
    new = every[~every.index.isin(ref)]
    moved = every[(every > end) & every.index.isin(ref)]
    if len(moved) and not len(new[new > end]):
        raise ReviewError(
            f"{data.source}: its leads after the champion's training window are the window's "
            "own leads moved in time (a `leadscore data shift` of the training bundle): make "
            "the next quarter from a larger draw of the same seed (`leadscore data generate "
            "--leads` twice as many), whose extra leads are new"
        )
    seen = new[new <= observed - pd.Timedelta(days=age_days)]
    last = seen.max() if len(seen) else pd.NaT
    current = seen[seen > last - pd.Timedelta(days=quarter_days)] if len(seen) else seen
    if not len(current):
        raise ReviewError(
            f"{data.source}: no lead outside the champion's training window "
            f"({start:%Y-%m-%d}..{end:%Y-%m-%d}) is {age_days:g} days old by its observation "
            f"end ({observed:%Y-%m-%d}): give the newer leads with --data PATH"
        )
    final = new[(new > end) & (new <= observed - pd.Timedelta(days=horizon_days))]
    cohort = final[final > final.max() - pd.Timedelta(days=quarter_days)] if len(final) else final
    return Periods(
        reference=ref, current=current.index, cohort=cohort.index,
        reference_window=(start, end), current_window=(current.min(), current.max()),
        cohort_window=(cohort.min(), cohort.max()) if len(cohort) else None,
    )  # fmt: skip


def check_cohort(split: Periods, data: CrmData, horizon_days: float) -> None:
    """Refuse a review whose back-test would have no lead with a final label."""
    if not len(split.cohort):
        raise ReviewError(
            f"{data.source}: no lead created after the champion's training window has a final "
            f"label (created at least {horizon_days:g} days before the observation end "
            f"{_naive(data.observation_end):%Y-%m-%d}); review again when some have"
        )


def _naive(moment: object) -> pd.Timestamp:
    """A moment as naive UTC (sources differ in whether they carry a zone)."""
    ts = pd.Timestamp(moment)  # type: ignore[arg-type]
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _created(crm: CrmData) -> pd.Series:
    created = pd.to_datetime(crm.leads["created_at"])
    if getattr(created.dt, "tz", None) is not None:
        created = created.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.Series(
        created.to_numpy(), index=pd.Index(crm.leads["lead_id"].astype("string"), name="lead_id")
    )


def labelled_snapshots(
    crm: CrmData, spec: FeatureSpec, age_days: float, target: str, horizon_days: float
) -> pd.DataFrame:
    """Every lead of `crm` at `age_days` with its `label`; leads without a final label (or
    converted before that age) are left out."""
    rows = snapshot_at_age(crm, spec, age_days)
    labels = label_snapshots(
        rows, crm.outcomes, crm.leads.set_index("lead_id")["created_at"],
        target=cast(Target, target), horizon_days=horizon_days,
        observation_end=crm.observation_end, has_outcome_dates=crm.has_outcome_dates,
    )  # fmt: skip
    keep = labels["excluded"].isna().to_numpy()
    return rows[keep].assign(label=labels.loc[keep, "label"].astype(bool).to_numpy())


def of_leads(rows: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """The rows of the leads `ids`."""
    return rows[rows["lead_id"].astype("string").isin(ids).to_numpy()]


@dataclass(frozen=True)
class TierResult:
    """One tier on the back-test cohort: what its leads were promised and what they did."""

    tier: str
    leads: int
    promised: float  # mean calibrated probability of its leads
    observed: float  # their conversion
    ci_low: float
    ci_high: float

    @property
    def judged(self) -> bool:
        """Enough leads to tell a broken promise from noise."""
        return self.leads >= MIN_TIER_LEADS

    @property
    def kept(self) -> bool:
        """The promise lies within the observed rate's 95% interval (or too few leads)."""
        return not self.judged or self.ci_low <= self.promised <= self.ci_high


@dataclass(frozen=True)
class Backtest:
    """A model scored on a cohort whose labels are final, against what it promised."""

    metrics: dict[str, float]  # binary_metrics of the calibrated probability
    curve: tuple[tuple[float, float, int], ...]  # (mean predicted, observed, leads) per bin
    tiers: tuple[TierResult, ...]

    @property
    def broken_tiers(self) -> list[TierResult]:
        """Tiers whose observed conversion's interval misses their promise."""
        return [t for t in self.tiers if not t.kept]


def backtest(scorer: Scorer, rows: pd.DataFrame, bins: int = BINS) -> Backtest:
    """Score labelled snapshot rows with `scorer` (either model family): ROC AUC, ECE and the
    rest, the calibration curve, and conversion by tier against each tier's mean probability."""
    if not len(rows):
        raise ReviewError("the back-test cohort is empty")
    scored = scorer.score_frame(rows)
    p = scored["mql_probability"].to_numpy(dtype=float)
    y = rows["label"].to_numpy().astype(int)
    metrics = binary_metrics(y, p, scored["is_mql"].to_numpy())
    order = np.argsort(p, kind="stable")
    curve = tuple((float(p[c].mean()), float(y[c].mean()), len(c))
                  for c in np.array_split(order, min(bins, len(p))) if len(c))  # fmt: skip
    tiers = []
    frame = pd.DataFrame({"tier": scored["tier"].to_numpy(), "p": p, "y": y})
    for tier, part in frame.groupby("tier", sort=True):
        n, k = len(part), int(part["y"].sum())
        low, high = wilson_interval(k, n)
        tiers.append(TierResult(str(tier), n, float(part["p"].mean()), k / n, low, high))
    return Backtest(metrics, curve, tuple(tiers))


@dataclass(frozen=True)
class CriterionShift:
    """How well one criterion separates converting leads, before and now: the conversion of
    leads that pass it minus that of leads that fail it."""

    criterion: str
    before: float
    after: float
    z: float  # the change in standard errors

    @property
    def changed(self) -> bool:
        """The separation moved by more than noise explains."""
        return math.isfinite(self.z) and abs(self.z) >= Z_CHANGED


def separation(table: pd.DataFrame, criterion: str) -> tuple[float, float]:
    """Pass rate minus fail rate of one criterion in a criteria report, and its variance."""
    rows = table[table["item"] == criterion].set_index("status")
    leads, converted = rows["leads"].to_dict(), rows["converted"].to_dict()
    parts = []
    for status in ("pass", "fail"):
        n = int(leads.get(status, 0))
        rate = float(converted[status]) / n if n else math.nan
        parts.append((rate, rate * (1 - rate) / n if n else math.nan))
    (a, va), (b, vb) = parts
    return a - b, va + vb


def criteria_shifts(before: pd.DataFrame, after: pd.DataFrame) -> list[CriterionShift]:
    """Each criterion's separation in two criteria reports (:func:`report`), the most changed
    first (criteria without one on either side last)."""
    out = []
    for item in dict.fromkeys(before["item"]):
        if item == "verdict":
            continue
        (b, vb), (a, va) = separation(before, item), separation(after, item)
        z = (a - b) / math.sqrt(va + vb) if va + vb > 0 else math.nan
        out.append(CriterionShift(str(item), b, a, z))
    return sorted(out, key=lambda s: (not math.isfinite(s.z), -abs(s.z) if math.isfinite(s.z)
                                      else 0.0, s.criterion))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the recommendation: a pure function of the numbers, tested branch by branch

KEEP, PROMOTE, RETHRESHOLD, REVISE = "keep", "promote", "re-threshold", "revise criteria"
MIN_AUC_GAIN = 0.01  # a challenger worth the swap ranks at least this much better
ECE_LIMIT = 0.05  # calibration error on the cohort beyond which probabilities mislead
ECE_WORSE = 0.02  # ... when it is also this much worse than when the model was trained


@dataclass(frozen=True)
class Findings:
    """The numbers the recommendation rests on."""

    champion_auc: float  # on the back-test cohort
    champion_auc_trained: float  # on its own test slice when it was trained
    champion_ece: float
    champion_ece_trained: float
    broken_tiers: tuple[str, ...]  # tiers whose conversion missed their promise
    judged_tiers: int  # tiers with enough leads to judge
    shifted_top_features: tuple[str, ...]  # the model's top features with PSI >= 0.2
    changed_criteria: tuple[str, ...]
    gate_passed: bool | None = None  # None: no challenger was trained
    challenger_auc: float = math.nan  # both on the same rows (the gate's)
    gate_champion_auc: float = math.nan
    challenger_ece: float = math.nan
    gate_champion_ece: float = math.nan


@dataclass(frozen=True)
class Recommendation:
    """What to do, and the paragraph that says why, with the numbers."""

    action: str
    paragraph: str


def recommend(f: Findings) -> Recommendation:
    """Promote a challenger that passed the gate and ranks clearly better (or is calibrated
    where the champion is not); else re-threshold a champion whose probabilities no longer hold
    (ECE past the limit and worse than when trained, or most tiers missing their promise); else
    revise the criteria whose separation changed; else keep."""
    facts = [f"the champion's ROC AUC on the newest cohort with final labels is "
             f"{f.champion_auc:.3f} ({f.champion_auc_trained:.3f} when trained), its ECE "
             f"{f.champion_ece:.3f} ({f.champion_ece_trained:.3f} when trained)"]  # fmt: skip
    worse = not math.isfinite(f.champion_ece_trained) or (
        f.champion_ece > f.champion_ece_trained + ECE_WORSE
    )
    miscalibrated = (f.champion_ece > ECE_LIMIT and worse) or (
        f.judged_tiers > 0 and len(f.broken_tiers) * 2 > f.judged_tiers
    )
    if f.broken_tiers:
        facts.append(f"tier(s) {', '.join(f.broken_tiers)} converted outside what they promised")
    if f.shifted_top_features:
        facts.append(f"top feature(s) shifted (PSI >= 0.2): {', '.join(f.shifted_top_features)}")
    if f.changed_criteria:
        facts.append(f"criteria whose separation changed: {', '.join(f.changed_criteria)}")
    if f.gate_passed is not None:
        facts.append(f"the challenger's ROC AUC is {f.challenger_auc:.3f} against the "
                     f"champion's {f.gate_champion_auc:.3f} on the same rows, ECE "
                     f"{f.challenger_ece:.3f} against {f.gate_champion_ece:.3f}, and the gate "
                     f"{'passes' if f.gate_passed else 'refuses'} it")  # fmt: skip
    gain = f.challenger_auc - f.gate_champion_auc
    better_calibrated = f.gate_champion_ece > ECE_LIMIT and f.challenger_ece < f.gate_champion_ece
    if f.gate_passed and (gain >= MIN_AUC_GAIN or better_calibrated):
        action = PROMOTE
        why = f"Promote the challenger (`leadscore promote`): it ranks {gain:+.3f} ROC AUC "
        why += "better and is better calibrated" if better_calibrated else "better"
    elif miscalibrated:
        action = RETHRESHOLD
        why = (
            "Re-threshold the champion (`leadscore policy set`) and tell sales what its "
            "tiers convert at now: its probabilities no longer mean what they did"
        )
    elif f.changed_criteria:
        action = REVISE
        why = (
            "Revise the criteria (`leadscore criteria suggest`): the model holds, but what "
            "separates converting leads has moved"
        )
    else:
        action, why = KEEP, "Keep the champion: nothing the review measures calls for a change"
    return Recommendation(action, f"{why}. Behind it: " + "; ".join(facts) + ".")
