"""Live drift: each scored lead counted once in its version's reference buckets, PSI from the
counts summed across workers, `GET /v1/model/drift`, one warning per shifted histogram."""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import values

from leadscore.features.drift import reference
from leadscore.serving.api.app import install_model
from leadscore.serving.api.metrics import MULTIPROC_ENV, Metrics
from leadscore.serving.live_drift import SCORE, LiveDrift
from leadscore.serving.runtime import Scorer
from tests.serving.conftest import ADMIN_KEY, SCORE_KEY, ClientFactory
from tests.serving.leads import AS_OF, INDUSTRIES, iso, random_body

# a reference written by hand: the bins and counts the bucket test works out by hand
HAND = {
    "rows": 100,
    "score": {"kind": "number", "edges": [0.1, 0.3, 0.6], "counts": [10, 20, 30, 40, 0]},
    "features": {
        "seniority": {"kind": "category", "values": ["director", "manager", "vp"],
                      "counts": [30, 40, 30, 0, 0]},
        "pricing_page_views": {"kind": "number", "edges": [0.0, 2.0], "counts": [50, 30, 20, 0]},
        "opportunity_opened": {"kind": "category", "values": ["False", "True"],
                               "counts": [90, 10, 0, 0]},
    },
}  # fmt: skip
SAMPLED = ["industry", "seniority", "lead_source", "pricing_page_views", "touches"]


def _with_meta(source: Path, target: Path, **meta: Any) -> Path:
    """A copy of a model directory with its metadata changed."""
    shutil.copytree(source, target)
    path = target / "scorer.json"
    data = json.loads(path.read_text())
    data["meta"] |= meta
    path.write_text(json.dumps(data))
    return target


