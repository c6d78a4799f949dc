"""The training pipeline: snapshots -> LightGBM + baselines -> calibration -> policy -> MLflow."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

from leadscore.features.audit import AuditReport, audit_source
from leadscore.features.config import FeatureConfig
from leadscore.features.console import render, text_table
from leadscore.features.contract import CrmData
from leadscore.features.criteria.evidence import baseline_metrics, criteria_frame
from leadscore.features.criteria.rules import Criteria, CriteriaError, load_criteria
from leadscore.features.spec import FeatureSpec, build_spec
from leadscore.serving.digests import write_digests
from leadscore.serving.registry import RUN_VERSION_TAG
from leadscore.serving.runtime import Encoding, Scorer
from leadscore.training.calibration import (
    CalibrationFit,
    Refit,
    booster_refit,
    calibrate_out_of_fold,
    out_of_fold,
    time_blocks,
)
from leadscore.training.config import TrainingConfig
from leadscore.training.data import LeadExclusion, TrainingSet, build_training_set
from leadscore.training.evaluate import (
    binary_metrics,
    json_safe,
    model_card,
    plot_all,
    prefixed,
    slug,
)
from leadscore.training.models import LogisticBaseline, fit_booster, fit_logreg
from leadscore.training.policy import compute_thresholds, policy_rows, tier_cuts
from leadscore.training.review import drift_reference
from leadscore.training.sanity import check_source, reference_age
from leadscore.training.selection import Selection, select_family
from leadscore.training.tracking import (
    configure,
    flat_params,
    log_scorer_model,
    set_aliases,
    start_run,
)

log = logging.getLogger(__name__)
FAMILY_TAG = "leadscore.model_family"  # run tag: lightgbm | logistic
Progress = Callable[[str], None]


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    model_name: str
    version: str
    aliases: list[str]
    metrics: dict[str, float]
    training_set: TrainingSet
    scorer: Scorer
    notes: list[str] = field(default_factory=list)


def _age_suffix(age: float) -> str:
    return f"__age_{age:g}d"


def evaluate_test(
    scorer: Scorer, test: pd.DataFrame, logreg: LogisticBaseline, reference_age: float
) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics on the test slice: headline at the reference age, per age, per source."""
    scored = scorer.score_frame(test)
    raw = scorer.raw_frame(test)
    lr = logreg.predict(test)
    frame = test[["lead_id", "lead_age_days", "lead_source", "label"]].assign(
        p=scored["mql_probability"].to_numpy(), raw=raw, logreg=lr,
        is_mql=scored["is_mql"].to_numpy(), tier=scored["tier"].to_numpy(),
    )  # fmt: skip
    metrics: dict[str, float] = {}

    def add(part: pd.DataFrame, suffix: str) -> None:
        y = part["label"].to_numpy().astype(int)
        main = binary_metrics(y, part["p"].to_numpy(), part["is_mql"].to_numpy())
        metrics.update(prefixed(main, "test", suffix))
        metrics.update(
            prefixed(binary_metrics(y, part["logreg"].to_numpy()), "logreg_test", suffix)
        )

    ref = frame[frame["lead_age_days"] == reference_age]
    add(ref, "")
    y_ref = ref["label"].to_numpy().astype(int)
    before = binary_metrics(y_ref, ref["raw"].to_numpy())
    metrics["test_brier_uncalibrated"] = before["brier"]
    metrics["test_ece_uncalibrated"] = before["ece"]
    metrics["test_roc_auc_uncalibrated"] = before["roc_auc"]
    for age, part in frame.groupby("lead_age_days"):
        add(part, _age_suffix(float(age)))  # type: ignore[arg-type]
    for source, part in ref.groupby("lead_source"):
        if part["label"].nunique() == 2:
            add(part, f"__source_{slug(source)}")
    return metrics, frame


