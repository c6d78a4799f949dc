"""The quarterly review, assembled: one document for the data scientist and the sales team.

:func:`run_review` reads the updated history (and, when the champion's training window is not in
it, the source the champion learned on), then builds each section from the pieces the rest of
leadscore already has: the drift table (:func:`~leadscore.training.review.data_drift`), the
champion back-tested on the newest cohort whose labels are final, the SQL criteria's report on
that cohort against the training window, the handoff report for the newest quarter when a store
holds handoffs then, and a challenger trained on the updated history (:func:`train_model`)
compared with the champion by the promotion gate (:func:`compare`, nothing is promoted). The
recommendation is :func:`~leadscore.training.review.recommend`. :func:`render_html` writes one
self-contained page (inline CSS, plots as ``data:`` URIs, no script); :meth:`Review.to_dict` the
JSON. Both are logged to MLflow on the challenger's run under ``review/``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadscore.features.drift import SHIFTED, STABLE
from leadscore.serving.store.report import figure, png_uri
from leadscore.training import review as rv
from leadscore.training.evaluate import json_safe
from leadscore.training.review import (
    Backtest,
    CriterionShift,
    DriftRow,
    Findings,
    Periods,
    Recommendation,
    ReviewError,
    recommend,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from leadscore.features.config import FeatureConfig
    from leadscore.features.contract import CrmData
    from leadscore.serving.runtime import Scorer
    from leadscore.serving.store.report import HandoffReport
    from leadscore.training.config import TrainingConfig
    from leadscore.training.lifecycle import Comparison

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
ARTIFACT_DIR = "review"
SHOWN_FEATURES = 15  # drift rows drawn in the plot (the table lists them all)


@dataclass
class CriteriaSection:
    """The criteria report on the back-test cohort, and the criteria whose separation moved."""

    origin: str
    version: str
    cohort: list[dict[str, Any]]  # the criteria report's rows (item, status, leads, rate, ...)
    shifts: list[CriterionShift]

    @property
    def changed(self) -> list[str]:
        """Criteria whose separation changed beyond noise."""
        return [s.criterion for s in self.shifts if s.changed]


@dataclass
class ChallengerSection:
    """The challenger trained on the updated history, and the gate's verdict against the
    champion on the same rows."""

    version: str
    run_id: str
    test_metrics: dict[str, float]
    comparison: Comparison | None


@dataclass
class Review:
    """Every section of the review (see the module docstring)."""

    created_at: str
    champion: dict[str, Any]  # uri, model name, version, trained_at, data window, reference age
    data: dict[str, Any]  # sources, windows and lead counts of each side
    drift: list[DriftRow]
    backtest: Backtest
    trained_metrics: dict[str, float]  # the champion's own test metrics when it was trained
    criteria: CriteriaSection | None
    handoff: HandoffReport | None
    challenger: ChallengerSection | None
    recommendation: Recommendation
    notes: list[str] = field(default_factory=list)

    def findings(self) -> Findings:
        """The numbers the recommendation rests on (also what :func:`assemble` passes it)."""
        return findings_of(self.drift, self.backtest, self.trained_metrics, self.criteria,
                           self.challenger)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The review as JSON-ready data (NaN as null, moments as ISO text)."""
        c = self.challenger
        return json_safe({
            "headline": {"action": self.recommendation.action,
                         "recommendation": self.recommendation.paragraph},
            "created_at": self.created_at,
            "champion": self.champion,
            "data": self.data,
            "drift": [asdict(r.drift) | {"verdict": r.drift.verdict,
                                         "importance_rank": r.importance_rank}
                      for r in self.drift],
            "backtest": {
                "metrics": self.backtest.metrics,
                "trained_metrics": self.trained_metrics,
                "calibration_curve": [{"predicted": p, "observed": o, "leads": n}
                                      for p, o, n in self.backtest.curve],
                "tiers": [asdict(t) | {"kept": t.kept} for t in self.backtest.tiers],
            },
            "criteria": None if self.criteria is None else {
                "origin": self.criteria.origin, "version": self.criteria.version,
                "cohort_report": self.criteria.cohort,
                "separation": [asdict(s) | {"changed": s.changed} for s in self.criteria.shifts],
            },
            "handoff": None if self.handoff is None else self.handoff.to_dict(),
            "challenger": None if c is None else {
                "version": c.version, "run_id": c.run_id, "test_metrics": c.test_metrics,
                "gate": None if c.comparison is None else asdict(c.comparison),
            },
            "findings": asdict(self.findings()),
            "notes": self.notes,
        })  # fmt: skip