@pytest.fixture(scope="module")
def sampled(toy_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy model as version 8, trained (as it were) with a reference drawn from 600 random
    leads: a model directory of its own (the others attach the hand reference to the toy model
    in the test, since each new directory costs a probe in a child process)."""
    root = tmp_path_factory.mktemp("drift")
    scorer = Scorer.from_dir(toy_model_dir)
    rng = random.Random(11)
    rows, scores = [], []
    for i in range(600):
        parsed = _parsed(scorer, random_body(rng, i))
        rows.append(parsed)
        scores.append(scorer.score_row(parsed)["mql_probability"])
    frame = pd.DataFrame(rows)
    kinds = {"industry": "category", "seniority": "category", "lead_source": "category",
             "pricing_page_views": "number", "touches": "number"}  # fmt: skip
    kept = {
        "rows": len(frame),
        "score": reference(pd.Series(scores, dtype="float64"), "number"),
        "features": {n: reference(frame[n], k) | {"kind": k} for n, k in kinds.items()},
    }
    return _with_meta(toy_model_dir, root / "sampled", drift_reference=kept, version="8")


def _hand_client(make_client: ClientFactory, toy_model_dir: Path) -> Any:
    """A client serving the toy model (version 7) as if trained with the hand reference: its
    recorder started as the swap starts it."""
    client = make_client(model_uri=str(toy_model_dir))
    app = client.app
    served = app.state.holder.current
    names = served.scorer.spec.names
    recorder = app.state.drift.start(served.ref.version, {"drift_reference": HAND}, names)
    app.state.holder.install(replace(served, drift=recorder))
    client.headers["X-API-Key"] = SCORE_KEY
    return client


def _parsed(scorer: Scorer, body: dict[str, Any]) -> dict[str, Any]:
    from leadscore.features.config import FeatureConfig
    from leadscore.features.payload import payload_model

    model = payload_model(FeatureConfig.model_validate(scorer.meta["feature_config"]))
    p = model.model_validate(body)
    lead, account, contact, events = p.records()
    return dict(scorer.feature_row(lead, account, contact, events, p.as_of_or_now()))


def _lead(i: int, seniority: str | None, pricing_views: int) -> dict[str, Any]:
    """A lead whose seniority and pricing page views (one session) are known."""
    body = random_body(random.Random(i), i)
    body["contact"]["seniority"] = seniority
    body["events"] = [{
        "timestamp": iso(AS_OF - timedelta(hours=2)), "type": "web_session",
        "subtype": "pricing_page", "direction": "inbound", "page_views": 3,
        "duration_seconds": 60, "pricing_page_views": pricing_views, "demo_page_views": 0,
    }]  # fmt: skip
    return body


def _drift(client: Any) -> dict[str, Any]:
    response = client.get("/v1/model/drift", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _histograms(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in report["histograms"]}


def _score_bucket(p: float) -> int:
    edges = HAND["score"]["edges"]
    return sum(1 for e in edges if p > e)  # a value on an edge belongs to the bin below it


def test_each_lead_lands_once_in_the_buckets_worked_out_by_hand(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = _hand_client(make_client, toy_model_dir)
    leads = [_lead(1, "manager", 0), _lead(2, "manager", 1), _lead(3, "director", 2),
             _lead(4, "c_suite", 3), _lead(5, None, 0), _lead(6, "vp", 5)]  # fmt: skip
    shortcut = client.app.state.score_shortcut
    probabilities = [client.post("/v1/score", json=b).json()["mql_probability"] for b in leads[:2]]
    assert shortcut.answered == 2
    shortcut.enabled = False  # the FastAPI route
    probabilities += [client.post("/v1/score", json=b).json()["mql_probability"]
                      for b in leads[2:4]]  # fmt: skip
    batch = client.post("/v1/score/batch", json={"leads": leads[4:]}).json()
    probabilities += [r["mql_probability"] for r in batch["results"]]
    assert shortcut.answered == 2

    report = _drift(client)
    assert (report["status"], report["leads"], report["min_leads"]) == ("too_few_leads", 6, 200)
    assert "too few leads to judge" in report["detail"]
    got = _histograms(report)
    assert list(got) == [SCORE, "seniority", "pricing_page_views", "opportunity_opened"]
    # director, manager, vp, (new value: c_suite), (missing)
    assert got["seniority"]["live_count"] == [1, 2, 1, 1, 1]
    # (-inf, 0]: 0 and 0; (0, 2]: 1 and 2; (2, inf]: 3 and 5; missing: none
    assert got["pricing_page_views"]["live_count"] == [2, 2, 2, 0]
    assert got["opportunity_opened"]["live_count"] == [6, 0, 0, 0]  # no opportunity events
    expected = [0] * 5
    for p in probabilities:
        expected[_score_bucket(p)] += 1
    assert got[SCORE]["live_count"] == expected
    assert got["seniority"]["reference_share"] == [0.3, 0.4, 0.3, 0.0, 0.0]
    assert all(h["psi"] is None and h["verdict"] is None for h in got.values())
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    line = 'leadscore_drift_observations_total{bucket="1",feature="seniority",version="7"} 2.0'
    assert line in metrics
    assert "leadscore_drift_psi{" not in metrics  # nothing judged yet


def _warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "leadscore.serving.live_drift"]


def _batch(client: Any, bodies: list[dict[str, Any]]) -> None:
    response = client.post("/v1/score/batch?explain=false", json={"leads": bodies})
    assert response.status_code == 200, response.text


@pytest.mark.slow
def test_like_the_reference_is_stable_and_one_category_shifts_with_one_warning(
    make_client: ClientFactory, sampled: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="leadscore.serving.live_drift")
    like = make_client(model_uri=str(sampled))
    like.headers["X-API-Key"] = SCORE_KEY
    rng = random.Random(99)  # not the reference's leads: drawn the same way
    _batch(like, [random_body(rng, i) for i in range(300)])
    report = _drift(like)
    assert report["status"] == "judged" and report["leads"] == 300
    assert {h["name"]: h["verdict"] for h in report["histograms"]} == dict.fromkeys(
        [SCORE, *SAMPLED], "stable"
    )
    assert all(h["psi"] < 0.1 for h in report["histograms"])
    assert not _warned(caplog)

    shifted = make_client(model_uri=str(sampled))
    shifted.headers["X-API-Key"] = SCORE_KEY
    one = [random_body(rng, i) for i in range(250)]
    for body in one:
        body["account"]["industry"] = INDUSTRIES[0]
    _batch(shifted, one[:150])
    early = _drift(shifted)
    assert early["status"] == "too_few_leads" and not _warned(caplog)  # 150 < 200: not judged
    _batch(shifted, one[150:])
    report = _drift(shifted)
    got = _histograms(report)
    assert report["status"] == "judged" and got["industry"]["verdict"] == "shifted"
    assert got["industry"]["psi"] > 0.2 and got["seniority"]["psi"] < 0.1
    assert "industry" in report["detail"]
    metrics = shifted.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'leadscore_drift_psi{feature="industry",version="8"}' in metrics
    _drift(shifted)
    warned = _warned(caplog)
    assert len(warned) == 1 and warned[0].startswith("live drift: industry of model version 8")


def test_a_swap_starts_the_new_version_at_zero(
    make_client: ClientFactory, toy_model_dir: Path, sampled: Path
) -> None:
    client = _hand_client(make_client, toy_model_dir)
    for i in range(3):
        assert client.post("/v1/score", json=_lead(i, "vp", 1)).status_code == 200
    assert _drift(client)["leads"] == 3
    assert install_model(client.app, str(sampled))
    report = _drift(client)
    assert (report["model"]["version"], report["leads"]) == ("8", 0)
    assert all(sum(h["live_count"]) == 0 for h in report["histograms"])
    client.post("/v1/score", json=_lead(9, "vp", 1))
    report = _drift(client)
    assert report["leads"] == 1 and _histograms(report)["seniority"]["live_count"][3] == 1
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    # the old version's series are kept (counters that stop growing), the new one's are its own
    assert 'leadscore_drift_observations_total{bucket="2",feature="seniority",version="7"} 3.0' \
        in metrics  # fmt: skip
    assert 'leadscore_drift_observations_total{bucket="3",feature="seniority",version="8"} 1.0' \
        in metrics  # fmt: skip


@pytest.mark.filterwarnings("ignore:Clearing labels:UserWarning")  # Metrics.served, as ever
def test_counts_of_two_workers_are_summed_and_judged_together(
    make_client: ClientFactory,
    toy_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two workers, as `leadscore serve --workers 2` has them: each Metrics writes its own file
    # in the shared directory (the process identifier names the file; a worker's is its pid)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    meta = {"drift_reference": HAND}
    row = {"seniority": "manager", "pricing_page_views": 1.0, "opportunity_opened": False}
    local = values.ValueClass
    workers = []
    for name, leads in (("w1", 150), ("w2", 100)):  # neither alone is enough to judge
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda n=name: n))
        metrics = Metrics()
        drift = LiveDrift(metrics.drift, metrics.drift_counts, tmp_path)
        recorder = drift.start("7", meta)
        assert recorder is not None
        for _ in range(leads):
            recorder.record(row, 0.2)
        drift.flush()  # what each worker's monitor does every second
        workers.append((drift, recorder))
    monkeypatch.setattr(values, "ValueClass", local)  # this process: the app under test

    caplog.set_level(logging.WARNING, logger="leadscore.serving.live_drift")
    client = _hand_client(make_client, toy_model_dir)
    report = _drift(client)
    got = _histograms(report)
    assert (report["status"], report["leads"]) == ("judged", 250)
    assert got["seniority"]["live_count"] == [0, 250, 0, 0, 0]
    assert got[SCORE]["live_count"] == [0, 250, 0, 0, 0]  # 0.2 is in (0.1, 0.3]
    assert got["seniority"]["verdict"] == "shifted"  # all managers against 40 %
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'leadscore_drift_observations_total{bucket="1",feature="seniority",version="7"} 250.0' \
        in metrics  # fmt: skip
    assert 'leadscore_drift_psi{feature="seniority",version="7"}' in metrics
    for drift, recorder in workers:  # the other workers see it too, but the line is written once
        drift.check(recorder)
    assert len([m for m in _warned(caplog) if "seniority" in m]) == 1


def test_the_drift_route_needs_an_admin_key(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir))
    assert client.get("/v1/model/drift").status_code == 401
    assert client.get("/v1/model/drift", headers={"X-API-Key": SCORE_KEY}).status_code == 403
    route = client.get("/openapi.json").json()["paths"]["/v1/model/drift"]["get"]
    ok = route["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ModelDrift"}
    assert {"401", "403", "503"} <= set(route["responses"])


def test_a_model_without_a_reference_serves_as_before_and_says_so(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir))
    client.headers["X-API-Key"] = SCORE_KEY
    assert client.post("/v1/score", json=_lead(1, "vp", 1)).status_code == 200
    report = _drift(client)
    assert (report["status"], report["leads"], report["histograms"]) == ("no_reference", 0, [])
    assert "has no drift reference" in report["detail"]
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert "leadscore_drift_observations_total{" not in metrics


def test_a_reference_that_cannot_be_read_is_left_out_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    drift = LiveDrift(metrics.drift, metrics.drift_counts)
    names = ["seniority", "pricing_page_views", "opportunity_opened"]
    seniority = HAND["features"]["seniority"]
    unknown = {"drift_reference": HAND | {"features": {"no_such": seniority}}}
    short = {"drift_reference": HAND | {"score": {"kind": "number", "edges": [0.5], "counts": [1]}}}
    for meta, says in (
        (unknown, "'no_such' is not a feature of the model"),
        (short, "drift_reference.score.counts: expected 3 whole numbers"),
    ):
        assert drift.start("7", meta, names) is None
        assert says in _warned(caplog)[-1]
        report = drift.report(None, meta, names)
        assert report.status == "no_reference" and says in report.detail
