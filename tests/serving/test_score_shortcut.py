"""The `POST /v1/score` shortcut answers exactly as the FastAPI route does.

Every request is sent twice to the same app: once with the shortcut on, once with it off (the
route, its dependencies and exception handlers). The answers must be the same bytes (the
`scored_at` moment aside) with the same status and content type. The usual requests must be
answered by the shortcut; every unusual or bad one must go the long way.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import ADMIN_KEY, SCORE_KEY, ClientFactory
from tests.serving.leads import random_body

SCORED_AT = re.compile(rb'"scored_at":"[^"]+"')
JSON = {"Content-Type": "application/json", "X-API-Key": SCORE_KEY}


def _post(
    client: Any, query: str, body: bytes, headers: Mapping[str, str], *, fast: bool
) -> httpx.Response:
    client.app.state.score_shortcut.enabled = fast
    try:
        return client.post(f"/v1/score{query}", content=body, headers=dict(headers))
    finally:
        client.app.state.score_shortcut.enabled = True


def _both(
    client: Any, query: str, body: bytes, headers: Mapping[str, str] = JSON
) -> tuple[httpx.Response, bool]:
    """The shortcut's answer (checked equal to the route's) and whether it answered itself."""
    shortcut = client.app.state.score_shortcut
    before = shortcut.answered
    fast = _post(client, query, body, headers, fast=True)
    answered = shortcut.answered > before
    slow = _post(client, query, body, headers, fast=False)
    assert shortcut.answered == before + answered  # the long way never counts
    assert (fast.status_code, fast.headers.get("content-type")) == (
        slow.status_code, slow.headers.get("content-type")
    )  # fmt: skip
    assert SCORED_AT.sub(b"", fast.content) == SCORED_AT.sub(b"", slow.content)
    assert fast.headers["content-length"] == str(len(fast.content))
    return fast, answered


def _body(i: int) -> bytes:
    return json.dumps(random_body(random.Random(i), i)).encode()


@pytest.fixture
def client(make_client: ClientFactory, toy_model_dir: Path) -> Any:
    return make_client(model_uri=str(toy_model_dir))


QUERIES = ["", "?explain=true", "?explain=false", "?explain=0&next_steps=1", "?next_steps=true"]


@pytest.mark.parametrize("query", QUERIES)
def test_usual_requests_are_answered_by_the_shortcut_as_the_route_answers(
    client: Any, query: str
) -> None:
    for i in range(8):
        response, answered = _both(client, query, _body(i))
        assert response.status_code == 200
        assert answered
        assert response.json()["lead_id"] == f"lead-{i:05d}"
        assert (response.json()["reasons"] is None) == ("explain=false" in query or "0" in query)


@pytest.mark.parametrize(
    ("query", "body", "headers", "status"),
    [
        ("", _body(1), {"Content-Type": "application/json"}, 401),
        ("", _body(1), {"Content-Type": "application/json", "X-API-Key": "nope"}, 401),
        ("", _body(1), {"Content-Type": "application/json", "X-API-Key": ADMIN_KEY}, 403),
        ("", _body(1), {"Content-Type": "text/plain", "X-API-Key": SCORE_KEY}, 415),
        ("", _body(1), {"X-API-Key": SCORE_KEY}, 415),
        ("?explain=maybe", _body(1), JSON, 422),
        ("?explain=yes", _body(1), JSON, 200),  # FastAPI's other spellings of a boolean
        ("?explain=true&explain=false", _body(1), JSON, 200),
        ("?utm=1", _body(1), JSON, 200),  # an unknown parameter is ignored by the route
        ("", b"{not json", JSON, 422),
        ("", b"[]", JSON, 422),
        ("", json.dumps({"lead": {"lead_id": "x"}}).encode(), JSON, 422),
        ("", _body(1).replace(b'"as_of": "2024-03-01', b'"as_of": "2023-03-01'), JSON, 422),
        ("", b"", JSON, 422),
    ],
    ids=["no-key", "unknown-key", "no-scope", "text", "no-type", "bad-flag", "yes-flag",
         "repeated-flag", "unknown-param", "bad-json", "not-object", "missing", "future", "empty"],
)  # fmt: skip
def test_unusual_or_bad_requests_go_the_long_way_with_the_same_answer(
    client: Any, query: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response, answered = _both(client, query, body, headers)
    assert response.status_code == status
    assert not answered


def test_a_body_over_the_inline_size_goes_the_long_way(client: Any) -> None:
    body = random_body(random.Random(3), 3)
    event = {"timestamp": body["lead"]["created_at"], "type": "email", "subtype": "open",
             "direction": "inbound"}  # fmt: skip
    body["events"] = [event] * 120  # about 100 bytes each: over 8 KiB
    raw = json.dumps(body).encode()
    assert len(raw) > 8 * 1024
    response, answered = _both(client, "", raw)
    assert response.status_code == 200
    assert not answered


def test_without_a_model_the_route_answers_503(make_client: ClientFactory, tmp_path: Path) -> None:
    client: Any = make_client(model_uri=str(tmp_path / "no-model-here"))
    response, answered = _both(client, "", _body(1))
    assert response.status_code == 503
    assert not answered


def test_shortcut_answers_are_counted_under_the_route(client: Any) -> None:
    client.app.state.score_shortcut.enabled = True
    for i in range(5):
        assert client.post("/v1/score", content=_body(i), headers=JSON).status_code == 200
    assert client.app.state.score_shortcut.answered == 5
    metrics = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    ok = 'leadscore_requests_total{method="POST",route="/v1/score",status="200"} 5.0'
    assert ok in metrics.splitlines()
    tiers = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
             if line.startswith("leadscore_scores_total{")]  # fmt: skip
    assert sum(tiers) == 5
