"""Issue 14's hardening of the HTTP layer: fair sharing, bounded metrics, disconnects, slow
senders, JSON-only bodies and a readiness probe that shows no server paths.

The concurrency tests run a real uvicorn server in a thread (:func:`live`), prove "while" with
events (a patched scoring function that waits to be released), and only use timeouts as guards
against hanging.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import select
import socket
import string
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from leadscore.serving.api import create_app, routes
from leadscore.serving.api.routes import INLINE_BODY_BYTES, LOADING, NOT_LOADED
from leadscore.serving.api.server import HEADER_TIMEOUT_ENV, HeaderDeadlineProtocol, header_timeout
from leadscore.serving.settings import Settings
from tests.serving.conftest import ADMIN_KEY, KEYS, SCORE_KEY, ClientFactory, TestClient
from tests.serving.leads import example

GUARD = 30.0  # seconds: only a guard against a hanging test, never a synchronisation
JSON = {"Content-Type": "application/json"}
SCORING = {"X-API-Key": SCORE_KEY, **JSON}
Asgi = Callable[..., Any]


def largest_lead() -> bytes:
    """A lead with as many events as a lead may have (Settings.max_events, 5,000 by default)."""
    body = example()
    events = body["events"]
    limit = Settings().max_events
    body["events"] = [
        copy.deepcopy(events[i % len(events)]) | {"event_id": f"evt-{i:05d}"} for i in range(limit)
    ]
    return json.dumps(body).encode()


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    return Settings(**({"api_keys": KEYS, "store_url": store} | overrides))


@contextmanager
def live(app: Asgi, **config: Any) -> Iterator[str]:
    """Serve `app` with uvicorn (`config`: more of its options) on a free local port in a
    thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_config": None, "timeout_keep_alive": 5} | config
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + GUARD
    while not server.started:  # a bounded wait for the server to listen
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(GUARD)
        sock.close()


def noting_partial_bodies(app: Asgi, seen: threading.Event) -> Asgi:
    """`app`, with `seen` set once the application has read part of a body (more to come)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def noting() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message.get("more_body"):
                seen.set()
            return message

        await app(scope, noting, send)

    return wrapped


def raw_request(port: int, path: str, headers: dict[str, str], length: int) -> socket.socket:
    """A socket that has sent a POST's head, declaring `length` body bytes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    lines = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def blocked_scoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, ...]]:
    """Scoring that signals `started` and waits for `release` (set at the end in any case)."""
    started, release = threading.Event(), threading.Event()
    real = routes.score_lead

    def blocking(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(GUARD), "never released"
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "score_lead", blocking)
    yield started, release
    release.set()


# -------------------------------------------------------------------------------------------
# fair sharing


@pytest.mark.slow
def test_healthz_answers_while_the_largest_lead_is_scored(
    toy_model_dir: Path, tmp_path: Path, blocked_scoring: tuple[threading.Event, ...]
) -> None:
    started, release = blocked_scoring
    body = largest_lead()
    assert len(body) > INLINE_BODY_BYTES  # so it is scored on a worker thread
    app = create_app(_settings(tmp_path, model_uri=str(toy_model_dir)))
    with live(app) as base, ThreadPoolExecutor(1) as pool:
        post = pool.submit(httpx.post, f"{base}/v1/score", content=body, headers=SCORING,
                           timeout=GUARD)  # fmt: skip
        assert started.wait(GUARD), "the lead was not scored"
        # the lead is being scored now, and stays so until released: if scoring held the
        # event loop, these would not be answered (and the test would fail on the guard)
        health = httpx.get(f"{base}/healthz", timeout=GUARD)
        ready = httpx.get(f"{base}/readyz", timeout=GUARD)
        assert not post.done()
        release.set()
        scored = post.result(GUARD)
    assert health.status_code == 200 and health.json() == {"status": "alive"}
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert scored.status_code == 200, scored.text
    assert scored.json()["lead_id"] == "lead-example-001"


