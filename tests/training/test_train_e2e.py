"""End to end: train on a generated bundle, register, load the pyfunc, score with the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.bodies import lead_bodies
from leadscore.features.config import load_feature_config
from leadscore.features.sources import load_source

pytestmark = pytest.mark.slow
runner = CliRunner()

METRICS = [
    "test_roc_auc", "test_pr_auc", "test_brier", "test_log_loss", "test_ece",
    "test_lift_top_decile", "test_precision_at_mql", "test_recall_at_mql",
    "test_brier_uncalibrated", "test_ece_uncalibrated",
    "logreg_test_roc_auc", "logreg_test_brier", "test_roc_auc__age_7d", "test_roc_auc__age_1d",
    "criteria_test_precision", "criteria_test_recall",
]  # fmt: skip
ARTIFACTS = [
    "model_card.md", "plots/roc.png", "plots/precision_recall.png", "plots/calibration.png",
    "plots/cumulative_gains.png", "plots/conversion_by_tier.png", "plots/shap_importance.png",
    "data/fingerprint.json", "heldout/calib_scores.parquet", "heldout/test_snapshots.parquet",
]  # fmt: skip
AS_OF = "2024-02-20T00:00:00"


@pytest.fixture(scope="module")
def trained(train_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train twice into one throwaway store (module scope: training takes ~10 s)."""
    home = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(home)
        first = runner.invoke(app, ["train", "--data", str(train_bundle)])
        second = runner.invoke(app, ["train", "--data", str(train_bundle)])
    return {"uri": uri, "home": home, "first": first, "second": second}


def _client(trained: dict[str, Any]) -> MlflowClient:
    mlflow.set_tracking_uri(trained["uri"])
    return MlflowClient()


def test_train_registers_versions_with_aliases(trained: dict[str, Any]) -> None:
    assert trained["first"].exit_code == 0, trained["first"].output
    assert "lead-scoring v1 (challenger, champion)" in trained["first"].output
    assert "lead-scoring v2 (challenger)" in trained["second"].output
    client = _client(trained)
    assert str(client.get_model_version_by_alias("lead-scoring", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("lead-scoring", "challenger").version) == "2"


def test_run_logs_metrics_plots_card_and_no_pickle(trained: dict[str, Any]) -> None:
    client = _client(trained)
    version = client.get_model_version("lead-scoring", "1")
    run = client.get_run(str(version.run_id))
    missing = [m for m in METRICS if m not in run.data.metrics]
    assert not missing
    assert any(k.startswith("test_roc_auc__source_") for k in run.data.metrics)
    assert 0.0 <= run.data.metrics["test_roc_auc"] <= 1.0
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id))
    assert not [a for a in ARTIFACTS if not (local / a).is_file()]
    card = (local / "model_card.md").read_text()
    assert "## Threshold policy" in card and "logistic regression" in card
    model_dir = Path(mlflow.artifacts.download_artifacts("models:/lead-scoring/1"))
    files = {p.name for p in model_dir.rglob("*") if p.is_file()}
    assert {"scorer.json", "MLmodel", "model_code.py"} <= files
    # the family the selection chose is stored and tagged; only LightGBM has a booster file
    family = run.data.tags["leadscore.model_family"]
    assert family in ("lightgbm", "logistic")
    assert ("model.lgb" in files) == (family == "lightgbm")
    assert f"Registered: **{family}**" in card
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]


def _bodies(bundle: Path, n: int) -> tuple[pd.DataFrame, list[str]]:
    """The first `n` leads as pyfunc input rows (history up to AS_OF)."""
    config = load_feature_config()
    crm = load_source(bundle, config)
    ids = crm.leads["lead_id"].head(n).tolist()
    bodies = lead_bodies(crm, config, ids, [AS_OF] * n)
    rows = [{k: b[k] for k in ("lead", "account", "contact", "events")} for b in bodies]
    return pd.DataFrame(rows), ids


def test_pyfunc_equals_batch_scoring(trained: dict[str, Any], train_bundle: Path) -> None:
    out = trained["home"] / "scores.parquet"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained["uri"])
        result = runner.invoke(app, ["score", "--data", str(train_bundle), "--as-of", AS_OF,
                                     "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    batch = pd.read_parquet(out).set_index("lead_id")
    assert {"as_of", "lead_age_days", "stale", "mql_probability", "tier", "is_mql", "threshold",
            "model_version"} <= set(batch.columns)  # fmt: skip
    assert (batch["model_version"] == "1").all()
    excluded = pd.read_parquet(out.with_suffix(".excluded.parquet"))
    assert set(excluded["reason"]) <= {"won_before_as_of", "lost_before_as_of", "not_created_yet"}
    assert len(batch) + len(excluded) == 800

    frame, ids = _bodies(train_bundle, 40)
    keep = [i for i, lead_id in enumerate(ids) if lead_id in batch.index]
    frame = frame.iloc[keep].reset_index(drop=True)
    ids = [ids[i] for i in keep]
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model("models:/lead-scoring@champion")
    pred = model.predict(frame, params={"as_of": AS_OF}).set_index("lead_id")
    expected = batch.loc[ids]
    np.testing.assert_array_equal(pred.loc[ids, "mql_probability"].to_numpy(),
                                  expected["mql_probability"].to_numpy())  # fmt: skip
    assert pred.loc[ids, "tier"].tolist() == expected["tier"].tolist()

    # an unknown event field and a missing optional field change nothing
    frame.at[0, "events"] = [e | {"utm_campaign": "spring"} for e in frame.at[0, "events"]]
    frame.at[1, "contact"] = {k: v for k, v in frame.at[1, "contact"].items() if k != "job_title"}
    again = model.predict(frame, params={"as_of": AS_OF}).set_index("lead_id")
    np.testing.assert_array_equal(again.loc[ids, "mql_probability"].to_numpy(),
                                  expected["mql_probability"].to_numpy())  # fmt: skip


def test_student_public_is_refused_by_the_cli(sp_bundle: Path, tracking: str) -> None:
    result = runner.invoke(app, ["train", "--data", str(sp_bundle)])
    assert result.exit_code == 1
    assert "no dated outcomes" in result.output