def findings_of(
    drift: Sequence[DriftRow],
    backtest: Backtest,
    trained: Mapping[str, float],
    criteria: CriteriaSection | None,
    challenger: ChallengerSection | None,
) -> Findings:
    """The recommendation's inputs, read from the sections."""
    gate = challenger.comparison if challenger else None
    cand = gate.candidate_metrics if gate else {}
    champ = gate.champion_metrics if gate else {}
    nan = math.nan
    return Findings(
        champion_auc=backtest.metrics["roc_auc"],
        champion_auc_trained=float(trained.get("test_roc_auc", nan)),
        champion_ece=backtest.metrics["ece"],
        champion_ece_trained=float(trained.get("test_ece", nan)),
        broken_tiers=tuple(t.tier for t in backtest.broken_tiers),
        judged_tiers=sum(t.judged for t in backtest.tiers),
        shifted_top_features=tuple(r.drift.feature for r in drift
                                   if r.importance_rank and r.drift.psi >= SHIFTED),
        changed_criteria=tuple(criteria.changed) if criteria else (),
        gate_passed=None if gate is None or not champ else gate.passed,
        challenger_auc=cand.get("roc_auc", nan), gate_champion_auc=champ.get("roc_auc", nan),
        challenger_ece=cand.get("ece", nan), gate_champion_ece=champ.get("ece", nan),
    )  # fmt: skip


def assemble(
    *,
    champion: dict[str, Any],
    data: dict[str, Any],
    drift: list[DriftRow],
    backtest: Backtest,
    trained_metrics: dict[str, float],
    criteria: CriteriaSection | None = None,
    handoff: HandoffReport | None = None,
    challenger: ChallengerSection | None = None,
    notes: Sequence[str] = (),
) -> Review:
    """A review from its sections, with the recommendation they lead to."""
    found = findings_of(drift, backtest, trained_metrics, criteria, challenger)
    return Review(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), champion=champion, data=data,
        drift=drift, backtest=backtest, trained_metrics=trained_metrics, criteria=criteria,
        handoff=handoff, challenger=challenger, recommendation=recommend(found), notes=list(notes),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# running it