def test_a_request_over_its_time_budget_is_503_and_the_rest_go_on(
    make_client: ClientFactory, toy_model_dir: Path, blocked_scoring: tuple[threading.Event, ...]
) -> None:
    started, release = blocked_scoring
    client = make_client(model_uri=str(toy_model_dir), request_timeout_seconds=0.2)
    late = client.post("/v1/score", content=largest_lead(), headers=SCORING)
    assert late.status_code == 503
    assert late.json() == {"detail": "the request took over its time budget of 0.2 s"}
    # the worker thread goes on (it cannot be stopped) and reaches the scoring, still blocked
    assert started.wait(GUARD) and not release.is_set()
    release.set()
    assert client.get("/healthz").status_code == 200


def test_small_bodies_are_scored_inline_large_ones_on_a_thread(
    toy_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[float] = []
    real = routes.off_loop

    async def counting(budget: float, work: Any) -> Any:
        hops.append(budget)
        return await real(budget, work)

    monkeypatch.setattr(routes, "off_loop", counting)
    small = json.dumps(example()).encode()
    assert len(small) <= INLINE_BODY_BYTES
    assert toy_client.post("/v1/score", content=small, headers=JSON).status_code == 200
    assert hops == []
    assert toy_client.post("/v1/score", content=largest_lead(), headers=JSON).status_code == 200
    batch = json.dumps({"leads": [example()] * 10}).encode()  # 10 leads of about 4 KB
    assert toy_client.post("/v1/score/batch", content=batch, headers=JSON).status_code == 200
    assert hops == [30.0, 30.0]  # the default budget, LEADSCORE_REQUEST_TIMEOUT_SECONDS


# -------------------------------------------------------------------------------------------
# bounded metrics


def _metric_lines(client: TestClient) -> list[str]:
    text = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.slow
def test_random_methods_are_405_and_do_not_grow_the_metrics(toy_client: TestClient) -> None:
    rng = random.Random(14)
    known = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    methods = [
        "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12))) for _ in range(1001)
    ]
    methods = [m for m in methods if m not in known]
    del toy_client.headers["X-API-Key"]  # unauthenticated, as a prober would
    first = toy_client.request(methods[0], "/v1/score")
    assert first.status_code == 405
    assert first.headers["allow"] == "GET, HEAD, POST"
    assert first.json() == {"detail": "method not allowed"}
    _metric_lines(toy_client)  # from now on the labels of GET /metrics exist too
    before = _metric_lines(toy_client)
    statuses = {toy_client.request(m, rng.choice(["/v1/score", "/nowhere", "/"])).status_code
                for m in methods[1:]}  # fmt: skip
    after = _metric_lines(toy_client)
    assert statuses == {405}
    assert len(after) == len(before)  # only values changed
    line = 'leadscore_requests_total{method="other",route="unmatched",status="405"}'
    assert f"{line} {float(len(methods))}" in after


def test_a_known_method_a_route_lacks_is_405_by_its_method(toy_client: TestClient) -> None:
    response = toy_client.put("/v1/score", json=example())
    assert response.status_code == 405
    lines = _metric_lines(toy_client)
    assert 'leadscore_requests_total{method="PUT",route="/v1/score",status="405"} 1.0' in lines


def test_the_recorder_counts_are_exported(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), record="all")
    client.headers["X-API-Key"] = SCORE_KEY
    for lead_id in ("a-1", "a-2"):
        body = example()
        body["lead"]["lead_id"] = lead_id
        assert client.post("/v1/score", json=body).status_code == 200
    recorder = client.app.state.loop.recorder  # type: ignore[attr-defined]
    assert recorder.flush(GUARD)
    lines = _metric_lines(client)
    assert "leadscore_handoff_records_submitted_total 2.0" in lines
    assert "leadscore_handoff_records_written_total 2.0" in lines
    assert "leadscore_handoff_records_dropped_total 0.0" in lines
    assert "leadscore_handoff_record_failures_total 0.0" in lines
    assert "leadscore_handoff_records_queued 0.0" in lines


# -------------------------------------------------------------------------------------------
# slow senders and disconnects


