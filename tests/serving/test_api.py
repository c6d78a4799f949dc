"""The scoring API on a toy model: responses, reasons, batch, OpenAPI, metrics, readiness."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadscore.features.config import load_feature_config
from leadscore.features.payload import payload_model
from leadscore.serving.runtime import Scorer
from tests.serving.conftest import ADMIN_KEY, ClientFactory, TestClient
from tests.serving.leads import example, random_body, relabelled


def _score(client: TestClient, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = client.post("/v1/score", json=body, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_score_answers_probability_tier_reasons_criteria_and_action(toy_client: TestClient) -> None:
    data = _score(toy_client, example())
    assert data["lead_id"] == "lead-example-001"
    assert data["as_of"] == "2026-03-31T09:00:00Z"
    assert data["lead_age_days"] == 30.0 and data["stale"] is False
    assert data["model"] == {"name": "toy-scoring", "version": "7", "alias": "champion"}
    assert 0 <= data["mql_probability"] <= 1
    assert data["is_mql"] == (data["mql_probability"] >= data["threshold"])
    assert data["threshold"] == 0.45  # inbound_marketing's own threshold
    assert data["tier"] == ("A" if data["is_mql"] else data["tier"])
    reasons = data["reasons"]
    assert reasons["positive"] and all(r["points"] > 0 for r in reasons["positive"])
    assert all(r["points"] < 0 for r in reasons["negative"])
    assert len(reasons["positive"]) <= 3 and len(reasons["negative"]) <= 3
    points = [r["points"] for r in reasons["positive"]]
    assert points == sorted(points, reverse=True)
    for r in reasons["positive"] + reasons["negative"]:
        assert set(r) == {"feature", "label", "group", "value", "points", "sentence"}
        assert "_" not in r["sentence"] and "_" not in r["label"]
        assert abs(r["points"]) <= 1
    groups = data["score_by_group"]
    assert set(groups) == {"fit", "engagement", "sales"}
    p0 = reasons["base_probability"]
    assert sum(groups.values()) == pytest.approx(data["mql_probability"] - p0, abs=1e-9)
    criteria = data["sql_criteria"]
    assert criteria["version"] == "2024.1" and criteria["verdict"] == "sql_ready"
    assert {c["id"] for c in criteria["criteria"]} >= {"target_region", "pricing_interest"}
    assert all({"id", "status", "value", "sentence"} <= set(c) for c in criteria["criteria"])
    assert data["recommended_action"]["action"] == "route_to_sales"
    assert data["unknown_categories"] == []
    assert data["scored_at"].endswith("Z")


def test_explain_false_skips_reasons(toy_client: TestClient) -> None:
    full = _score(toy_client, example())
    bare = _score(toy_client, example(), explain="false")
    assert bare["reasons"] is None and bare["score_by_group"] is None
    assert bare["mql_probability"] == full["mql_probability"]


def test_api_equals_the_scorer_and_points_add_up(
    toy_client: TestClient, toy_model_dir: Path
) -> None:
    scorer = Scorer.from_dir(toy_model_dir)
    model = payload_model(load_feature_config())
    rng = random.Random(3)
    for i in range(25):
        body = random_body(rng, 10_000 + i)
        data = _score(toy_client, body, explain="true")
        payload = model.model_validate(body)
        row = scorer.feature_row(*payload.records(), payload.as_of_or_now())
        # one booster call with reasons: equal to the plain prediction within 1e-12
        plain = scorer.score_row(row)["mql_probability"]
        assert data["mql_probability"] == pytest.approx(plain, rel=0, abs=1e-12)
        contrib, base = scorer.contributions(row)
        raw = scorer.booster.predict(scorer.encoding.row(row).reshape(1, -1), raw_score=True)
        assert contrib.sum() + base == pytest.approx(float(raw[0]), abs=1e-9)
        p0 = data["reasons"]["base_probability"]
        assert p0 == scorer.base_probability
        total = sum(data["score_by_group"].values())
        assert total == pytest.approx(data["mql_probability"] - p0, abs=1e-9)


def test_invariance_ids_event_order_and_company_name(toy_client: TestClient) -> None:
    rng = random.Random(8)
    for body in [example()] + [random_body(rng, 20_000 + i) for i in range(10)]:
        before, after = _score(toy_client, body), _score(toy_client, relabelled(body))
        assert after["lead_id"] == "renamed-lead"
        for key in ("mql_probability", "tier", "reasons", "score_by_group", "sql_criteria"):
            assert after[key] == before[key], key


def test_unknown_category_is_scored_as_unseen_and_listed(toy_client: TestClient) -> None:
    body = example()
    body["account"]["industry"] = "aerospace"
    body["contact"]["seniority"] = "intern"
    data = _score(toy_client, body)
    assert {(u["feature"], u["field"], u["value"]) for u in data["unknown_categories"]} == {
        ("industry", "account.industry", "aerospace"),
        ("seniority", "contact.seniority", "intern"),
    }
    criteria = {c["id"]: c for c in data["sql_criteria"]["criteria"]}
    assert criteria["target_industry"]["status"] == "fail"
    assert criteria["decision_authority"]["status"] == "unknown"


def test_stale_and_time_zones(toy_client: TestClient) -> None:
    body = example()
    body["as_of"] = "2026-09-30T09:00:00Z"
    assert _score(toy_client, body)["stale"] is True
    utc, shifted = example(), example()
    shifted["as_of"] = "2026-03-31T11:00:00+02:00"
    assert _score(toy_client, shifted)["mql_probability"] == _score(toy_client, utc)[
        "mql_probability"
    ]


def test_batch_scores_in_order_without_reasons_by_default(toy_client: TestClient) -> None:
    rng = random.Random(4)
    bodies = [random_body(rng, 30_000 + i) for i in range(6)]
    response = toy_client.post("/v1/score/batch", json={"leads": bodies})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["count"] == 6 and data["model"]["version"] == "7"
    assert [r["lead_id"] for r in data["results"]] == [b["lead"]["lead_id"] for b in bodies]
    assert all(r["reasons"] is None for r in data["results"])
    singles = [_score(toy_client, b)["mql_probability"] for b in bodies]
    batch = [r["mql_probability"] for r in data["results"]]
    assert batch == pytest.approx(singles, rel=0, abs=1e-12)  # singles: reasons, one booster call
    explained = toy_client.post("/v1/score/batch?explain=true", json={"leads": bodies[:2]})
    assert all(r["reasons"] is not None for r in explained.json()["results"])
    empty = toy_client.post("/v1/score/batch", json={"leads": []})
    assert empty.status_code == 200 and empty.json()["count"] == 0


def test_model_info(toy_client: TestClient) -> None:
    info = toy_client.get("/v1/model").json()
    assert (info["name"], info["version"], info["alias"]) == ("toy-scoring", "7", "champion")
    assert info["trained_at"] == "2024-03-01T00:00:00+00:00"
    assert info["data_window"] == {"created_from": "2024-01-01", "created_to": "2024-02-29"}
    assert info["thresholds"]["policy"]["kind"] == "capacity"
    assert info["thresholds"]["by_source"] == {"inbound_marketing": 0.45}
    assert info["test_metrics"]["test_roc_auc"] == 0.81
    features = {f["name"]: f for f in info["features"]}
    assert features["pricing_page_views"]["label"] == "Pricing page views"
    assert features["pricing_page_views"]["monotone"] == 1
    assert features["process_maturity_band"]["description"].startswith("Maturity")
    assert info["sql_criteria"]["version"] == "2024.1"


def test_openapi_examples_are_complete_and_valid(toy_client: TestClient) -> None:
    doc = toy_client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "process_maturity_band" in schemas["Account"]["properties"]  # custom field
    assert schemas["Event"]["properties"]["page_views"]["anyOf"][0]["minimum"] == 0
    assert schemas["LeadPayload"]["additionalProperties"] is False
    score_body = doc["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    batch_body = doc["paths"]["/v1/score/batch"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert score_body["schema"] == {"$ref": "#/components/schemas/LeadPayload"}
    assert len(score_body["example"]["events"]) >= 20
    assert _score(toy_client, score_body["example"])["lead_id"] == "lead-example-001"
    batch = toy_client.post("/v1/score/batch", json=batch_body["example"])
    assert batch.status_code == 200 and batch.json()["count"] == 2
    ok = doc["paths"]["/v1/score"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["reasons"]["positive"]
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert toy_client.get("/docs").status_code == 200


def test_metrics_by_route_status_tier_and_model(toy_client: TestClient) -> None:
    _score(toy_client, example())
    toy_client.post("/v1/score", json={"lead": {}})
    text = toy_client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'leadscore_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    assert 'leadscore_requests_total{method="POST",route="/v1/score",status="422"} 1.0' in text
    assert 'leadscore_request_duration_seconds_count{method="POST",route="/v1/score",status="200"}' in text  # noqa: E501
    assert 'leadscore_scores_total{tier="' in text
    assert 'leadscore_model_info{alias="champion",name="toy-scoring",version="7"} 1.0' in text
    toy_client.get("/no/such/path")
    text = toy_client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert 'route="unmatched",status="404"' in text


def _corrupt(model_dir: Path, tmp_path: Path, edit: Any) -> Path:
    target = tmp_path / "corrupt"
    target.mkdir()
    for name in ("model.lgb", "scorer.json"):
        (target / name).write_bytes((model_dir / name).read_bytes())
    data = json.loads((target / "scorer.json").read_text())
    edit(data)
    (target / "scorer.json").write_text(json.dumps(data))
    return target


def _kind(data: dict[str, Any]) -> None:
    data["spec"][1]["kind"] = "median_of"


def _template(data: dict[str, Any]) -> None:
    data["spec"][1]["template"] = "Works in {value} since {year}"


def _format(data: dict[str, Any]) -> None:
    data["format_version"] = 99


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_kind, "unknown kind 'median_of'"),
        (_template, "template 'Works in {value} since {year}' fails"),
        (_format, "model format 99"),
    ],
)
def test_a_model_the_code_cannot_serve_is_refused_and_reported(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    client = make_client(model_uri=str(_corrupt(toy_model_dir, tmp_path, edit)))
    ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY})  # the reason in full
    assert ready.status_code == 503
    assert ready.json()["ready"] is False and message in ready.json()["error"]
    response = client.post("/v1/score", json=example(), headers={"X-API-Key": "score-key-1"})
    assert response.status_code == 503
    assert message in response.json()["detail"]


def test_no_model_at_the_uri(make_client: ClientFactory, tmp_path: Path) -> None:
    client = make_client(model_uri=str(tmp_path / "nothing-here"), tracking_uri=None)
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json() == {"status": "alive"}
    info = client.get("/v1/model", headers={"X-API-Key": "score-key-1"})
    assert info.status_code == 503


def test_criteria_file_setting(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(
        'version: "team-7"\nowner: me\ncriteria:\n  - id: in_uk\n    description: UK only.\n'
        "    group: fit\n    field: account.region\n    operator: in\n    values: [UK]\n"
        "    required: true\n"
    )
    client = make_client(model_uri=str(toy_model_dir), criteria_file=criteria)
    client.headers["X-API-Key"] = "score-key-1"
    data = _score(client, example())
    assert data["sql_criteria"]["version"] == "team-7"
    assert [c["id"] for c in data["sql_criteria"]["criteria"]] == ["in_uk"]

    criteria.write_text(criteria.read_text().replace("account.region", "account.regoin"))
    broken = make_client(model_uri=str(toy_model_dir), criteria_file=criteria)
    ready = broken.get("/readyz", headers={"X-API-Key": ADMIN_KEY}).json()
    assert "did you mean 'account.region'" in ready["error"]


def test_recommended_action_through_the_api(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir))
    client.headers["X-API-Key"] = "score-key-1"
    ready = example()
    assert _score(client, ready)["recommended_action"]["action"] == "route_to_sales"

    unknown_budget = example()
    del unknown_budget["account"]["revenue_band"]
    data = _score(client, unknown_budget)
    assert data["is_mql"] and data["sql_criteria"]["verdict"] == "needs_qualification"
    assert data["recommended_action"] == {
        "action": "qualify",
        "reason": "An MQL with required criteria still unknown: budget_capacity",
        "criteria": ["budget_capacity"],
    }

    raised = json.loads(json.dumps(unknown_budget))
    raised["events"].append({"timestamp": "2026-03-30T10:00:00Z", "type": "demo_request"})
    action = _score(client, raised)["recommended_action"]
    assert action["action"] == "route_to_sales"
    assert action["reason"].startswith("Raised a hand (demo request on 2026-03-30)")

    abroad = json.loads(json.dumps(raised))
    abroad["account"]["region"] = "DE"
    action = _score(client, abroad)["recommended_action"]
    assert action["action"] == "nurture" and action["criteria"] == ["target_region"]
    assert "target_region: Region DE is not one of US, UK" in action["reason"]


def test_reasons_count_setting(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), top_reasons=1)
    client.headers["X-API-Key"] = "score-key-1"
    reasons = _score(client, example())["reasons"]
    assert len(reasons["positive"]) == 1 and len(reasons["negative"]) <= 1


def test_scores_are_finite_json_for_sparse_leads(toy_client: TestClient) -> None:
    body = {"lead": {"lead_id": "bare", "created_at": "2026-03-01T00:00:00Z"},
            "as_of": "2026-03-02T00:00:00Z"}  # fmt: skip
    data = _score(toy_client, body)
    assert np.isfinite(data["mql_probability"])
    everything = data["reasons"]["positive"] + data["reasons"]["negative"]
    assert all("_" not in r["sentence"] for r in everything)
