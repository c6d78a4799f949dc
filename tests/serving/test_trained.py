"""On a really trained and registered model (one per session): parity of the API, `leadscore
score` and the pyfunc; contributions and points; invariance; direction; `mlflow models serve`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.features.config import load_feature_config
from leadscore.features.payload import payload_model
from leadscore.serving.loader import load_scorer
from leadscore.serving.runtime import Scorer
from tests.serving.conftest import ADMIN_KEY, TestClient, tracking_restored
from tests.serving.leads import bundle_bodies, relabelled

pytestmark = pytest.mark.slow
AS_OF = "2024-02-20T00:00:00"
CHAMPION = "models:/lead-scoring@champion"


@pytest.fixture(scope="module")
def bodies(trained: dict[str, Any]) -> list[dict[str, Any]]:
    """40 leads of the training bundle as API bodies at AS_OF."""
    return bundle_bodies(trained["bundle"], 40, AS_OF)


@pytest.fixture(scope="module")
def scorer(trained: dict[str, Any]) -> Scorer:
    with tracking_restored():
        mlflow.set_tracking_uri(trained["uri"])
        return load_scorer(CHAMPION)


def _rows(scorer: Scorer, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    model = payload_model(load_feature_config())
    rows = []
    for body in bodies:
        payload = model.model_validate(body)
        rows.append(scorer.feature_row(*payload.records(), payload.as_of_or_now()))
    return rows


def test_api_cli_and_pyfunc_give_identical_probabilities(
    trained: dict[str, Any], trained_client: TestClient, bodies: list[dict[str, Any]]
) -> None:
    from leadscore.cli import app

    out = trained["home"] / "scores.parquet"
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained["uri"])
        result = CliRunner().invoke(app, ["score", "--data", str(trained["bundle"]),
                                          "--as-of", AS_OF, "--out", str(out)])  # fmt: skip
        assert result.exit_code == 0, result.output
        mlflow.set_tracking_uri(trained["uri"])
        pyfunc = mlflow.pyfunc.load_model(CHAMPION)
    cli = pd.read_parquet(out).set_index("lead_id")
    open_bodies = [b for b in bodies if b["lead"]["lead_id"] in cli.index]
    ids = [b["lead"]["lead_id"] for b in open_bodies]
    assert len(ids) >= 30

    batch = trained_client.post("/v1/score/batch", json={"leads": open_bodies})
    assert batch.status_code == 200, batch.text
    api = [r["mql_probability"] for r in batch.json()["results"]]
    single = [trained_client.post("/v1/score", json=b).json()["mql_probability"]
              for b in open_bodies[:10]]  # fmt: skip
    frame = pd.DataFrame([{k: b[k] for k in ("lead", "account", "contact", "events")}
                          for b in open_bodies])  # fmt: skip
    via_pyfunc = pyfunc.predict(frame, params={"as_of": AS_OF})

    np.testing.assert_array_equal(api, cli.loc[ids, "mql_probability"].to_numpy())
    np.testing.assert_array_equal(api, via_pyfunc["mql_probability"].to_numpy())
    # one score with reasons comes from one LightGBM call (sigmoid of base + contributions):
    # the same probability to within float rounding, the same tier (below)
    np.testing.assert_allclose(single, api[:10], rtol=0, atol=1e-12)
    tiers = [r["tier"] for r in batch.json()["results"]]
    assert tiers == cli.loc[ids, "tier"].tolist()


def test_contributions_add_up_and_points_add_up(
    trained_client: TestClient, scorer: Scorer, bodies: list[dict[str, Any]]
) -> None:
    rows = _rows(scorer, bodies)
    for body, row in zip(bodies, rows, strict=True):
        contrib, base = scorer.contributions(row)
        x = scorer.encoding.row(row).reshape(1, -1)
        if scorer.booster is not None:
            raw = float(scorer.booster.predict(x, raw_score=True, num_threads=1)[0])
        else:  # the logistic family: log-odds computed from the stored coefficients
            assert scorer.linear is not None
            raw = float(scorer.linear.log_odds(x)[0])
        assert contrib.sum() + base == pytest.approx(raw, abs=1e-9)
        data = trained_client.post("/v1/score", json=body).json()
        p0 = data["reasons"]["base_probability"]
        total = sum(data["score_by_group"].values())
        assert total == pytest.approx(data["mql_probability"] - p0, abs=1e-9)
        for r in data["reasons"]["positive"] + data["reasons"]["negative"]:
            assert abs(r["points"]) <= 1 and "_" not in r["sentence"]


def test_invariance_on_the_trained_model(
    trained_client: TestClient, bodies: list[dict[str, Any]]
) -> None:
    for body in bodies[:15]:
        other = relabelled(body)
        before = trained_client.post("/v1/score", json=body).json()
        after = trained_client.post("/v1/score", json=other).json()
        assert after["mql_probability"] == before["mql_probability"]
        assert after["reasons"] == before["reasons"]


def test_direction_more_never_lowers_a_monotone_contribution(
    scorer: Scorer, bodies: list[dict[str, Any]]
) -> None:
    monotone = [f for f in scorer.spec if f.monotone == 1]
    assert {"pricing_page_views", "meetings_set", "inbound_touches"} <= {f.name for f in monotone}
    names = scorer.spec.names
    for row in _rows(scorer, bodies):
        for f in monotone:
            j = names.index(f.name)
            grid: list[Any] = [False, True] if f.dtype == "boolean" else [0, 1, 2, 3, 5, 8, 20]
            values = []
            for v in grid:
                contrib, base = scorer.contributions(row | {f.name: v})
                values.append((contrib[j], contrib.sum() + base))
            own, total = np.array(values).T
            assert np.all(np.diff(own) >= -1e-9), (f.name, grid, own)
            assert np.all(np.diff(total) >= -1e-9), (f.name, grid, total)


def test_model_info_of_the_registered_champion(trained_client: TestClient) -> None:
    info = trained_client.get("/v1/model").json()
    assert (info["name"], info["version"], info["alias"]) == ("lead-scoring", "1", "champion")
    assert info["trained_at"] and info["data_window"]["created_from"]
    assert 0.5 < info["test_metrics"]["test_roc_auc"] <= 1
    assert info["thresholds"]["policy"]["kind"] in ("capacity", "precision")
    assert len(info["features"]) > 40
    assert all(f["label"] and "_" not in f["label"] for f in info["features"])
    metrics = trained_client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'leadscore_model_info{alias="champion",name="lead-scoring",version="1"} 1.0' in metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_mlflow_models_serve_matches_the_api(
    trained: dict[str, Any], trained_client: TestClient, bodies: list[dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    bin_dir = str(Path(sys.executable).parent)
    env = os.environ | {"MLFLOW_TRACKING_URI": trained["uri"],
                        "PATH": f"{bin_dir}:{os.environ['PATH']}"}  # fmt: skip
    mlflow_cli = shutil.which("mlflow", path=env["PATH"])
    assert mlflow_cli
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [mlflow_cli, "models", "serve", "-m", CHAMPION, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping"
            time.sleep(0.5)
        leads = bodies[:12]
        records = [{k: b[k] for k in ("lead", "account", "contact", "events")} for b in leads]
        served = _post(f"http://127.0.0.1:{port}/invocations",
                       {"dataframe_records": records, "params": {"as_of": AS_OF}})  # fmt: skip
        predictions = served["predictions"]
        api = trained_client.post("/v1/score/batch", json={"leads": leads}).json()["results"]
        assert [p["lead_id"] for p in predictions] == [r["lead_id"] for r in api]
        np.testing.assert_array_equal(
            [p["mql_probability"] for p in predictions], [r["mql_probability"] for r in api]
        )
        assert [p["tier"] for p in predictions] == [r["tier"] for r in api]
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=20)
        log.close()
