"""The quarterly loop: promotion gate, rollback, policy change without retraining."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.configdir import default_config_dir
from leadscore.serving.loader import load_scorer

pytestmark = pytest.mark.slow
runner = CliRunner()


def _weak_config(tmp_path: Path) -> Path:
    """A deliberately poor model: one stump (LightGBM only: the selection would otherwise
    register the logistic regression, which the stump settings do not touch)."""
    cfg = yaml.safe_load((default_config_dir() / "training.yaml").read_text())
    cfg["selection"] = {"families": ["lightgbm"]}
    cfg["model"] |= {"num_boost_round": 1, "early_stopping_rounds": 1}
    cfg["model"]["params"] |= {"num_leaves": 2, "learning_rate": 0.01}
    cfg["calibration"] = {"methods": ["none"]}
    path = tmp_path / "weak.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_promote_gate_rollback_and_policy(
    train_bundle: Path, tracking: str, tmp_path: Path
) -> None:
    def train(*extra: str) -> None:
        result = runner.invoke(app, ["train", "--data", str(train_bundle), *extra])
        assert result.exit_code == 0, result.output

    train()  # v1: champion (none existed)
    train("--config", str(_weak_config(tmp_path)))  # v2: worse
    refused = runner.invoke(app, ["promote"])
    assert refused.exit_code == 1, refused.output
    assert "refused: version 2 is not promoted; champion stays 1" in refused.output
    assert "v2 (candidate)" in refused.output and "v1 (champion)" in refused.output
    assert "roc_auc" in refused.output and "brier" in refused.output
    mlflow.set_tracking_uri(tracking)
    client = MlflowClient()

    def champion() -> str:
        return str(client.get_model_version_by_alias("lead-scoring", "champion").version)

    assert champion() == "1"

    train()  # v3: the same recipe as v1, so at least as good
    accepted = runner.invoke(app, ["promote"])
    assert accepted.exit_code == 0, accepted.output
    assert "promoted: lead-scoring version 3 is now champion (was 1)" in accepted.output
    assert champion() == "3"

    forced = runner.invoke(app, ["promote", "--version", "2", "--force"])
    assert forced.exit_code == 0 and "forced" in forced.output
    assert champion() == "2"
    rollback = runner.invoke(app, ["promote", "--version", "1"])
    assert rollback.exit_code == 0, rollback.output
    assert "v1 (candidate)" in rollback.output and "v2 (champion)" in rollback.output
    assert champion() == "1"

    before = load_scorer("models:/lead-scoring@champion").thresholds
    changed = runner.invoke(app, ["policy", "set", "--capacity", "0.5"])
    assert changed.exit_code == 0, changed.output
    assert "revision 1" in changed.output
    after = load_scorer("models:/lead-scoring@champion").thresholds
    assert after.revision == before.revision + 1
    assert after.policy["kind"] == "capacity" and after.policy["value"] == 0.5
    assert after.global_threshold < before.global_threshold  # more leads go to sales
    assert len(client.search_model_versions("name='lead-scoring'")) == 3  # no new version
    # a plain path keeps what was logged
    local = mlflow.artifacts.download_artifacts("models:/lead-scoring/1")
    assert load_scorer(local).thresholds.revision == 0

    precise = runner.invoke(app, ["policy", "set", "--precision", "0.3"])
    assert precise.exit_code == 0, precise.output
    assert load_scorer("models:/lead-scoring@champion").thresholds.revision == 2
