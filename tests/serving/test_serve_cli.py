"""`leadscore serve`: options reach uvicorn; bad key settings stop it before it starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.serving.api.server import PROTOCOL

runner = CliRunner()


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"target": target} | kw))
    return calls


def test_serve_runs_the_app_factory(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSCORE_API_KEYS", "k:score")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("LEADSCORE_MAX_CONNECTIONS", "50")
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9123", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls == [{"target": "leadscore.serving.api:create_app", "factory": True,
                              "host": "0.0.0.0", "port": 9123, "workers": 1,
                              "timeout_keep_alive": 5, "limit_concurrency": 50,
                              "http": PROTOCOL}]  # fmt: skip


@pytest.mark.parametrize(("cores", "workers"), [(3, 3), (None, 1)])
def test_workers_default_to_one_per_core(
    uvicorn_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cores: int | None,
    workers: int,
) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # restored afterwards
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["workers"] == workers
    assert f"({workers} worker(s))" in result.output


def test_several_workers_share_metrics_through_a_directory(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    result = runner.invoke(app, ["serve", "--workers", "2"])
    try:
        assert result.exit_code == 0, result.output
        assert uvicorn_calls[0]["workers"] == 2
        assert Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def test_bad_keys_stop_the_service_before_it_starts(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSCORE_API_KEYS", "k:superuser")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "unknown or missing scope ['superuser']" in result.output
    assert uvicorn_calls == []
