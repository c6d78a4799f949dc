"""Fixtures for the scoring API: a toy model (fast), a really trained one (slow), clients."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadscore.serving.api import create_app
from leadscore.serving.settings import Settings
from tests.conftest import _generate
from tests.serving.leads import build_toy_model

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

SCORE_KEY, ADMIN_KEY, BOTH_KEY = "score-key-1", "admin-key-1", "both-key-1"
KEYS = f"{SCORE_KEY}:score,{ADMIN_KEY}:admin,{BOTH_KEY}:score+admin"
TRAIN_LEADS = 800

ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small scorer saved as a model directory (trained in well under a second)."""
    return build_toy_model(tmp_path_factory.mktemp("toy") / "model")


@pytest.fixture
def make_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientFactory]:
    """Build started TestClients (lifespan run) from Settings overrides; closed afterwards.
    Each gets a handoff store of its own (a throwaway SQLite file) unless one is given."""
    opened: list[TestClient] = []

    def factory(**overrides: Any) -> TestClient:
        store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
        settings = Settings(**({"api_keys": KEYS, "store_url": store} | overrides))
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def toy_client(make_client: ClientFactory, toy_model_dir: Path) -> TestClient:
    """A started client serving the toy model, with the score key sent by default."""
    client = make_client(model_uri=str(toy_model_dir))
    client.headers["X-API-Key"] = SCORE_KEY
    return client


@contextmanager
def tracking_restored() -> Iterator[None]:
    """Undo what in-process MLflow calls leave behind (training, the app's lifespan): the global
    tracking URI and the `MLFLOW_TRACKING_URI` / `MLFLOW_EXPERIMENT_ID` variables that
    `set_tracking_uri` and `set_experiment` export for subprocesses. Later tests (and their
    `mlflow run` subprocesses) must not find our store or experiment."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None: "not set"
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An 800-lead bundle trained and registered once per session (about 10 s) in a throwaway
    SQLite store: `uri` (tracking), `home`, `bundle`."""
    from leadscore.cli import app

    bundle = _generate(tmp_path_factory.mktemp("lf") / "serve", "research_instructor",
                       leads=TRAIN_LEADS)  # fmt: skip
    home = tmp_path_factory.mktemp("mlflow-serving")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(home)
        result = CliRunner().invoke(app, ["train", "--data", str(bundle)])
    assert result.exit_code == 0, result.output
    return {"uri": uri, "home": home, "bundle": bundle}


@pytest.fixture
def trained_client(make_client: ClientFactory, trained: dict[str, Any]) -> Iterator[TestClient]:
    """A started client serving `models:/lead-scoring@champion` of the trained store (its
    lifespan points MLflow at it: `LEADSCORE_TRACKING_URI`)."""
    with tracking_restored():
        client = make_client(tracking_uri=trained["uri"])
        client.headers["X-API-Key"] = SCORE_KEY
        yield client