@pytest.mark.slow
def test_a_slow_sender_is_cut_with_408_while_others_are_served(
    toy_model_dir: Path, tmp_path: Path
) -> None:
    seen = threading.Event()
    settings = _settings(tmp_path, model_uri=str(toy_model_dir), body_timeout_seconds=1.0)
    app = noting_partial_bodies(create_app(settings), seen)
    with live(app) as base:
        slow = raw_request(int(base.rsplit(":", 1)[1]), "/v1/score", SCORING, 1000)
        slow.sendall(b'{"lead": ')  # and then nothing more
        assert seen.wait(GUARD), "the server did not start reading the body"
        other = httpx.post(f"{base}/v1/score", json=example(), headers=SCORING, timeout=GUARD)
        pending = not select.select([slow], [], [], 0)[0]  # no answer yet: still being read
        answer = read_all(slow)  # the server closes the connection after its 408
        slow.close()
        metrics = httpx.get(f"{base}/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    assert other.status_code == 200 and pending
    head, _, detail = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert json.loads(detail) == {"detail": "the request body did not arrive within 1 s"}
    assert 'route="/v1/score",status="408"} 1.0' in metrics


@pytest.fixture
def header_deadline(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """A header deadline of half a second for the servers this test starts."""
    monkeypatch.setenv(HEADER_TIMEOUT_ENV, "0.5")
    header_timeout.cache_clear()
    yield header_timeout()
    header_timeout.cache_clear()


def test_headers_that_do_not_arrive_in_time_close_the_connection(
    toy_model_dir: Path, tmp_path: Path, header_deadline: float
) -> None:
    app = create_app(_settings(tmp_path, model_uri=str(toy_model_dir)))
    with live(app, http=HeaderDeadlineProtocol) as base:
        port = int(base.rsplit(":", 1)[1])
        idle = socket.create_connection(("127.0.0.1", port), timeout=GUARD)  # sends nothing
        trickle = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # the head never ends
        other = httpx.get(f"{base}/healthz", timeout=GUARD)
        pending = not select.select([idle, trickle], [], [], 0)[0]
        closed = read_all(idle), read_all(trickle)  # empty: closed without an answer
        idle.close()
        trickle.close()
    assert other.status_code == 200 and pending
    assert closed == (b"", b"")


def test_the_header_deadline_ends_when_the_headers_are_in(
    toy_model_dir: Path, tmp_path: Path, header_deadline: float
) -> None:
    # the body arrives too slowly too, but its own deadline (1 s, over the header deadline)
    # answers it: the header timer stopped when the head was complete
    seen = threading.Event()
    settings = _settings(tmp_path, model_uri=str(toy_model_dir), body_timeout_seconds=1.0)
    app = noting_partial_bodies(create_app(settings), seen)
    with live(app, http=HeaderDeadlineProtocol) as base:
        slow = raw_request(int(base.rsplit(":", 1)[1]), "/v1/score", SCORING, 1000)
        slow.sendall(b'{"lead": ')
        assert seen.wait(GUARD), "the server did not start reading the body"
        answer = read_all(slow)
        slow.close()
    assert header_deadline < settings.body_timeout_seconds
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/v1/score", SCORING), ("/v1/leads/lead-1/feedback", JSON)],
    ids=["score", "feedback"],
)
def test_a_client_that_leaves_mid_body_is_one_log_line_and_no_5xx(
    toy_model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    path: str,
    headers: dict[str, str],
) -> None:
    seen, logged = threading.Event(), threading.Event()
    app = noting_partial_bodies(create_app(_settings(tmp_path, model_uri=str(toy_model_dir))), seen)
    guard_log = logging.getLogger("leadscore.serving.api.app")
    note = logging.Handler()
    note.emit = lambda record: logged.set()  # type: ignore[method-assign]
    guard_log.addHandler(note)
    caplog.set_level(logging.INFO)
    try:
        with live(app) as base:
            sock = raw_request(int(base.rsplit(":", 1)[1]), path, headers, 1000)
            sock.sendall(b'{"disposition": "accepted", "note": "' + b"x" * 400)  # 438 of 1000
            assert seen.wait(GUARD), "the server did not start reading the body"
            sock.close()  # half the body sent: the client goes away
            assert logged.wait(GUARD), "the disconnect was not noticed"
            metrics = httpx.get(f"{base}/metrics", headers={"X-API-Key": ADMIN_KEY}).text
    finally:
        guard_log.removeHandler(note)
    route = path.replace("lead-1", "{lead_id}")
    requests = [line for line in metrics.splitlines()
                if line.startswith("leadscore_requests_total{")]  # fmt: skip
    assert f'leadscore_requests_total{{method="POST",route="{route}",status="499"}} 1.0' in requests
    assert not [line for line in requests if 'status="5' in line]
    records = [r for r in caplog.records if r.levelno >= logging.INFO
               and r.name.startswith(("leadscore", "uvicorn"))]  # fmt: skip
    gone = [r.getMessage() for r in records if "went away" in r.getMessage()]
    assert len(gone) == 1
    assert gone[0].startswith(f"client went away before the response: POST {route} (")
    assert gone[0].endswith(" body bytes read)") and "\n" not in gone[0]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR]