def run_review(
    data: CrmData,
    feature_config: FeatureConfig,
    cfg: TrainingConfig,
    *,
    champion_uri: str,
    reference: CrmData | None = None,
    criteria_path: Path | None = None,
    store_url: str | None = None,
    train_challenger: bool = True,
    experiment: str | None = None,
    progress: Progress = log.info,
) -> Review:
    """The review of the champion at `champion_uri` on `data` (the updated history); the
    champion's training window is read from `reference` when given, else from `data`. With
    `train_challenger`, a challenger is trained on `data` and registered (alias `challenger`),
    the gate compares it with the champion on `data`'s newest leads, and the review is logged to
    its run; `store_url`: the handoff store to report on (None: none)."""
    from leadscore.serving.loader import load_scorer

    progress(f"loading the champion {champion_uri}")
    scorer = load_scorer(champion_uri)
    meta = scorer.meta
    window = meta.get("data_window")
    if not window:
        raise ReviewError(
            f"{champion_uri}: the model's metadata has no data_window (trained before "
            "leadscore recorded it): retrain it, or review a newer one"
        )
    age, target = float(meta.get("reference_age", 30)), str(meta.get("target", "won"))
    horizon = float(meta.get("horizon_days", 90))
    ref_data = reference if reference is not None else data
    split = rv.periods(ref_data, data, window, horizon, age)
    rv.check_cohort(split, data, horizon)  # before anything is computed
    notes: list[str] = []

    progress("comparing the training window's leads with the newest quarter's")
    top = list((meta.get("drift_reference") or {}).get("features", {}))
    importance = {name: float(len(top) - i) for i, name in enumerate(top)}  # the order kept
    before = rv.snapshot_at_age(ref_data, scorer.spec, age)
    now = before if reference is None else rv.snapshot_at_age(data, scorer.spec, age)
    drift = rv.data_drift(rv.of_leads(before, split.reference), rv.of_leads(now, split.current),
                          scorer.spec, importance)  # fmt: skip

    progress("back-testing the champion on the newest cohort with final labels")
    labelled = rv.labelled_snapshots(data, scorer.spec, age, target, horizon)
    cohort = rv.of_leads(labelled, split.cohort)
    if not len(cohort):
        raise ReviewError(f"{data.source}: none of the {len(split.cohort):,} leads of the "
                          f"back-test cohort has a label at {age:g} days ({target})")  # fmt: skip
    tested = rv.backtest(scorer, cohort)
    trained = {k: float(v) for k, v in (meta.get("test_metrics") or {}).items()}

    criteria = _criteria_section(ref_data, data, feature_config, scorer, split, criteria_path,
                                 notes)  # fmt: skip
    handoff = _handoff(store_url, split, criteria_path, notes)
    challenger = None
    if train_challenger:
        challenger = _challenger(data, feature_config, cfg, scorer, criteria_path, experiment,
                                 notes, progress)  # fmt: skip
    else:
        notes.append("no challenger trained (--no-challenger): the gate was not run")
    review = assemble(
        champion={"uri": champion_uri, "model_name": meta.get("model_name"),
                  "version": meta.get("version"), "trained_at": meta.get("trained_at"),
                  "data_window": dict(window), "reference_age": age, "target": target,
                  "horizon_days": horizon},
        data=_data_section(ref_data, data, split, before, now, len(cohort)),
        drift=drift, backtest=tested, trained_metrics=trained, criteria=criteria,
        handoff=handoff, challenger=challenger, notes=notes,
    )  # fmt: skip
    if challenger is not None:
        log_review(review, challenger.run_id)
    return review


def _data_section(
    reference: CrmData,
    data: CrmData,
    split: Periods,
    before: pd.DataFrame,
    now: pd.DataFrame,
    cohort_rows: int,
) -> dict[str, Any]:
    def span(window: tuple[pd.Timestamp, pd.Timestamp] | None) -> list[str] | None:
        return None if window is None else [f"{w:%Y-%m-%d}" for w in window]

    return {
        "reference_source": reference.source, "source": data.source,
        "reference_window": span(split.reference_window),
        "reference_leads": len(rv.of_leads(before, split.reference)),
        "current_window": span(split.current_window),
        "current_leads": len(rv.of_leads(now, split.current)),
        "cohort_window": span(split.cohort_window), "cohort_leads": cohort_rows,
    }  # fmt: skip


