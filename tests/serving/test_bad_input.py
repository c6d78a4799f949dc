"""Bad input: 422 with field-level messages, 413 over the limits, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.serving.conftest import ClientFactory, TestClient
from tests.serving.leads import example

JSON = {"Content-Type": "application/json"}  # raw bodies are sent as JSON (415 otherwise)

Edit = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


# (case, edit, expected loc, expected message fragment)
CASES: list[tuple[str, Edit, list[Any], str]] = [
    ("wrong type", _set("events.0.page_views", "lots"), ["body", "events", 0, "page_views"],
     "valid integer"),
    ("wrong type (text field)", _set("account.industry", ["a", "list"]),
     ["body", "account", "industry"], "valid string"),
    ("unknown top-level field", _set("score_me_fast", True), ["body", "score_me_fast"],
     "Extra inputs are not permitted"),
    ("negative count", _set("events.1.page_views", -3), ["body", "events", 1, "page_views"],
     "greater than or equal to 0"),
    ("fractional count", _set("events.1.duration_seconds", 2.5),
     ["body", "events", 1, "duration_seconds"], "fractional part"),
    ("NaN", _set("events.20.value", float("nan")), ["body", "events", 20, "value"],
     "finite number"),
    ("infinity", _set("events.20.value", float("inf")), ["body", "events", 20, "value"],
     "finite number"),
    ("unparseable timestamp", _set("lead.created_at", "last tuesday"),
     ["body", "lead", "created_at"], "valid datetime"),
    ("unparseable as_of", _set("as_of", "2026-13-45"), ["body", "as_of"], "valid datetime"),
    ("event after as_of", _set("as_of", "2026-03-20T00:00:00Z"),
     ["body", "events", 19, "timestamp"], "is after as_of"),
    ("event of another lead", _set("events.3.lead_id", "lead-someone-else"),
     ["body", "events", 3, "lead_id"], "another lead's event"),
    ("missing required field", lambda b: b["lead"].pop("created_at"),
     ["body", "lead", "created_at"], "Field required"),
    ("event without a type", lambda b: b["events"][2].pop("type"),
     ["body", "events", 2, "type"], "Field required"),
    ("lead created after as_of", lambda b: b.update(as_of="2026-02-01T00:00:00Z", events=[]),
     ["body", "as_of"], "a lead cannot be scored before it exists"),
    ("timestamp out of range in UTC", _set("events.0.timestamp", "0001-01-01T00:00:00+05:00"),
     ["body", "events", 0, "timestamp"], "outside years 1-9999 once converted to UTC"),
    ("as_of out of range in UTC", _set("as_of", "0001-01-01T01:00:00+05:00"), ["body", "as_of"],
     "outside years 1-9999 once converted to UTC"),
    ("lead created in the future", lambda b: (b.pop("as_of"), b.update(events=[]),
                                              b["lead"].update(created_at="2999-01-01")),
     ["body", "lead", "created_at"], "is in the future"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "loc", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_class_of_bad_input_is_422_with_its_field(
    toy_client: TestClient, case: str, edit: Edit, loc: list[Any], message: str
) -> None:
    body = example()
    edit(body)
    # NaN/Infinity are not JSON; a client that sends them gets them named, not a parse error
    response = toy_client.post(
        "/v1/score", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    hits = [d for d in detail if d["loc"] == loc]
    assert hits, f"{case}: no error at {loc}: {detail}"
    assert message in hits[0]["msg"], hits[0]
    assert all(set(d) == {"loc", "msg", "type"} for d in detail)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[1, 2]", "valid dictionary"),
        (b'"a string"', "valid dictionary"),
        (b'{"account": {}}', "Field required"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_malformed_bodies(toy_client: TestClient, raw: bytes, message: str) -> None:
    response = toy_client.post("/v1/score", content=raw, headers=JSON)
    assert response.status_code == 422
    assert message in json.dumps(response.json()["detail"])


def test_a_bad_query_parameter(toy_client: TestClient) -> None:
    response = toy_client.post("/v1/score", params={"explain": "perhaps"}, json=example())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "explain"]


def test_one_bad_lead_makes_the_batch_422_listing_each(toy_client: TestClient) -> None:
    good, bad_time, bad_count = example(), example(), example()
    bad_time["events"][4]["timestamp"] = "soon"
    bad_count["events"][1]["pricing_page_views"] = -1
    response = toy_client.post("/v1/score/batch", json={"leads": [good, bad_time, bad_count]})
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert locs == [
        ["body", "leads", 1, "events", 4, "timestamp"],
        ["body", "leads", 2, "events", 1, "pricing_page_views"],
    ]


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"leads": [], "mode": "fast"}, ["body", "mode"], "Extra inputs"),
        ({}, ["body", "leads"], "Field required"),
        ({"leads": {"a": 1}}, ["body", "leads"], "valid list"),
        ([], ["body"], "expected an object"),
        ({"leads": [17]}, ["body", "leads", 0], "valid dictionary"),
    ],
)
def test_bad_batch_envelopes(
    toy_client: TestClient, body: Any, loc: list[Any], message: str
) -> None:
    response = toy_client.post("/v1/score/batch", json=body)
    assert response.status_code == 422
    hit = next(d for d in response.json()["detail"] if d["loc"] == loc)
    assert message in hit["msg"]


def test_too_many_leads_is_413(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), max_batch=2)
    client.headers["X-API-Key"] = "score-key-1"
    response = client.post("/v1/score/batch", json={"leads": [example()] * 3})
    assert response.status_code == 413
    assert response.json()["detail"] == "3 leads in one request; at most 2"
    assert client.post("/v1/score/batch", json={"leads": [example()] * 2}).status_code == 200


def test_oversize_bodies_are_413(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), max_body_bytes=4096)
    client.headers["X-API-Key"] = "score-key-1"
    big = example()
    big["events"] *= 5
    declared = client.post("/v1/score", json=big)
    assert declared.status_code == 413
    assert declared.json()["detail"] == "request body over 4,096 bytes"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        text = json.dumps(big).encode()
        for start in range(0, len(text), 1000):
            yield text[start : start + 1000]

    streamed = client.post("/v1/score", content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert client.post("/v1/score", json=example() | {"events": []}).status_code == 200


ODD_TEXT = [
    "2026-03-05", "2026-03-05T10:00:00Z", "1900-01-01", "9999-12-31T23:59:59", "0001-01-01",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "", "  ", "touch", "web_session",
    "NaN", "-1", "1e400",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(ODD_TEXT),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


BODY_PATHS = [p for p in _paths(example()) if p]


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.tuples(st.sampled_from(BODY_PATHS), JSON_VALUES), min_size=1, max_size=4),
    st.booleans(),
)
def test_no_malformed_request_gets_a_500(
    toy_client: TestClient, edits: list[tuple[tuple[Any, ...], Any]], drop: bool
) -> None:
    body = example()
    for path, value in edits:
        node: Any = body
        try:
            for key in path[:-1]:
                node = node[key]
            if drop and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit changed the shape
    response = toy_client.post("/v1/score", content=json.dumps(body), headers=JSON)
    assert response.status_code in (200, 422), (response.status_code, response.text, body)
    if response.status_code == 422:
        assert response.json()["detail"]


# ---------------------------------------------------------------------------------------------
# strict input (issue 14): booleans are not numbers, numbers are not timestamps, bounded sizes


@pytest.mark.parametrize(
    ("path", "value", "loc", "message"),
    [
        ("events.0.page_views", True, ["body", "events", 0, "page_views"],
         "expected a number, got a boolean"),
        ("events.20.value", False, ["body", "events", 20, "value"],
         "expected a number, got a boolean"),
        ("lead.created_at", 1772355600, ["body", "lead", "created_at"],
         "expected an ISO-8601 date or timestamp string, got a number"),
        ("as_of", 1.7e9, ["body", "as_of"],
         "expected an ISO-8601 date or timestamp string, got a number"),
        ("events.3.timestamp", "1772355600", ["body", "events", 3, "timestamp"],
         "expected an ISO-8601 date or timestamp string"),
    ],
)  # fmt: skip
def test_booleans_are_not_numbers_and_numbers_not_timestamps(
    toy_client: TestClient, path: str, value: Any, loc: list[Any], message: str
) -> None:
    body = example()
    _set(path, value)(body)
    response = toy_client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    ((problem),) = response.json()["detail"]
    assert problem["loc"] == loc and message in problem["msg"]


def test_crm_spellings_that_are_read(toy_client: TestClient) -> None:
    body = example()
    body["lead"] |= {"budget_confirmed": "TRUE", "budget_amount": "12500.50"}
    body["events"][1]["page_views"] = "4"
    assert toy_client.post("/v1/score", json=body).status_code == 200
    body["lead"]["budget_confirmed"] = 1
    response = toy_client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "lead", "budget_confirmed"]


def test_a_megabyte_value_is_refused_and_not_echoed(toy_client: TestClient) -> None:
    for entity, key in (("account", "industry"), ("account", "crm_segment")):
        body = example()
        body[entity][key] = "x" * 1_000_000
        response = toy_client.post("/v1/score", json=body)
        assert response.status_code == 422
        ((problem),) = response.json()["detail"]
        assert problem["loc"] == ["body", entity, key]
        assert problem["msg"] == "String should have at most 1000 characters (got 1000000)"
        assert len(response.content) < 1_000


def test_the_event_limit_is_named_by_parse_lead(toy_client: TestClient) -> None:
    from leadscore.features.config import load_feature_config
    from leadscore.features.payload import payload_model
    from leadscore.serving.api.bodies import BodyError, parse_lead

    model, body = payload_model(load_feature_config()), example()
    assert len(parse_lead(model, body, max_events=21).events) == 21
    with pytest.raises(BodyError) as info:
        parse_lead(model, body, ("body", "leads", 4), max_events=20)
    assert info.value.errors == [
        {"loc": ["body", "leads", 4, "events"], "type": "too_many_events",
         "msg": "21 events; at most 20 per lead (LEADSCORE_MAX_EVENTS)"}
    ]  # fmt: skip


def test_the_event_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from leadscore.serving.settings import Settings

    assert Settings().max_events == 5000
    monkeypatch.setenv("LEADSCORE_MAX_EVENTS", "12")
    assert Settings().max_events == 12
    with pytest.raises(ValidationError):
        Settings(max_events=0)


def test_the_event_limit_at_the_api(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), max_events=21)
    client.headers["X-API-Key"] = "score-key-1"
    assert len(example()["events"]) == 21
    assert client.post("/v1/score", json=example()).status_code == 200
    over = example()
    over["events"].append(over["events"][0] | {"event_id": "evt-022"})
    response = client.post("/v1/score", json=over)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "events"], "type": "too_many_events",
         "msg": "22 events; at most 21 per lead (LEADSCORE_MAX_EVENTS)"}
    ]  # fmt: skip
    batch = client.post("/v1/score/batch", json={"leads": [example(), over]})
    assert batch.status_code == 422
    assert [d["loc"] for d in batch.json()["detail"]] == [["body", "leads", 1, "events"]]


def test_the_openapi_document_states_the_rules_and_limits(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir), max_events=77)
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    lead = schemas["LeadPayload"]
    assert lead["properties"]["events"]["maxItems"] == 77
    for rule in ("event dated after `as_of`", "`created_at` is after `as_of`",
                 "names another lead", "77 events per lead (LEADSCORE_MAX_EVENTS)",
                 "1000 characters for every string"):  # fmt: skip
        assert rule in lead["description"], rule
    score_body = doc["paths"]["/v1/score"]["post"]["requestBody"]["description"]
    assert "an event dated after as_of" in score_body and "another lead" in score_body
    event = schemas["Event"]["properties"]
    assert {"type": "string", "maxLength": 1000} in event["subtype"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in event["timestamp"]["anyOf"]
    assert {"type": "boolean"} not in event["value"]["anyOf"]
