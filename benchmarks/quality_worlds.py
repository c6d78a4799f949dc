"""The worlds of ``quality.py``: leadforge bundles, training on them, scoring their unseen leads.

A world is one (seed, difficulty) of leadforge's recipe: a training bundle of N leads and an
evaluation bundle of M > N leads (its first N ids repeat the training leads), generated once and
cached under the work directory. Training uses the repository's pipeline
(``training.train.train_model``, registered into a scratch MLflow store, or its own
``fit_scorer`` and ``evaluate_test`` without MLflow for sweeps); scoring uses
``serving.batch.score_source``, what ``leadscore score --as-of-days`` runs.

Calibration variants (``quality.py --calibration``) replace the trained scorer's calibrator by
one cross-fitted over the whole labelled history (``training.calibration``); the unseen leads'
raw booster probabilities are the same, so each variant's probabilities are its calibrator
applied to them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import common
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.labels import label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.spec import build_spec
from leadscore.serving.batch import score_source
from leadscore.serving.runtime import Encoding, Scorer
from leadscore.training.calibration import (
    METHODS,
    CalibrationFit,
    Criterion,
    Predict,
    Scheme,
    booster_refit,
    choose_on_out_of_fold,
    cross_fit_calibration,
)
from leadscore.training.config import TrainingConfig
from leadscore.training.data import TrainingSet, build_training_set
from leadscore.training.models import fit_logreg
from leadscore.training.train import evaluate_test, fit_scorer, train_model

RECIPE = "b2b_saas_procurement_v1"
DIFFICULTIES = ("intro", "intermediate", "advanced")
EXPERIMENT = "quality"
# --calibration variants: today's calibrator, or cross-fitted (fold scheme, selection criterion,
# fitted on the reference age's snapshots only); variants of one scheme share its refits
CALIBRATIONS: dict[str, tuple[Scheme, Criterion, bool] | None] = {
    "current": None,
    "crossfit": ("blocked", "log_loss", False),
    "crossfit-ece": ("blocked", "ece", False),
    "crossfit-ref": ("blocked", "log_loss", True),
    "forward": ("forward", "log_loss", False),
}


def bundle(work: Path, seed: int, difficulty: str, leads: int) -> Path:
    """A research_instructor bundle of one world, generated once and cached."""
    out = work / "bundles" / f"s{seed}_{difficulty}_n{leads}"
    if (out / "manifest.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    exe = Path(sys.executable).with_name("leadforge")
    cmd = [
        str(exe), "generate", "--recipe", RECIPE, "--seed", str(seed), "--difficulty", difficulty,
        "--n-leads", str(leads), "--mode", "research_instructor", "--out", str(tmp),
    ]  # fmt: skip
    print(f"  generating {out.name} ...", flush=True)
    with common.stopwatch() as took:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (tmp / "manifest.json").is_file():
        sys.exit(f"leadforge generate failed for {out.name}:\n{done.stderr[-2000:]}")
    tmp.rename(out)
    print(f"  generated {out.name} in {took.seconds:.0f} s", flush=True)
    return out


def prepare_mlflow(work: Path, name: str) -> None:
    """A scratch SQLite store and artifact root under `work`; never the repository's."""
    import mlflow
    from mlflow import MlflowClient

    store = work / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(store / f'{name}.db').resolve()}"
    os.environ["MLFLOW_TRACKING_URI"] = uri  # leadscore.serving.registry.tracking_uri reads it
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    if client.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (store / f"{name}.artifacts").resolve()
        client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())