def _criteria_section(
    reference: CrmData,
    data: CrmData,
    config: FeatureConfig,
    scorer: Scorer,
    split: Periods,
    path: Path | None,
    notes: list[str],
) -> CriteriaSection | None:
    """The criteria report on the cohort, and each criterion's separation there against the
    training window; None (and a note) when the criteria do not fit this data."""
    from leadscore.features.criteria.evidence import labelled_rows, report
    from leadscore.features.criteria.rules import CriteriaError, load_criteria

    try:
        rules = load_criteria(path, config, scorer.spec)
    except CriteriaError as exc:
        notes.append(f"criteria section skipped: {exc.lines()[0]}")
        return None
    age = float(scorer.meta.get("reference_age", 30))
    target = scorer.meta.get("target", "won")
    horizon = float(scorer.meta.get("horizon_days", 90))

    def rows(crm: CrmData) -> pd.DataFrame:
        return labelled_rows(crm, target=target, horizon_days=horizon, as_of_days=age,
                             spec=scorer.spec)  # fmt: skip

    after = rows(data)
    before = after if reference is data else rows(reference)
    then = report(rules, rv.of_leads(before, split.reference))
    cohort = report(rules, rv.of_leads(after, split.cohort))
    return CriteriaSection(rules.origin, str(rules.file.version),
                           _records(cohort), rv.criteria_shifts(then, cohort))  # fmt: skip


def _handoff(
    store_url: str | None, split: Periods, criteria_path: Path | None, notes: list[str]
) -> HandoffReport | None:
    """The handoff report over the newest quarter, when the store has handoffs then."""
    if store_url is None:
        return None
    from leadscore.features.criteria.rules import default_criteria_path
    from leadscore.features.feedback import load_handoff_config
    from leadscore.features.yamlfile import parse_yaml, read_text
    from leadscore.serving.sla import calendar_for, load_sla
    from leadscore.serving.store import HandoffStore
    from leadscore.serving.store.report import build_report

    since = split.current_window[0].tz_localize(UTC).to_pydatetime()
    handoffs, outcomes = HandoffStore.open(store_url, upgrade=False).frames(since)
    if handoffs.empty:
        notes.append(f"handoff section skipped: no handoff in {store_url} since {since:%Y-%m-%d}")
        return None
    file = criteria_path or default_criteria_path()
    parsed, _ = parse_yaml(read_text(file, "criteria file"), str(file))
    version = str(parsed.get("version", "")) if isinstance(parsed, dict) else ""
    sla = load_sla()
    return build_report(
        handoffs, outcomes, now=datetime.now(UTC), since=since, current_criteria_version=version,
        business_hours=lambda owner, a, b: calendar_for(sla, owner).between(a, b),
        dispositioned_within_days=sla.dispositioned_within_days, taxonomy=load_handoff_config(),
    )  # fmt: skip


def _challenger(
    data: CrmData,
    config: FeatureConfig,
    cfg: TrainingConfig,
    champion: Scorer,
    criteria_path: Path | None,
    experiment: str | None,
    notes: list[str],
    progress: Progress,
) -> ChallengerSection:
    """Train and register a challenger on `data`; the gate's verdict against the champion on
    `data`'s newest leads (nothing is promoted)."""
    from leadscore.training.lifecycle import compare
    from leadscore.training.tracking import configure
    from leadscore.training.train import train_model

    name = champion.meta.get("model_name") or cfg.mlflow.model_name
    progress(f"training a challenger on {data.source}")
    result = train_model(data, config, cfg, model_name=name, experiment=experiment,
                         criteria_path=criteria_path, progress=progress)  # fmt: skip
    notes += [f"challenger: {n}" for n in result.notes]
    champion_version = champion.meta.get("version")
    comparison = None
    if champion_version is None:
        notes.append("the champion is not a registered version: the gate was not run")
    else:
        progress("comparing challenger and champion on the same rows (the promotion gate)")
        comparison = compare(configure(), name, result.version, str(champion_version), cfg,
                             data=(data, config))  # fmt: skip
    metrics = {k: v for k, v in result.metrics.items() if "__" not in k}
    return ChallengerSection(result.version, result.run_id, metrics, comparison)