@dataclass
class Fitted:
    """What fitting learned, before evaluation and logging."""

    training_set: TrainingSet
    scorer: Scorer
    logreg: LogisticBaseline
    reference_age: float
    calibration_scores: dict[str, float]
    held_out: pd.DataFrame
    selection: Selection


def fit_scorer(
    ts: TrainingSet,
    feature_config: FeatureConfig,
    cfg: TrainingConfig,
    *,
    model_name: str = "",
    logreg: LogisticBaseline | None = None,
    progress: Progress = log.info,
) -> Fitted:
    """Both model families on `train` (LightGBM early-stopped on `stop`); out-of-fold
    probabilities of each over the whole labelled history (every split but `test`, in time
    blocks: :mod:`~leadscore.training.calibration`), on which the family is chosen
    (:mod:`~leadscore.training.selection`) and the chosen one's calibrator fitted; thresholds
    and tiers on `calib`. Nothing is logged. `logreg` may be passed in to reuse a baseline
    fitted on the same training set (sweeps)."""
    train, calib = ts.part("train"), ts.part("calib")
    encoding = Encoding.learn(ts.spec, train)
    families = cfg.selection.families
    monotone = {f.name: f.monotone for f in ts.spec} if cfg.model.monotone else {}
    booster = None
    if "lightgbm" in families:
        progress(f"fitting LightGBM on {len(train):,} snapshots")
        stop = ts.part("stop")
        booster = fit_booster(
            encoding.frame(train), train["label"].to_numpy(), encoding.frame(stop),
            stop["label"].to_numpy(), encoding, ts.spec, cfg.model,
        )  # fmt: skip
    if logreg is None:
        progress("fitting the logistic regression")
        logreg = fit_logreg(train, train["label"].to_numpy(), encoding, monotone=monotone)

    history = ts.rows[ts.rows["split"] != "test"].reset_index(drop=True)
    y = history["label"].to_numpy().astype(int)
    blocks = time_blocks(history, cfg.calibration.folds)
    refits: dict[str, Refit] = {"logistic": logistic_refit(encoding, monotone)}
    if booster is not None:
        refits["lightgbm"] = booster_refit(booster, encoding)
    progress(f"out-of-fold probabilities of {', '.join(families)} over {len(history):,} "
             f"snapshots in {cfg.calibration.folds} time blocks")  # fmt: skip
    oof: dict[str, np.ndarray] = {f: out_of_fold(history, refits[f], blocks) for f in families}
    selection = select_family(oof, y, cfg.selection)
    progress(f"model family: {selection.family} ({selection.why})")
    progress("choosing the calibrator on the out-of-fold probabilities")
    calibration = calibrate(history, blocks, oof[selection.family], cfg)
    calibrator = calibration.calibrator
    raw_calib = _raw_predictor(selection.family, booster, logreg)(calib)
    held_out = calib[["lead_id", "lead_source", "label", "lead_age_days"]].assign(
        p=calibrator(raw_calib)
    )
    trained_ages = sorted(ts.rows["lead_age_days"].unique().tolist())
    reference = cfg.reference_age if cfg.reference_age in trained_ages else trained_ages[-1]
    # the policy counts each lead once, as it stands at the reference age ("top 20% of leads")
    at_reference = policy_rows(held_out, reference)
    thresholds = compute_thresholds(at_reference, cfg.policy)
    tiers = tier_cuts(at_reference, thresholds, cfg.tiers)
    logistic = selection.family == "logistic"
    scorer = Scorer(
        spec=ts.spec,
        encoding=encoding,
        booster=None if logistic else booster,
        calibrator=calibrator,
        thresholds=thresholds,
        tiers=tiers,
        meta={
            "model_name": model_name,
            "selection": selection.to_dict(),
            "calibration": json_safe(calibration.report),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "target": cfg.label.target,
            "horizon_days": cfg.label.horizon_days,
            "trained_ages": trained_ages,
            "reference_age": reference,
            "data_window": {k: ts.fingerprint[k] for k in ("created_from", "created_to")},
            "feature_config": feature_config.model_dump(mode="json"),
        },
        linear=logreg.model if logistic else None,
    )
    # what live traffic is compared with; importance as mean |contribution|, either family
    importance = scorer.importance(train)
    scorer.meta["drift_reference"] = drift_reference(
        train, held_out["p"].to_numpy(), ts.spec, importance
    )
    return Fitted(ts, scorer, logreg, reference, calibration.scores, held_out, selection)