class World:
    """One (seed, difficulty): bundles, loaded sources and what does not depend on the config."""

    def __init__(self, work: Path, seed: int, difficulty: str, n_train: int, n_eval: int,
                 fcfg: FeatureConfig):  # fmt: skip
        self.seed, self.difficulty, self.fcfg = seed, difficulty, fcfg
        self.train_root = bundle(work, seed, difficulty, n_train)
        self.eval_root = bundle(work, seed, difficulty, n_eval)
        self.crm = load_source(self.train_root, fcfg)
        self.eval_crm = load_source(self.eval_root, fcfg)
        self.seen = set(self.crm.leads["lead_id"].astype(str))
        self._sets: dict[str, tuple[TrainingSet, Any]] = {}

    def training_set(self, cfg: TrainingConfig) -> tuple[TrainingSet, Any]:
        """(TrainingSet, logistic-regression baseline), cached by what builds them."""
        key = json.dumps(
            [cfg.label.model_dump(mode="json"), list(cfg.snapshot_ages),
             cfg.split.model_dump(mode="json"), cfg.min_train_positives]
        )  # fmt: skip
        if key not in self._sets:
            ts = build_training_set(self.crm, build_spec(self.fcfg), cfg)
            train = ts.part("train")
            encoding = Encoding.learn(ts.spec, train)
            logreg = fit_logreg(train, train["label"].to_numpy(), encoding)
            self._sets[key] = (ts, logreg)
        return self._sets[key]

    def train(
        self, cfg: TrainingConfig, run_name: str, fast: bool
    ) -> tuple[Scorer, dict[str, float], TrainingSet]:
        """(scorer, test-slice metrics, training set): `train_model`, registered in the scratch
        store; or, `fast`, its own `fit_scorer` and `evaluate_test` without MLflow, reusing the
        snapshots and the logistic-regression baseline between configs."""
        if not fast:
            result = train_model(
                self.crm, self.fcfg, cfg, experiment=EXPERIMENT, progress=lambda _msg: None,
                model_name=f"quality-{run_name}-s{self.seed}-{self.difficulty}",
            )  # fmt: skip
            return result.scorer, result.metrics, result.training_set
        ts, logreg = self.training_set(cfg)
        fitted = fit_scorer(ts, self.fcfg, cfg, logreg=logreg, progress=lambda _msg: None)
        metrics, _ = evaluate_test(fitted.scorer, ts.part("test"), logreg, fitted.reference_age)
        booster = fitted.scorer.booster  # None when the logistic family won the selection
        metrics["best_iteration"] = float(booster.best_iteration if booster is not None else 0)
        return fitted.scorer, metrics, ts

    def score_unseen(
        self, scorer: Scorer, days: float, horizon: float
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """`lead_id`, `mql_probability`, `raw` (the booster before calibration) and `label`
        (NaN: not final) of the evaluation leads never seen in training that are still open
        `days` after creation; and how many leads each reason left out."""
        crm = self.eval_crm
        unseen_mask = ~crm.leads["lead_id"].astype(str).isin(self.seen).to_numpy()
        unseen = replace(crm, leads=crm.leads[unseen_mask].reset_index(drop=True))
        as_of = as_of_after_creation(unseen.leads, days)
        batch = score_source(unseen, scorer, as_of)
        scores = batch.scores
        labels = label_snapshots(
            scores, unseen.outcomes, unseen.leads.set_index("lead_id")["created_at"],
            target=scorer.meta.get("target", "won"), horizon_days=horizon,
            observation_end=unseen.observation_end, has_outcome_dates=True,
        )  # fmt: skip
        counts = {str(k): int(v) for k, v in batch.excluded["reason"].value_counts().items()}
        counts |= {str(k): int(v) for k, v in labels["excluded"].value_counts().items()}
        counts["unseen"] = len(unseen.leads)
        rows = snapshot(unseen, scorer.spec, as_of)  # for the booster's raw output
        raw = pd.Series(scorer.raw_frame(rows), index=rows["lead_id"].astype(str).to_numpy())
        lead_ids = scores["lead_id"].astype(str).to_numpy()
        frame = pd.DataFrame({
            "lead_id": lead_ids,
            "mql_probability": scores["mql_probability"].to_numpy(),
            "raw": raw.loc[lead_ids].to_numpy(),
            "label": labels["label"].astype("float64").to_numpy(),
        })  # fmt: skip
        return frame, counts


def variant_fit(fit: CalibrationFit, variant: str, reference_age: float) -> CalibrationFit:
    """The calibrator `variant` chooses from a cross-fit of its scheme: by its criterion, on
    every out-of-fold snapshot or on the reference age's only."""
    how = CALIBRATIONS[variant]
    if how is None or fit.oof.empty:
        return fit
    _, criterion, at_reference = how
    oof = fit.oof
    if at_reference:
        oof = oof[oof["lead_age_days"] == reference_age].reset_index(drop=True)
    return choose_on_out_of_fold(oof, METHODS, criterion=criterion)


def cross_fit(
    scorer: Scorer, ts: TrainingSet, cfg: TrainingConfig, variant: str, bootstrap: int = 200
) -> CalibrationFit:
    """The calibrator of `variant` (see `CALIBRATIONS`), cross-fitted on every labelled
    snapshot but the test slice with refits of the scorer's model: its booster at its best
    iteration, or the logistic regression when that family won."""
    how = CALIBRATIONS[variant]
    if how is None:
        raise ValueError(f"{variant}: not a cross-fitted calibration")
    scheme, criterion, _ = how
    history = ts.rows[ts.rows["split"] != "test"]
    encoding = scorer.encoding
    if scorer.booster is not None:
        refit = booster_refit(scorer.booster, encoding)
    else:

        def refit(rows: pd.DataFrame) -> Predict:
            return fit_logreg(rows, rows["label"].to_numpy().astype(int), encoding).predict

    return cross_fit_calibration(
        history, refit, METHODS, scheme=scheme,
        criterion=criterion, min_positive_leads=cfg.calibration.min_positive_leads,
        bootstrap=bootstrap,
    )  # fmt: skip
