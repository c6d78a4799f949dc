"""Model updates without downtime: swap under load, refuse a broken version, follow the policy."""

from __future__ import annotations

import json
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from leadscore.features.config import FeatureConfig
from leadscore.serving.lead_scoring import score_bodies
from leadscore.serving.loader import load_scorer
from leadscore.serving.runtime import SCORER_FILE
from leadscore.training.lifecycle import set_policy
from leadscore.training.tracking import log_scorer_model
from tests.serving.conftest import ADMIN_KEY, SCORE_KEY, ClientFactory, tracking_restored
from tests.serving.leads import build_toy_model, random_body

NAME = "lead-scoring"
pytestmark = pytest.mark.slow  # registers models in a throwaway MLflow store


def _register(model_dir: Path) -> str:
    """Log a scorer directory as a new registered version; returns the version."""
    scorer_meta = json.loads((model_dir / SCORER_FILE).read_text())["meta"]
    config = FeatureConfig.model_validate(scorer_meta["feature_config"])
    with mlflow.start_run():
        _, version = log_scorer_model(model_dir, config, NAME)
    return version


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Two different toy models registered as versions 1 and 2; champion -> 1."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # artifacts go to ./mlruns next to the store
    with tracking_restored():
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("hot-swap")
        dirs = [build_toy_model(tmp_path / f"m{seed}", seed=seed) for seed in (5, 6)]
        versions = [_register(d) for d in dirs]
        client = MlflowClient()
        client.set_registered_model_alias(NAME, "champion", versions[0])
        yield {"uri": uri, "client": client, "dirs": dirs, "versions": versions}


def _expected(version: str, bodies: list[dict[str, Any]]) -> dict[str, float]:
    scorer = load_scorer(f"models:/{NAME}/{version}")
    return {s["lead_id"]: s["mql_probability"] for s in score_bodies(scorer, bodies)}


def test_swap_under_load_loses_nothing_and_never_mixes(
    registry: dict[str, Any], make_client: ClientFactory
) -> None:
    rng = random.Random(3)
    bodies = [random_body(rng, i) for i in range(12)]
    expected = {v: _expected(v, bodies) for v in registry["versions"]}
    assert expected["1"] != expected["2"]  # the two versions really differ
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    responses: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    start = threading.Barrier(5)
    swapped = threading.Event()
    sent: list[int] = []

    def load(worker: int) -> None:
        start.wait()
        after_swap = 0
        for i in range(2000):  # bounded: keep going until 10 requests after the swap
            if swapped.is_set():
                after_swap += 1
                if after_swap > 10:
                    break
            body = bodies[(worker * 7 + i) % len(bodies)]
            with lock:
                sent.append(worker)
            r = client.post("/v1/score?explain=true", json=body, headers={"X-API-Key": SCORE_KEY})
            with lock:
                responses.append((r.status_code, r.json()))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    start.wait()
    registry["client"].set_registered_model_alias(NAME, "champion", "2")
    swap = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    swapped.set()
    for t in threads:
        t.join(timeout=120)
    assert swap.status_code == 200 and swap.json()["result"] == "swapped", swap.json()
    assert len(responses) == len(sent) >= 44  # every request sent got an answer
    assert {status for status, _ in responses} == {200}
    seen = set()
    for _, body in responses:
        version = body["model"]["version"]
        seen.add(version)
        # probability, tier and threshold all come from the version the response names
        # (to float rounding: with reasons the score is the sum of the contributions)
        assert body["mql_probability"] == pytest.approx(expected[version][body["lead_id"]],
                                                        rel=0, abs=1e-12)  # fmt: skip
    assert seen == {"1", "2"}  # requests ran on both sides of the swap
    after = client.post("/v1/score", json=bodies[0], headers={"X-API-Key": SCORE_KEY}).json()
    assert after["model"]["version"] == "2"
    model = client.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).json()
    assert model["version"] == "2" and model["last_check"]["result"] == "swapped"


def test_broken_version_is_refused_and_the_old_one_keeps_serving(
    registry: dict[str, Any], make_client: ClientFactory, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(registry["dirs"][1], broken)
    scorer_json = json.loads((broken / SCORER_FILE).read_text())
    scorer_json["spec"][3]["template"] = "Broken {nonexistent_placeholder}"  # cannot be served
    (broken / SCORER_FILE).write_text(json.dumps(scorer_json))
    version = _register(broken)
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    body = random_body(random.Random(1), 0)
    before = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}).json()
    registry["client"].set_registered_model_alias(NAME, "champion", version)
    check = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
    assert check["result"] == "refused"
    assert "template" in check["detail"]
    after = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert after.status_code == 200
    assert after.json()["model"]["version"] == "1"
    assert after.json()["mql_probability"] == before["mql_probability"]
    ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY}).json()
    assert ready["ready"] is True and "template" in ready["error"]
    model = client.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).json()
    assert "template" in model["refused"]
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'leadscore_model_checks_total{result="refused"} 1.0' in metrics
    # the same refused version is not reloaded on every poll
    again = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
    assert again["result"] == "refused"


def test_thresholds_tag_is_picked_up_without_a_new_version(
    registry: dict[str, Any], make_client: ClientFactory, tmp_path: Path
) -> None:
    # `policy set` recomputes from the version's logged held-out scores: log some for v1
    rng = random.Random(9)
    bodies = [random_body(rng, i) for i in range(60)]
    held = [
        {"lead_id": s["lead_id"], "lead_source": "inbound_marketing", "p": s["mql_probability"],
         "label": i % 3 == 0, "lead_age_days": 30.0}
        for i, s in enumerate(score_bodies(load_scorer(f"models:/{NAME}/1"), bodies))
    ]  # fmt: skip
    import pandas as pd

    run_id = registry["client"].get_model_version(NAME, "1").run_id
    path = tmp_path / "calib_scores.parquet"
    pd.DataFrame(held).to_parquet(path)
    registry["client"].log_artifact(run_id, str(path), "heldout")

    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    body = bodies[0]
    before = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}).json()
    _, tag = set_policy(NAME, "capacity", 0.9)
    check = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
    assert check["result"] == "swapped"
    after = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}).json()
    assert after["model"]["version"] == before["model"]["version"] == "1"
    assert after["threshold"] == pytest.approx(tag["global_threshold"])
    assert after["threshold"] != before["threshold"]
    info = client.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).json()
    assert info["thresholds"]["revision"] == 1
    assert len(registry["client"].search_model_versions(f"name='{NAME}'")) == 2