def log_review(review: Review, run_id: str) -> None:
    """The review's HTML and JSON, and its headline numbers, on the run `run_id`."""
    import mlflow

    with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
        mlflow.log_text(render_html(review), f"{ARTIFACT_DIR}/review.html")
        mlflow.log_dict(review.to_dict(), f"{ARTIFACT_DIR}/review.json")
        numbers = {
            "review_champion_roc_auc": review.backtest.metrics["roc_auc"],
            "review_champion_ece": review.backtest.metrics["ece"],
            "review_max_psi": max((r.drift.psi for r in review.drift), default=math.nan),
        }
        mlflow.log_metrics({k: v for k, v in numbers.items() if math.isfinite(v)})
        mlflow.set_tag("leadscore.review.action", review.recommendation.action)


# ---------------------------------------------------------------------------------------------
# the page


def render_html(review: Review) -> str:
    """The review as one self-contained HTML page: inline CSS, plots as inline PNG, no script,
    nothing fetched."""
    import jinja2

    template = files("leadscore.training").joinpath("templates/review.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["g"] = lambda value: f"{value:g}"
    r = review
    plots = {
        "drift": png_uri(_drift_plot(r.drift[:SHOWN_FEATURES])),
        "calibration": png_uri(_calibration_plot(r.backtest, r.trained_metrics)),
        "tiers": png_uri(_tier_plot(r.backtest)),
    }
    handoff_lines: list[str] = []
    if r.handoff is not None:
        from leadscore.serving.store.report import headline

        handoff_lines = headline(r.handoff)
    return env.from_string(template).render(
        r=r, plots=plots, handoff_lines=handoff_lines, stable=STABLE, shifted=SHIFTED,
        findings=r.findings(),
    )  # fmt: skip


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:.{digits}%}"


def _drift_plot(rows: Sequence[DriftRow]) -> Figure:
    fig, ax = figure(6.5, 0.3 * len(rows) + 1.2)
    shown = list(reversed(rows))
    psi = [r.drift.psi if math.isfinite(r.drift.psi) else 0.0 for r in shown]
    colours = ["#c0392b" if r.importance_rank else "#7f8c8d" for r in shown]
    labels = [r.drift.feature + (f" (top {r.importance_rank})" if r.importance_rank else "")
              for r in shown]  # fmt: skip
    ax.barh(labels, psi, color=colours)
    for cut, style in ((STABLE, ":"), (SHIFTED, "--")):
        ax.axvline(cut, ls=style, color="black", lw=0.8)
    ax.set(xlabel="PSI (training window -> newest quarter)", title="Data drift by feature")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def _calibration_plot(bt: Backtest, trained: Mapping[str, float]) -> Figure:
    fig, ax = figure(4.8, 4.2)
    predicted = [p for p, _, _ in bt.curve]
    observed = [o for _, o, _ in bt.curve]
    top = max([*predicted, *observed, 0.05]) * 1.1
    ax.plot([0, top], [0, top], ":", color="grey", label="perfect")
    when = trained.get("test_ece", math.nan)
    ax.plot(predicted, observed, "o-", label=f"newest cohort, ECE {_num(bt.metrics['ece'])} "
                                             f"(trained: {_num(when)})")  # fmt: skip
    ax.set(xlabel="predicted probability", ylabel="observed conversion", xlim=(0, top),
           ylim=(0, top), title="Calibration (10 equal-mass bins)")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _tier_plot(bt: Backtest) -> Figure:
    fig, ax = figure(5.2, 3.4)
    x = np.arange(len(bt.tiers))
    observed = np.array([t.observed for t in bt.tiers])
    errors = np.array([[t.observed - t.ci_low for t in bt.tiers],
                       [t.ci_high - t.observed for t in bt.tiers]])  # fmt: skip
    ax.bar(x - 0.2, [t.promised for t in bt.tiers], 0.4, label="promised (mean probability)")
    ax.bar(x + 0.2, observed, 0.4, yerr=errors, capsize=3, label="observed (95% interval)")
    ax.set_xticks(x, [f"{t.tier}\nn={t.leads}" for t in bt.tiers])
    ax.set(ylabel="conversion", title="Conversion by tier, newest cohort")
    ax.legend(fontsize=8)
    return fig


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
