"""The reps' pages through the app: sign in, the queue, the lead card, the verdict form, the
session cookie (signed, per worker, revoked with its key) and CSRF."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from leadscore.serving.app.views import business_span, percent, signed_points, sla_status
from leadscore.serving.sla import load_sla
from leadscore.serving.store.store import HandoffStore, ScoreRecord
from tests.serving.conftest import SCORE_KEY, ClientFactory, TestClient
from tests.serving.leads import example

ANA_KEY, BO_KEY, TEAM_KEY, FEEDBACK_KEY = "rep-ana-key", "rep-bo-key", "team-key", "fb-key"
KEYS = (
    f"{SCORE_KEY}:score,{ANA_KEY}:rep=rep_ana,{BO_KEY}:rep=rep_bo+feedback,{TEAM_KEY}:rep,"
    f"{FEEDBACK_KEY}:feedback"
)
COOKIE = "leadscore_session"


# ---------------------------------------------------------------------------------------------
# a small HTML reader (the standard library's parser; no extra test dependency)


class Node:
    """One element: tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str | None]):
        self.tag, self.attrs = tag, attrs
        self.children: list[Node] = []
        self.parts: list[str | Node] = []

    @property
    def text(self) -> str:
        """The element's text, whitespace collapsed."""
        out = "".join(p if isinstance(p, str) else p.text + " " for p in self.parts)
        return " ".join(out.split())

    def all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Descendants with `tag` and the given attribute values (class_ for class)."""
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()
            ):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        """The only descendant matching (fails otherwise)."""
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}>"
        return found[0]


_VOID = {"meta", "link", "input", "br", "hr", "img", "rect", "line"}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def page(html: str) -> Node:
    """The parsed document."""
    reader = _Reader()
    reader.feed(html)
    return reader.root


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def client(make_client: ClientFactory, toy_model_dir: Path) -> TestClient:
    """The toy model served with rep keys, recording handoffs."""
    return make_client(model_uri=str(toy_model_dir), api_keys=KEYS)


def _store(client: TestClient) -> HandoffStore:
    store: HandoffStore = client.app.state.loop.store  # type: ignore[attr-defined]
    return store


def _hand_over(client: TestClient, lead_id: str, owner: str, day: int = 1) -> dict[str, Any]:
    """Score the example lead as `lead_id` of `owner` as of April `day` (it is routed)."""
    body = example()
    body["lead"] |= {"lead_id": lead_id, "owner": owner}
    body["as_of"] = f"2026-04-{day:02d}T09:00:00Z"
    r = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert r.status_code == 200, r.text
    assert r.json()["recommended_action"]["action"] == "route_to_sales"
    recorder = client.app.state.loop.recorder  # type: ignore[attr-defined]
    assert recorder.flush(10)
    shown: dict[str, Any] = r.json()
    return shown


def _sign_in(client: TestClient, key: str) -> str:
    """Sign in; the session's CSRF token (read from the queue page's sign-out form)."""
    r = client.post("/app/login", data={"api_key": key}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/queue", r.text
    queue = page(client.get("/app/queue").text)
    token = queue.one("form", action="/app/logout").one("input", name="csrf_token")
    return str(token.attrs["value"])


def _queue_ids(client: TestClient, **params: str) -> list[str]:
    r = client.get("/app/queue", params=params)
    assert r.status_code == 200, r.text
    rows = page(r.text).all("tr")
    return [str(row.attrs["data-lead-id"]) for row in rows if "data-lead-id" in row.attrs]


def _cookie_fields(value: str) -> dict[str, Any]:
    payload = value.split(".")[0]
    fields: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return fields


def _forge(value: str, **changes: Any) -> str:
    """The cookie with its payload changed and the old signature kept."""
    fields = _cookie_fields(value) | changes
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    return f"{payload}.{value.split('.')[1]}"


def _record(store: HandoffStore, lead: str, owner: str, tier: str, day: int) -> None:
    at = datetime(2026, 4, day, 13, 0, tzinfo=UTC)
    store.record([ScoreRecord(
        lead_id=lead, handed_off_at=at, scored_at=at, action="route_to_sales", tier=tier,
        probability=0.3, owner=owner, due_at=at + timedelta(hours=4),
    )])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# signing in


def test_sign_in_sets_a_signed_http_only_cookie_and_refuses_other_keys(client: TestClient) -> None:
    form = page(client.get("/app/login").text).one("form", action="/app/login")
    assert form.attrs["method"] == "post"
    assert form.one("label", for_="api_key").text == "API key"
    assert form.one("input", id="api_key").attrs["type"] == "password"

    wrong = client.post("/app/login", data={"api_key": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and COOKIE not in wrong.cookies
    assert "not accepted" in page(wrong.text).one("p", role="alert").text
    no_scope = client.post("/app/login", data={"api_key": SCORE_KEY}, follow_redirects=False)
    assert no_scope.status_code == 401
    assert "rep scope" in page(no_scope.text).one("p", role="alert").text

    ok = client.post("/app/login", data={"api_key": ANA_KEY}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/app/queue"
    header = ok.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/app" in header and "samesite=lax" in header.lower()
    assert "Max-Age=43200" in header  # 12 hours
    assert "secure" not in attributes  # plain http here
    value = ok.cookies[COOKIE]
    assert ANA_KEY not in value and ANA_KEY not in header
    fields = _cookie_fields(value)
    assert fields["o"] == "rep_ana" and len(fields["k"]) == 12  # the key's id, not the key


def test_the_cookie_is_secure_over_https(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=KEYS)
    client.base_url = client.base_url.copy_with(scheme="https")
    ok = client.post("/app/login", data={"api_key": ANA_KEY}, follow_redirects=False)
    assert ok.status_code == 303
    assert "secure" in {a.strip().lower() for a in ok.headers["set-cookie"].split(";")}


def test_a_cross_site_sign_in_is_refused(client: TestClient) -> None:
    r = client.post("/app/login", data={"api_key": ANA_KEY}, follow_redirects=False,
                    headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert r.status_code == 403 and COOKIE not in r.cookies


def test_every_page_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    for path in ("/app/queue", "/app/leads/L-1", "/app/elsewhere", "/app"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/app/login", path
    post = client.post("/app/leads/L-1/feedback", data={"disposition": "accepted"},
                       follow_redirects=False)  # fmt: skip
    assert post.status_code == 303 and post.headers["location"] == "/app/login"


# ---------------------------------------------------------------------------------------------
# the queue


def test_the_queue_lists_waiting_leads_oldest_first_and_a_reps_own_only(
    client: TestClient,
) -> None:
    shown = _hand_over(client, "L-3", "rep_ana", day=3)
    _hand_over(client, "L-1", "rep_ana", day=1)
    _hand_over(client, "L-2", "rep_bo", day=2)
    nurtured = example() | {"events": []}
    nurtured["lead"]["lead_id"] = "L-N"
    client.post("/v1/score", json=nurtured, headers={"X-API-Key": SCORE_KEY})

    _sign_in(client, ANA_KEY)
    assert _queue_ids(client) == ["L-1", "L-3"]
    assert _queue_ids(client, owner="rep_bo") == ["L-1", "L-3"]  # a rep key names its rep
    queue = page(client.get("/app/queue").text)
    assert queue.one("h1").text == "Your queue"
    assert queue.all("input", id="owner") == []  # no rep filter for a rep's own key
    row = queue.one("tr", **{"data-lead-id": "L-3"})
    link = row.one("a")
    assert link.attrs["href"] == "/app/leads/L-3" and link.text == "L-3"
    cells = [c.text for c in row.all("td")]
    assert cells[0] == f"{round(shown['mql_probability'] * 100)}%"
    assert cells[1:3] == [shown["tier"], "Route to sales"]
    assert cells[4] == "SQL-ready"

    _sign_in(client, TEAM_KEY)
    assert _queue_ids(client) == ["L-1", "L-2", "L-3"]
    assert _queue_ids(client, owner="rep_bo") == ["L-2"]
    assert page(client.get("/app/queue").text).all("input", id="owner") != []


def test_queue_filters_by_tier_and_breach_and_says_when_empty(client: TestClient) -> None:
    store = _store(client)
    _record(store, "T-A", "rep_ana", "A", day=1)
    _record(store, "T-B", "rep_ana", "B", day=2)
    _sign_in(client, ANA_KEY)
    assert _queue_ids(client, tier="B") == ["T-B"]
    assert _queue_ids(client, breached="true") == ["T-A", "T-B"]  # due in April 2026: past
    assert _queue_ids(client, breached="false") == []
    empty = page(client.get("/app/queue", params={"breached": "false"}).text)
    assert empty.one("p", id="queue-empty").text == "No waiting leads match these filters."
    assert empty.all("table", id="queue") == []
    sla = page(client.get("/app/queue").text).one("tr", **{"data-lead-id": "T-A"}).all("td")[3]
    assert sla.text.startswith("Overdue by") and "business day" in sla.text
    bad = client.get("/app/queue", params={"tier": "E"})
    assert bad.status_code == 422 and "Tier must be" in page(bad.text).one("p", role="alert").text


def test_a_long_queue_comes_in_pages_that_keep_the_filters(client: TestClient) -> None:
    at = datetime(2026, 4, 1, 13, 0, tzinfo=UTC)
    _store(client).record([
        ScoreRecord(lead_id=f"P-{i:02d}", handed_off_at=at + timedelta(minutes=i), scored_at=at,
                    action="route_to_sales", tier="B", probability=0.3, owner="rep_ana")
        for i in range(51)
    ])  # fmt: skip
    _sign_in(client, ANA_KEY)
    first = page(client.get("/app/queue", params={"tier": "B"}).text)
    ids = [r.attrs["data-lead-id"] for r in first.all("tr") if "data-lead-id" in r.attrs]
    assert ids == [f"P-{i:02d}" for i in range(50)]
    assert first.one("p", class_="count").text.startswith("1–50 of 51")
    pages = first.one("nav", **{"aria-label": "Queue pages"})
    assert [a.attrs["href"] for a in pages.all("a")] == ["/app/queue?tier=B&page=2"]
    assert _queue_ids(client, tier="B", page="2") == ["P-50"]
    assert client.get("/app/queue", params={"page": "0"}).status_code == 422


def test_an_empty_queue_says_so(client: TestClient) -> None:
    _sign_in(client, BO_KEY)
    text = page(client.get("/app/queue").text).one("p", id="queue-empty").text
    assert text == "No leads are waiting for your verdict."


# ---------------------------------------------------------------------------------------------
# the lead card


def test_the_card_shows_the_score_as_it_was_shown(client: TestClient) -> None:
    shown = _hand_over(client, "L-1", "rep_ana")
    token = _sign_in(client, ANA_KEY)
    r = client.get("/app/leads/L-1")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    card = page(r.text)
    assert "L-1" in card.one("h1").text
    score = card.one("section", id="score").text
    assert f"{round(shown['mql_probability'] * 100)}%" in score
    assert f"Tier {shown['tier']}" in score and "Marketing-qualified" in score
    reasons = card.one("section", id="reasons")
    items = reasons.all("li", class_="reason")
    top = shown["reasons"]["positive"][0]["sentence"]
    assert items[0].text == top
    assert len(items) == len(shown["reasons"]["positive"]) + len(shown["reasons"]["negative"])
    groups = [row.one("th").text for row in reasons.one("table").one("tbody").all("tr")]
    assert groups == ["Fit (who they are)", "Engagement (what they did)", "Sales (what sales did)"]
    fit = shown["score_by_group"]["fit"] * 100
    assert reasons.one("table").one("tbody").all("td")[0].text == (
        f"{'+' if fit >= 0 else '−'}{abs(fit):.1f} pts"
    )
    criteria = card.one("section", id="criteria").all("li")
    assert [c.attrs["data-status"] for c in criteria] == [
        c["status"] for c in shown["sql_criteria"]["criteria"]
    ]
    assert shown["sql_criteria"]["criteria"][0]["sentence"] in criteria[0].text
    assert "Route to sales" in card.one("section", id="action").text
    steps = card.one("section", id="next-steps")
    assert steps.all("li") or "No step" in steps.text
    for item in steps.all("li"):
        assert re.search(r"the score would be \d+% \(\+\d+\.\d pts\)$", item.text), item.text
    form = card.one("form", id="feedback")
    assert form.attrs["action"] == "/app/leads/L-1/feedback" and form.attrs["method"] == "post"
    assert form.one("input", name="csrf_token").attrs["value"] == token
    assert form.one("label", for_="reason").text == "Reason"
    options = [o.attrs["value"] for o in form.one("select", id="reason").all("option")]
    assert options[:3] == ["", "unable_to_reach", "bad_data"]
    buttons = {b.attrs["value"]: b.text for b in form.all("button")}
    assert buttons == {"accepted": "Accept", "rejected": "Reject"}
    assert "mql_probability" not in r.text and ANA_KEY not in r.text  # no internals, no key


def test_another_reps_lead_and_an_unknown_lead_are_not_found(client: TestClient) -> None:
    _hand_over(client, "L-2", "rep_bo")
    token = _sign_in(client, ANA_KEY)
    for path in ("/app/leads/L-2", "/app/leads/nope", "/app/leads/" + "x" * 300):
        r = client.get(path)
        assert r.status_code == 404, path
        assert page(r.text).one("h1").text == "Lead not found"
    post = client.post("/app/leads/L-2/feedback",
                       data={"csrf_token": token, "disposition": "accepted"})  # fmt: skip
    assert post.status_code == 404
    assert _store(client).lead_feedback("L-2") == []
    _sign_in(client, TEAM_KEY)
    assert client.get("/app/leads/L-2").status_code == 200


def test_a_handoff_recorded_without_its_body_still_renders(client: TestClient) -> None:
    _record(_store(client), "OLD-1", "rep_ana", "B", day=1)  # no reasons, criteria or body
    _sign_in(client, ANA_KEY)
    r = client.get("/app/leads/OLD-1")
    assert r.status_code == 200, r.text
    card = page(r.text)
    assert "No reasons were computed" in card.one("section", id="reasons").text
    assert "No next steps computed" in card.one("section", id="next-steps").text
    assert "30%" in card.one("section", id="score").text


# ---------------------------------------------------------------------------------------------
# the verdict


def test_a_post_without_the_sessions_csrf_token_is_refused(client: TestClient) -> None:
    _hand_over(client, "L-1", "rep_ana")
    _sign_in(client, ANA_KEY)
    verdict = {"disposition": "rejected", "reason": "no_budget"}
    assert client.post("/app/leads/L-1/feedback", data=verdict).status_code == 403
    wrong = verdict | {"csrf_token": "x" * 43}
    assert client.post("/app/leads/L-1/feedback", data=wrong).status_code == 403
    as_json = client.post("/app/leads/L-1/feedback", json=verdict)
    assert as_json.status_code == 403
    assert _store(client).lead_feedback("L-1") == []
    assert _queue_ids(client) == ["L-1"]


def test_a_rejection_is_stored_like_the_apis_and_the_lead_leaves_the_queue(
    client: TestClient,
) -> None:
    _hand_over(client, "L-1", "rep_ana", day=1)
    _hand_over(client, "L-2", "rep_ana", day=2)
    token = _sign_in(client, ANA_KEY)
    form_id = page(client.get("/app/leads/L-1").text).one("input", name="form_id").attrs["value"]
    verdict = {"csrf_token": token, "form_id": str(form_id), "disposition": "rejected",
               "reason": "no_budget", "note": "Budget frozen until Q3"}  # fmt: skip
    r = client.post("/app/leads/L-1/feedback", data=verdict, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/queue"
    again = client.post("/app/leads/L-1/feedback", data=verdict, follow_redirects=False)
    assert again.status_code == 303  # a double submit of one form: one verdict
    stored = _store(client).lead_feedback("L-1")
    assert len(stored) == 1
    assert (stored[0]["disposition"], stored[0]["reason"], stored[0]["rep"], stored[0]["note"]) == (
        "rejected",
        "no_budget",
        "rep_ana",
        "Budget frozen until Q3",
    )
    assert _queue_ids(client) == ["L-2"]
    api = client.get("/v1/leads/L-1/feedback", headers={"X-API-Key": FEEDBACK_KEY}).json()
    assert [f["id"] for f in api] == [stored[0]["id"]]
    card = page(client.get("/app/leads/L-1").text)
    assert card.all("form", id="feedback") == []
    assert "Rejected (No budget) by rep_ana" in card.one("section", id="verdict").text

    accepted = {"csrf_token": token, "disposition": "accepted", "reason": "no_need"}
    r = client.post("/app/leads/L-2/feedback", data=accepted, follow_redirects=False)
    assert r.status_code == 303  # the select's value is ignored for an acceptance
    assert [(f["disposition"], f["reason"]) for f in _store(client).lead_feedback("L-2")] == [
        ("accepted", None)
    ]
    assert _queue_ids(client) == []


def test_a_team_leads_verdict_is_recorded_under_its_key_id(client: TestClient) -> None:
    _hand_over(client, "L-1", "rep_ana")
    token = _sign_in(client, TEAM_KEY)
    key_id = _cookie_fields(client.cookies[COOKIE])["k"]
    data = {"csrf_token": token, "disposition": "accepted"}
    r = client.post("/app/leads/L-1/feedback", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert _store(client).lead_feedback("L-1")[0]["rep"] == key_id


@pytest.mark.parametrize(
    ("verdict", "says"),
    [
        ({"disposition": "rejected", "reason": ""}, "Choose a reason to reject the lead."),
        ({"disposition": "rejected", "reason": "too_busy"}, "Choose one of the listed reasons."),
        ({"disposition": "maybe"}, "Choose Accept, or a reason and Reject."),
        ({"disposition": "rejected", "reason": "other", "note": "x" * 4001},
         "The note is too long: at most 4000 characters."),
    ],
)  # fmt: skip
def test_an_incomplete_verdict_is_shown_again_with_what_is_missing(
    client: TestClient, verdict: dict[str, str], says: str
) -> None:
    _hand_over(client, "L-1", "rep_ana")
    token = _sign_in(client, ANA_KEY)
    r = client.post("/app/leads/L-1/feedback", data=verdict | {"csrf_token": token})
    assert r.status_code == 422
    form = page(r.text).one("form", id="feedback")
    assert form.one("p", role="alert").text == says
    assert _store(client).lead_feedback("L-1") == []


# ---------------------------------------------------------------------------------------------
# the session


def test_a_tampered_expired_or_revoked_session_is_refused(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    client = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, store_url=store)
    _sign_in(client, ANA_KEY)
    good = client.cookies[COOKIE]
    assert client.get("/app/queue", follow_redirects=False).status_code == 200

    def refused(value: str, on: TestClient = client) -> bool:
        on.cookies.set(COOKIE, value, path="/app")
        r = on.get("/app/queue", follow_redirects=False)
        return r.status_code == 303 and r.headers["location"] == "/app/login"

    assert refused(_forge(good, o=None))  # a rep's cookie made a team lead's
    assert refused(_forge(good, e=_cookie_fields(good)["e"] + 3600))
    assert refused(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert refused("garbage") and refused(good + ".x")
    # expired: a session issued 13 hours ago
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    key = client.app.state.keys.lookup(ANA_KEY)  # type: ignore[attr-defined]
    old, _ = sessions.issue(key, datetime.now(UTC).timestamp() - 13 * 3600)
    assert refused(old)
    # the same cookie on a worker whose keys no longer hold rep_ana's key (secret fixed, so
    # the signature still holds: only the revocation refuses it)
    fixed = {"session_secret": "s" * 32, "store_url": store, "model_uri": str(toy_model_dir)}
    before = make_client(api_keys=KEYS, **fixed)
    after = make_client(api_keys=KEYS.replace(f"{ANA_KEY}:rep=rep_ana,", ""), **fixed)
    r = before.post("/app/login", data={"api_key": ANA_KEY}, follow_redirects=False)
    assert not refused(r.cookies[COOKIE], before)
    assert refused(r.cookies[COOKIE], after)
    # a key whose owner changed: the cookie names the old one
    moved = make_client(api_keys=KEYS.replace("rep=rep_ana", "rep=rep_cy"), **fixed)
    assert refused(r.cookies[COOKIE], moved)


def test_a_cookie_is_valid_on_every_worker_built_from_the_same_settings(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, store_url=store)
    second = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, store_url=store)
    other = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, store_url=store,
                        session_secret="another deployment")  # fmt: skip
    _hand_over(first, "L-1", "rep_ana")
    token = _sign_in(first, ANA_KEY)
    cookie = first.cookies[COOKIE]
    second.cookies.set(COOKIE, cookie, path="/app")
    assert second.get("/app/leads/L-1").status_code == 200
    data = {"csrf_token": token, "disposition": "accepted"}
    r = second.post("/app/leads/L-1/feedback", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/queue"
    other.cookies.set(COOKIE, cookie, path="/app")
    assert other.get("/app/queue", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_token_and_clears_the_cookie(client: TestClient) -> None:
    token = _sign_in(client, ANA_KEY)
    assert client.post("/app/logout", data={"csrf_token": "nope"}).status_code == 403
    r = client.post("/app/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/login"
    cleared = r.headers["set-cookie"]
    assert cleared.startswith(f"{COOKIE}=") and "Max-Age=0" in cleared and "Path=/app" in cleared
    assert client.get("/app/queue", follow_redirects=False).status_code == 303


def test_a_store_that_is_down_is_a_friendly_page(
    make_client: ClientFactory, toy_model_dir: Path
) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=KEYS, store_url="nosuch://x")
    _sign_in_status = client.post("/app/login", data={"api_key": ANA_KEY}, follow_redirects=False)
    assert _sign_in_status.status_code == 303
    r = client.get("/app/queue")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert page(r.text).one("h1").text == "The lead store is not available"
    assert "nosuch" not in r.text  # the configuration is for the logs, not the rep


def test_the_stylesheet_is_served(client: TestClient) -> None:
    r = client.get("/app/static/app.css")
    assert r.status_code == 200 and ":focus-visible" in r.text


# ---------------------------------------------------------------------------------------------
# the lead body kept with the handoff


def test_the_lead_body_is_kept_as_scored(client: TestClient) -> None:
    body = example()
    body["lead"] |= {"lead_id": "L-1", "owner": "rep_ana", "crm_score": float("nan")}
    del body["as_of"]  # the service fills in now: the kept body names that moment
    headers = {"X-API-Key": SCORE_KEY, "Content-Type": "application/json"}
    r = client.post("/v1/score", content=json.dumps(body), headers=headers)  # NaN: not json=
    assert r.status_code == 200, r.text
    assert client.app.state.loop.recorder.flush(10)  # type: ignore[attr-defined]
    kept = _store(client).lead_view("L-1", datetime.now(UTC))
    assert kept is not None and kept["lead"] is not None
    assert kept["lead"]["events"] == body["events"]
    assert kept["lead"]["account"] == body["account"]
    assert kept["lead"]["lead"]["crm_score"] is None  # NaN is no JSON number
    assert datetime.fromisoformat(kept["lead"]["as_of"]) == datetime.fromisoformat(
        r.json()["as_of"]
    )


# ---------------------------------------------------------------------------------------------
# formats


def test_percentages_points_and_business_time_as_a_rep_reads_them() -> None:
    assert [percent(p) for p in (0.0, 0.004, 0.015, 0.5, 0.996, 1.0, None)] == [
        "0%", "<1%", "2%", "50%", ">99%", "100%", "unknown",
    ]  # fmt: skip
    assert signed_points(0.042) == "+4.2 pts" and signed_points(-0.01) == "−1.0 pts"
    assert business_span(0.5, 8) == "30 min"
    assert business_span(1, 8) == "1 business hour"
    assert business_span(4.25, 8) == "4.2 business hours"  # banker's rounding of .25 is .2
    assert business_span(20, 8) == "2.5 business days"


def test_sla_time_counts_business_hours_on_the_owners_calendar() -> None:
    sla = load_sla()  # the packaged one: New York, 09:00-17:00, Monday to Friday
    monday_9am = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York
    due = monday_9am + timedelta(hours=4)  # 13:00
    assert sla_status(due, None, sla, monday_9am) == {
        "text": "4 business hours left",
        "overdue": False,
    }
    # Tuesday 10:00: 13:00-17:00 Monday and 09:00-10:00 Tuesday have passed since the deadline
    tuesday_10am = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    assert sla_status(due, None, sla, tuesday_10am) == {
        "text": "Overdue by 5 business hours",
        "overdue": True,
    }
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    next_monday_9am = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # 09:00 EDT (clocks moved)
    assert sla_status(next_monday_9am, None, sla, saturday)["text"] == "Due when business opens"
    assert sla_status(None, None, sla, saturday) == {"text": "No SLA", "overdue": False}
