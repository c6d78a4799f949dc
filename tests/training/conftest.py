"""Fixtures for training tests: a bundle big enough to train on, a throwaway MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _generate

TRAIN_LEADS = 800


@pytest.fixture(scope="session")
def train_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A research_instructor bundle of 800 leads (seed 11): enough positives in every slice."""
    return _generate(
        tmp_path_factory.mktemp("lf") / "train", "research_instructor", leads=TRAIN_LEADS
    )


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite tracking store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri
