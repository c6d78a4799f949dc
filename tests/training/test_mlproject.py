"""`mlflow run . -e train --env-manager local` trains and registers through the same CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mlflow_run_train_entry_point(train_bundle: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    # in-process training earlier in the session may have exported MLFLOW_EXPERIMENT_ID
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = inherited | {"MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    mlflow_cli = shutil.which("mlflow", path=env["PATH"])
    assert mlflow_cli
    run = subprocess.run(
        [mlflow_cli, "run", str(ROOT), "-e", "train", "--env-manager", "local",
         "-P", f"data={train_bundle}", "-P", "model_name=mlproject-model"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    version = MlflowClient().get_model_version_by_alias("mlproject-model", "champion")
    assert str(version.version) == "1"