# -------------------------------------------------------------------------------------------
# JSON only


BODY_ROUTES = ["/v1/score", "/v1/score/batch", "/v1/leads/lead-1/feedback",
               "/v1/leads/lead-1/outcome"]  # fmt: skip


@pytest.fixture
def feedback_client(make_client: ClientFactory, toy_model_dir: Path) -> TestClient:
    """A client whose key has every scope the body routes need."""
    keys = f"{KEYS},every:score+feedback+admin"
    client = make_client(model_uri=str(toy_model_dir), api_keys=keys)
    client.headers["X-API-Key"] = "every"
    return client


NOT_JSON = [None, "text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/jsonx"]  # fmt: skip


def test_a_body_that_is_not_json_is_415(feedback_client: TestClient) -> None:
    for path in BODY_ROUTES:
        for content_type in NOT_JSON:
            headers = {} if content_type is None else {"Content-Type": content_type}
            response = feedback_client.post(path, content=json.dumps(example()), headers=headers)
            assert response.status_code == 415, (path, content_type, response.text)
            shown = "none" if content_type is None else repr(content_type)
            detail = f"Content-Type must be application/json, not {shown}"
            assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON",
     "application/problem+json"],
)  # fmt: skip
def test_json_content_types_are_accepted(feedback_client: TestClient, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    scored = feedback_client.post("/v1/score", content=json.dumps(example()), headers=headers)
    assert scored.status_code == 200
    verdict = json.dumps({"disposition": "accepted"})
    feedback = feedback_client.post("/v1/leads/nobody/feedback", content=verdict, headers=headers)
    assert feedback.status_code == 404  # parsed, checked, and the lead has no handoff


def test_a_json_body_that_is_not_utf8_is_422_on_every_route(feedback_client: TestClient) -> None:
    for path in BODY_ROUTES:
        response = feedback_client.post(path, content=b"L\xd1m", headers=JSON)
        assert response.status_code == 422, (path, response.text)
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body"] and problem["type"] == "json_invalid", path


def test_415_comes_after_the_key_and_not_on_routes_without_a_body(
    feedback_client: TestClient,
) -> None:
    anonymous = feedback_client.post("/v1/score", content=b"x", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401
    reload = feedback_client.post("/v1/admin/reload")  # no body, no Content-Type: fine
    assert reload.status_code == 200


def test_the_pages_still_take_forms(feedback_client: TestClient) -> None:
    response = feedback_client.post(
        "/app/login", data={"key": "wrong"}, follow_redirects=False
    )  # a form post to the pages' own route: their own answer, never 415
    assert response.status_code != 415


def test_openapi_lists_415_on_every_json_body_route(feedback_client: TestClient) -> None:
    doc = feedback_client.get("/openapi.json").json()
    body_routes = [(path, method) for path, item in doc["paths"].items()
                   for method, op in item.items() if "requestBody" in op
                   and path.startswith("/v1/")]  # fmt: skip
    assert len(body_routes) == 4
    for path, method in body_routes:
        assert "415" in doc["paths"][path][method]["responses"], path


# -------------------------------------------------------------------------------------------
# readiness


def test_readyz_without_an_admin_key_shows_no_paths(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "nothing-here"
    client = make_client(model_uri=str(missing), tracking_uri=None)
    for headers in ({}, {"X-API-Key": SCORE_KEY}, {"X-API-Key": "not-a-key"}):
        ready = client.get("/readyz", headers=headers)
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "model": None, "error": NOT_LOADED}
        assert str(tmp_path) not in ready.text
    full = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY})
    assert full.status_code == 503
    assert str(missing) in full.json()["error"]
    assert NOT_LOADED != LOADING


def test_readyz_names_the_served_version_without_a_key(toy_client: TestClient) -> None:
    del toy_client.headers["X-API-Key"]
    ready = toy_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "error": None,
                            "model": {"name": "toy-scoring", "version": "7",
                                      "alias": "champion"}}  # fmt: skip
