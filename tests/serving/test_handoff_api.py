"""The handoff loop through the API: scores recorded, the queue, feedback, outcomes, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import ADMIN_KEY, SCORE_KEY, ClientFactory, TestClient
from tests.serving.leads import example

FEEDBACK_KEY = "feedback-key-1"
KEYS = f"{SCORE_KEY}:score,{FEEDBACK_KEY}:feedback,{ADMIN_KEY}:admin"


def _lead(lead_id: str, **changes: Any) -> dict[str, Any]:
    body = example()
    body["lead"]["lead_id"] = lead_id
    body["lead"].update(changes)
    return body


def _flush(client: TestClient) -> None:
    recorder = client.app.state.loop.recorder  # type: ignore[attr-defined]
    assert recorder.flush(10)


@pytest.fixture
def loop_client(make_client: ClientFactory, toy_model_dir: Path) -> TestClient:
    """A client serving the toy model, recording handoffs, with score and feedback keys."""
    return make_client(model_uri=str(toy_model_dir), api_keys=KEYS)


def _score(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert r.status_code == 200, r.text
    return r.json()


def _fb(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    headers = {"X-API-Key": FEEDBACK_KEY} | kw.pop("headers", {})
    return client.request(method, path, headers=headers, **kw)


def test_a_routed_score_becomes_a_handoff_with_the_score_as_shown(loop_client: TestClient) -> None:
    shown = _score(loop_client, _lead("L-1", owner="rep_ana"))
    assert shown["recommended_action"]["action"] == "route_to_sales"
    _score(loop_client, _lead("L-1", owner="rep_ana"))  # a re-score: same handoff
    _flush(loop_client)
    page = _fb(loop_client, "GET", "/v1/handoffs").json()
    assert page["total"] == 1
    handoff = page["items"][0]
    assert handoff["lead_id"] == "L-1" and handoff["owner"] == "rep_ana"
    assert handoff["score_count"] == 2 and handoff["status"] == "waiting"
    assert handoff["probability"] == pytest.approx(shown["mql_probability"])
    assert handoff["shown"]["reasons"] == shown["reasons"]
    assert handoff["shown"]["sql_criteria"] == shown["sql_criteria"]
    assert handoff["handed_off_at"] == shown["as_of"]
    assert handoff["due_at"] is not None  # route_to_sales has an SLA target
    assert handoff["criteria_version"] == shown["sql_criteria"]["version"]


def test_nothing_is_recorded_when_recording_is_off(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, record="none")
    _score(client, _lead("L-1"))
    assert client.app.state.loop.recorder is None  # type: ignore[attr-defined]
    assert _fb(client, "GET", "/v1/handoffs").json()["total"] == 0


def test_feedback_is_stored_and_an_idempotent_retry_is_replayed(loop_client: TestClient) -> None:
    _score(loop_client, _lead("L-1"))
    _flush(loop_client)
    body = {"disposition": "rejected", "reason": "no_budget", "rep": "rep_ana", "note": "Q3"}
    first = _fb(loop_client, "POST", "/v1/leads/L-1/feedback", json=body,
                headers={"Idempotency-Key": "abc"})  # fmt: skip
    assert first.status_code == 201, first.text
    again = _fb(loop_client, "POST", "/v1/leads/L-1/feedback", json=body,
                headers={"Idempotency-Key": "abc"})  # fmt: skip
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    records = _fb(loop_client, "GET", "/v1/leads/L-1/feedback").json()
    assert [r["id"] for r in records] == [first.json()["id"]]
    changed = _fb(loop_client, "POST", "/v1/leads/L-1/feedback", headers={"Idempotency-Key": "abc"},
                  json=body | {"reason": "no_need"})  # fmt: skip
    assert changed.status_code == 422 and "different request" in changed.text
    queue = _fb(loop_client, "GET", "/v1/handoffs", params={"status": "rejected"}).json()
    assert queue["items"][0]["disposition_reason"] == "no_budget"


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"disposition": "rejected"}, ["body"], "needs a reason"),
        ({"disposition": "rejected", "reason": "too_busy"}, ["body", "reason"],
         "expected one of: unable_to_reach, bad_data"),
        ({"disposition": "maybe"}, ["body", "disposition"], "'accepted' or 'rejected'"),
        ({"disposition": "accepted", "colour": "red"}, ["body", "colour"], "Extra inputs"),
        ({"disposition": "accepted", "decided_at": "2999-01-01T00:00:00Z"},
         ["body", "decided_at"], "in the future"),
        ({"disposition": "accepted", "first_touch_at": "2026-03-02T12:00:00Z",
          "decided_at": "2026-03-01T12:00:00Z"}, ["body"], "after decided_at"),
        ({"disposition": "accepted", "note": "x" * 5000}, ["body", "note"], "at most 4000"),
    ],
)  # fmt: skip
def test_bad_feedback_is_a_422_naming_the_field(
    loop_client: TestClient, body: dict[str, Any], where: list[str], says: str
) -> None:
    _score(loop_client, _lead("L-1"))
    _flush(loop_client)
    r = _fb(loop_client, "POST", "/v1/leads/L-1/feedback", json=body)
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]
    assert any(p["loc"] == where and says in p["msg"] for p in problems), problems


def test_malformed_json_and_unknown_leads(loop_client: TestClient) -> None:
    r = _fb(loop_client, "POST", "/v1/leads/L-1/feedback", content=b"{nope",
            headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422
    r = _fb(loop_client, "POST", "/v1/leads/nobody/feedback", json={"disposition": "accepted"})
    assert r.status_code == 404 and "'nobody' has no handoff record" in r.json()["detail"]
    assert _fb(loop_client, "GET", "/v1/leads/nobody/feedback").status_code == 404
    r = _fb(loop_client, "POST", "/v1/leads/nobody/outcome", json={"won_at": "2026-01-01"})
    assert r.status_code == 404
    assert _fb(loop_client, "GET", "/v1/handoffs", params={"status": "lost"}).status_code == 422
    assert _fb(loop_client, "GET", "/v1/handoffs", params={"limit": 0}).status_code == 422


def test_scopes(loop_client: TestClient) -> None:
    r = loop_client.get("/v1/handoffs", headers={"X-API-Key": SCORE_KEY})
    assert r.status_code == 403 and "'feedback' scope" in r.text
    assert loop_client.get("/v1/handoffs").status_code == 401


def test_outcomes_and_the_store_gauges(loop_client: TestClient) -> None:
    _score(loop_client, _lead("L-1"))
    _score(loop_client, _lead("L-2"))
    _flush(loop_client)
    r = _fb(loop_client, "POST", "/v1/leads/L-1/outcome",
            json={"sql_at": "2026-01-05", "won_at": "2026-02-01T10:00:00Z"})  # fmt: skip
    assert r.status_code == 200 and r.json()["won_at"] == "2026-02-01T10:00:00Z"
    r = _fb(loop_client, "POST", "/v1/leads/L-1/outcome",
            json={"won_at": "2026-02-01", "lost_at": "2026-02-02"})  # fmt: skip
    assert r.status_code == 422 and "not both" in r.text
    _fb(loop_client, "POST", "/v1/leads/L-1/feedback", json={"disposition": "accepted"})
    text = loop_client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert "leadscore_handoffs_waiting 1.0" in text
    assert 'leadscore_handoff_acceptance_rate{tier="' in text


def test_a_store_that_cannot_open_leaves_scoring_up(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=KEYS,
                         store_url=f"sqlite:///{tmp_path}/no/such/dir/store.db")  # fmt: skip
    _score(client, _lead("L-1"))
    r = _fb(client, "GET", "/v1/handoffs")
    assert r.status_code == 503 and "handoff store is not available" in r.json()["detail"]
