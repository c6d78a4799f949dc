"""Every error path of the console script prints one line naming the cause and the fix.

Run as a user would: the installed `leadscore` script in a subprocess, so the exit code, what
reaches stderr and the absence of a traceback are what a person sees. Exit 2 is a usage error,
1 a failure; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

LEADSCORE = Path(sys.executable).parent / "leadscore"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "small_crm"


def run(
    args: list[str], tmp_path: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LEADSCORE_"))}
    environ |= {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"} | env
    return subprocess.run(
        [str(LEADSCORE), *args], cwd=tmp_path, env=environ, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single `error:` line (progress notes may precede it); no traceback anywhere."""
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0] == result.stderr.strip().splitlines()[-1]
    return errors[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens once the socket is closed


def test_no_tracking_store(tmp_path: Path) -> None:
    result = run(["score", "--data", str(FIXTURE), "--out", "s.parquet"], tmp_path)
    assert result.returncode == 1
    line = one_error(result)
    assert "no MLflow tracking store at" in line and "leadscore train --data" in line
    assert not (tmp_path / "mlflow.db").exists()  # looking did not create an empty store


@pytest.mark.slow
def test_no_registered_model(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()
    result = run(["score", "--data", str(FIXTURE), "--out", "s.parquet"], tmp_path)
    assert result.returncode == 1
    line = one_error(result)
    assert "no model at models:/lead-scoring@champion" in line and "--model" in line


def test_unreachable_tracking_server(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = run(["score", "--data", str(FIXTURE), "--out", "s.parquet"], tmp_path,
                 MLFLOW_TRACKING_URI=uri)  # fmt: skip
    assert result.returncode == 1
    line = one_error(result)
    assert f"cannot reach the MLflow tracking store {uri}" in line
    assert "MLFLOW_TRACKING_URI" in line
    # MLflow's own client retries for minutes; the health check answers at once
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["score", "--data", str(FIXTURE), "--out", "s.parquet", "--as-of", "yesterday"],
         "--as-of 'yesterday' is not a date"),
        (["features", "build", "--data", str(FIXTURE), "--out", "x.parquet",
          "--as-of", "2024-13-45"], "--as-of '2024-13-45' is not a date"),
        (["score", "--data", str(FIXTURE), "--out", "s.parquet", "--as-of", "2024-02-01",
          "--as-of-days", "3"], "at most one of --as-of-days and --as-of"),
        (["init", "."], "pass --force"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], named: str) -> None:
    if args[0] == "init":
        run(["init", "."], tmp_path)  # the second init finds the files there
    result = run(args, tmp_path)
    assert result.returncode == 2
    assert named in one_error(result)


def test_missing_data_names_the_path(tmp_path: Path) -> None:
    result = run(["features", "build", "--data", "nowhere", "--out", "x.parquet",
                  "--as-of-days", "7"], tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "nowhere: no such file or directory" in one_error(result)


def test_a_broken_config_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "training.yaml").write_text("label:\n  target: won\nsplit:\n  train: 1.5\n")
    result = run(["train", "--data", str(FIXTURE), "--config", "training.yaml"], tmp_path)
    assert result.returncode == 1
    line = one_error(result)
    assert "training.yaml line 4: split.train: Input should be less than 1 (got 1.5)" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run(["--debug", "score", "--data", str(FIXTURE), "--out", "s.parquet"], tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RegistryError" in result.stderr


def test_try_lead_without_a_model_fails_fast_with_the_reason(tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"lead": {"lead_id": "x", "created_at": "2024-01-01"}}))
    started = time.monotonic()
    result = run(["try-lead", "--lead", str(lead)], tmp_path)
    assert result.returncode == 1
    line = one_error(result)
    assert "the service cannot serve a model" in line and "no MLflow tracking store" in line
    assert time.monotonic() - started < 60  # seconds, not the 120 s wait for readiness