def calibrate(
    history: pd.DataFrame, blocks: np.ndarray, raw: np.ndarray, cfg: TrainingConfig
) -> CalibrationFit:
    """The calibrator of the chosen family, from its out-of-fold probabilities `raw` over the
    labelled `history` in time `blocks`."""
    c = cfg.calibration
    return calibrate_out_of_fold(
        history, blocks, raw, c.methods, min_positive_leads=c.min_positive_leads,
        criterion=c.criterion, min_relative_gain=c.min_relative_gain, bootstrap=c.bootstrap,
        report={"scheme": "blocked", "folds": c.folds},
    )  # fmt: skip


def _raw_predictor(
    family: str, booster: lgb.Booster | None, logreg: LogisticBaseline
) -> Callable[[pd.DataFrame], np.ndarray]:
    """The fitted model of `family` as a raw-probability function of snapshot rows."""
    if family == "logistic" or booster is None:
        return logreg.predict
    encoding = logreg.encoding
    return lambda rows: np.asarray(booster.predict(encoding.frame(rows)), dtype=np.float64)


def logistic_refit(encoding: Encoding, monotone: Mapping[str, int]) -> Refit:
    """Refits of the logistic regression (same encoding, same constraints) on other rows."""

    def refit(rows: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        return fit_logreg(rows, rows["label"].to_numpy(), encoding, monotone=monotone).predict

    return refit


def train_model(
    crm: CrmData,
    feature_config: FeatureConfig,
    cfg: TrainingConfig,
    *,
    ages: tuple[float, ...] | None = None,
    model_name: str | None = None,
    experiment: str | None = None,
    criteria_path: Path | None = None,
    allow_columns: tuple[str, ...] = (),
    choose_reference: bool = True,
    exclude: LeadExclusion | None = None,
    progress: Progress = log.info,
) -> TrainResult:
    """Audit, train, evaluate and register one model; everything is logged to MLflow.

    `exclude`: leads the reps rejected as never real prospects, left out of the training set.
    """
    model_name = model_name or cfg.mlflow.model_name
    client = configure(create=True)  # an unreachable tracking server fails now, not after fitting
    notes = check_source(crm, cfg.label.target, cfg.label.horizon_days)
    if crm.snapshot_ages and ages is None:  # a source seen at one age only (a flat file)
        ages = crm.snapshot_ages
        cfg = cfg.model_copy(update={"snapshot_ages": ages, "reference_age": ages[0]})
    elif choose_reference:
        age, why = reference_age(crm, cfg.label.target, cfg.label.horizon_days,
                                 ages or cfg.snapshot_ages, cfg.reference_age)  # fmt: skip
        if why:
            cfg = cfg.model_copy(update={"reference_age": age})
            notes.append(why)
    progress("auditing the columns for leakage")
    audit = audit_source(crm, feature_config, target=cfg.label.target,
                         horizon_days=cfg.label.horizon_days,
                         allow=(*cfg.audit.allow, *allow_columns))  # fmt: skip
    refused = [c.feature.split(".")[-1] for c in audit.refused()]
    refused_notes = [f"refused by the leakage audit, left out: {c.column} "
                     f"({'; '.join(c.blocked)}); keep it with --allow-column {c.column!r}"
                     for c in audit.refused()]  # fmt: skip
    notes += refused_notes
    feature_config = without_features(feature_config, refused)
    spec = build_spec(feature_config)
    criteria = _criteria_baseline(criteria_path, feature_config, spec, notes)
    progress("building snapshots and labels")
    ts = build_training_set(crm, spec, cfg, ages, exclude=exclude)
    fitted = fit_scorer(ts, feature_config, cfg, model_name=model_name, progress=progress)
    scorer, logreg, reference = fitted.scorer, fitted.logreg, fitted.reference_age
    calibrator, thresholds, selection = scorer.calibrator, scorer.thresholds, fitted.selection
    held_out, cal_scores = fitted.held_out, fitted.calibration_scores
    trained_ages = scorer.meta["trained_ages"]
    test = ts.part("test")

    progress("evaluating on the test slice")
    metrics, test_frame = evaluate_test(scorer, test, logreg, reference)
    if scorer.booster is not None:
        metrics["best_iteration"] = float(scorer.booster.best_iteration)
    metrics |= {f"selection_{family}_{selection.metric}": value
                for family, value in selection.scores.items()}  # fmt: skip
    if criteria is not None:
        ref_test = test[test["lead_age_days"] == reference]
        verdict = baseline_metrics(criteria, criteria_frame(crm, ref_test))
        metrics |= {f"criteria_test_{k}": v for k, v in verdict.items()}
        notes += [f"SQL-criteria baseline: {criteria.origin} (version {criteria.file.version}), "
                  "sql_ready counted as positive"]  # fmt: skip
    caveats = list(crm.caveats)
    typed = [c.source_column or c.name for c in feature_config.custom_fields
             if c.group == "sales" and c.known_at == "export" and c.name in spec.names]  # fmt: skip
    if typed:
        caveats.append(f"columns typed by reps after working the lead are features "
                       f"({', '.join(typed)}): the audit let them through, but metrics may be "
                       "optimistic")  # fmt: skip
    scorer.meta["caveats"] = caveats
    if ts.dropped_features:
        notes.append(f"criteria reading {ts.dropped_features} see them as unknown for this target")
    scorer.meta["test_metrics"] = {k: v for k, v in metrics.items() if "__" not in k}

    progress("logging to MLflow")
    experiment = experiment or cfg.mlflow.experiment
    with start_run(experiment) as run, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        mlflow.log_params(
            flat_params("", cfg.model_dump(mode="json"))
            | {"ages": ",".join(f"{a:g}" for a in trained_ages), "n_features": len(ts.spec),
               "dropped_features": ",".join(ts.dropped_features) or "none",
               "calibrator": calibrator.method, "reference_age": reference,
               "model_family": selection.family}
        )  # fmt: skip
        mlflow.set_tag(FAMILY_TAG, selection.family)
        mlflow.set_tags({f"data.{k}": str(v) for k, v in ts.fingerprint.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_dict(ts.fingerprint, "data/fingerprint.json")
        mlflow.log_dict(scorer.meta["calibration"], "calibration/report.json")
        population = {"exclusions": ts.exclusions, "splits": ts.split_ranges}
        if ts.excluded_leads is not None:
            fed = ts.excluded_leads
            population["feedback_exclusions"] = fed.to_dict()
            mlflow.log_param("exclude_feedback_reasons", ",".join(fed.reasons) or "none")
            counts = {
                "excluded_feedback_leads": fed.leads,
                "feedback_leads_not_in_data": fed.not_in_data,
            }
            counts |= {f"excluded_feedback_leads__{r}": n for r, n in fed.by_reason.items()}
            mlflow.log_metrics({k: float(v) for k, v in counts.items()})
        mlflow.log_dict(population, "data/population.json")
        _log_frame(held_out, out / "calib_scores.parquet", "heldout")
        _log_frame(test.drop(columns=["split"]), out / "test_snapshots.parquet", "heldout")
        ref_frame = test_frame[test_frame["lead_age_days"] == reference]
        importance = pd.Series(scorer.importance(test))
        for path in plot_all(
            out / "plots", ref_frame["label"].to_numpy().astype(int), ref_frame["p"].to_numpy(),
            {"logistic regression": ref_frame["logreg"].to_numpy()}, ref_frame["tier"].to_numpy(),
            ref_frame["raw"].to_numpy(), importance,
        ):  # fmt: skip
            mlflow.log_artifact(str(path), "plots")
        card = model_card(
            {"model_name": model_name, "trained_at": scorer.meta["trained_at"],
             "fingerprint": ts.fingerprint, "target": cfg.label.target,
             "horizon_days": cfg.label.horizon_days, "ages": [float(a) for a in trained_ages],
             "reference_age": reference, "split_ranges": ts.split_ranges,
             "exclusions": ts.exclusions, "dropped_features": ts.dropped_features,
             "metrics": metrics, "selection": selection.to_dict(),
             "calibrator": calibrator.method,
             "calibration_scores": {k: round(v, 4) for k, v in cal_scores.items()},
             "calibration": scorer.meta["calibration"],
             "policy": json.dumps(thresholds.policy),
             "thresholds": {"global_threshold": thresholds.global_threshold,
                            "by_source": thresholds.by_source},
             "tiers": {"kind": cfg.tiers.kind, "b": round(scorer.tiers.b, 4),
                       "c": round(scorer.tiers.c, 4)},
             "caveats": caveats, "audit_refused": refused_notes}
        )  # fmt: skip
        mlflow.log_text(card, "model_card.md")
        mlflow.log_dict(audit.to_dict(), "audit/audit.json")
        mlflow.log_text(audit_text(audit), "audit/audit.txt")
        mlflow.set_tags({"leadscore.audit.refused": ",".join(refused) or "none",
                         "leadscore.point_in_time": str(not caveats).lower()})  # fmt: skip
        if caveats:
            mlflow.set_tag("leadscore.caveats", " | ".join(caveats))
        scorer_dir = scorer.save(out / "scorer")
        write_digests(scorer_dir)
        _, version = log_scorer_model(scorer_dir, feature_config, model_name)
        aliases = set_aliases(client, model_name, version)
        mlflow.set_tag(RUN_VERSION_TAG, version)
        run_id = run.info.run_id
    scorer.meta["version"] = version
    return TrainResult(run_id, model_name, version, aliases, metrics, ts, scorer, notes)


def _criteria_baseline(
    path: Path | None, config: FeatureConfig, spec: FeatureSpec, notes: list[str]
) -> Criteria | None:
    """The SQL criteria to report as a baseline, read before anything is fitted. Criteria named
    on the command line must fit the data; the default ones may not (a flat file has its own
    fields): then the baseline is skipped, and said so."""
    try:
        return load_criteria(path, config, spec)
    except CriteriaError as exc:
        if path is not None:
            raise
        notes.append(f"SQL-criteria baseline skipped: {exc.lines()[0]} (the default criteria "
                     "do not fit this data's fields; give --criteria, or draft some with "
                     "`leadscore criteria suggest`)")  # fmt: skip
        return None


def without_features(config: FeatureConfig, names: list[str]) -> FeatureConfig:
    """The config minus the features the audit refused (custom fields and built-ins alike)."""
    if not names:
        return config
    return config.model_copy(update={
        "custom_fields": tuple(c for c in config.custom_fields if c.name not in names),
        "exclude_features": (*config.exclude_features, *names),
    })  # fmt: skip


def audit_text(audit: AuditReport) -> str:
    """The audit as a plain-text table (logged beside its JSON)."""
    return render(text_table(("column", "verdict", "CV AUC", "missing", "why"), audit.rows()))


def _log_frame(frame: pd.DataFrame, path: Path, artifact_dir: str) -> None:
    frame.to_parquet(path, index=False)
    mlflow.log_artifact(str(path), artifact_dir)
