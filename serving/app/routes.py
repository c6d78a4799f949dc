"""The reps' pages: sign in with a `rep` key, the queue of waiting leads, the lead card and
the verdict form (server-rendered HTML, plain forms, no JavaScript).

* ``GET/POST /app/login``, ``POST /app/logout``: a session cookie (:mod:`.session`);
* ``GET /app/queue``: the waiting handoffs, oldest first; a key that names its rep sees that
  rep's leads only, a team lead's key every rep's (and may filter by rep);
* ``GET /app/leads/{lead_id}``: the score as shown at the handoff, reasons, criteria, action,
  next steps, SLA; ``POST /app/leads/{lead_id}/feedback`` stores the verdict through
  :meth:`HandoffStore.add_feedback`, the code behind ``POST /v1/leads/{id}/feedback``.

Every form posts its session's CSRF token (403 without it), and a browser's cross-site POST is
refused by its ``Sec-Fetch-Site`` header too (which also covers the sign-in form). Errors are
pages: a lead that is not the rep's or not in the store is a 404 page, a store that is down
a 503 page, anything unexpected a 500 page (logged); never a JSON body or a stack trace.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from leadscore.serving.api.handoff_schemas import NAME_LENGTH, NOTE_LENGTH, FeedbackIn
from leadscore.serving.api.handoffs import Loop
from leadscore.serving.api.service import Served
from leadscore.serving.app import views
from leadscore.serving.app.session import (
    COOKIE,
    REP_SCOPE,
    Session,
    Sessions,
    clear_cookie,
    set_cookie,
    signing_key,
)
from leadscore.serving.auth import KeyRing
from leadscore.serving.store.store import (
    FeedbackInput,
    IdempotencyConflict,
    NoHandoff,
    request_digest,
)

log = logging.getLogger(__name__)
PAGE_SIZE = 50
TIERS = ("A", "B", "C", "D")
_BREACHED = {"true": True, "false": False, "yes": True, "no": False}  # the API's words, or ours
_MAX_FIELDS = 20
_ID_LENGTH = 200
_HEADERS = {
    "Cache-Control": "no-store",  # lead data: not for shared caches or the back button
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",  # the verdict form must not be clickjacked
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_env = Environment(
    loader=PackageLoader("leadscore.serving.app", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["path_part"] = lambda value: quote(str(value), safe="")


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered as a page, with the pages' security headers."""
    context.setdefault("session", None)
    html = _env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """A 303 to `url` (after a POST the browser GETs it)."""
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def problem(status: int, title: str, message: str, session: Session | None = None) -> Response:
    """A friendly error page."""
    return render("error.html", status, title=title, message=message, session=session)


class PageRoute(APIRoute):
    """A page route: a database that is down is a 503 page, anything unexpected a 500 page
    (logged), instead of the API's JSON error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (HTTPException, RequestValidationError):
                raise  # the app's own handlers answer these
            except SQLAlchemyError:
                log.exception("page %s: the handoff store failed", request.url.path)
                return problem(503, "Try again in a minute",
                               "The lead store did not answer. Nothing was saved; try again "
                               "in a minute.")  # fmt: skip
            except Exception:
                log.exception("page %s failed", request.url.path)
                return problem(500, "Something went wrong",
                               "This page failed (the error is logged). Nothing was saved; "
                               "go back to your queue and try again.")  # fmt: skip

        return guarded


router = APIRouter(prefix="/app", include_in_schema=False, route_class=PageRoute)


def mount_pages(app: FastAPI) -> None:
    """Serve the pages and their stylesheet from `app` (after its settings and keys are set)."""
    keys: KeyRing = app.state.keys
    app.state.sessions = Sessions(signing_key(app.state.settings, keys), keys)
    static = StaticFiles(packages=[("leadscore.serving.app", "static")])
    app.mount("/app/static", static, name="app-static")  # before the router's catch-all
    app.include_router(router)


# ---------------------------------------------------------------------------------------------
# request helpers


def _session(request: Request) -> Session | None:
    sessions: Sessions = request.app.state.sessions
    return sessions.loads(request.cookies.get(COOKIE), time.time())


def _to_login(request: Request) -> Response:
    response = redirect("/app/login")
    if COOKIE in request.cookies:  # expired, tampered or its key revoked: forget it
        clear_cookie(response, request)
    return response


async def _form(request: Request) -> dict[str, str]:
    """An HTML form's fields (urlencoded; the first of repeated names). Anything else is
    read as no fields, which the CSRF check then refuses."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True, max_num_fields=_MAX_FIELDS,
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


Form = Annotated[dict[str, str], Depends(_form)]


def _cross_site(request: Request) -> bool:
    """Whether a browser says the POST comes from another site (every current browser sends
    ``Sec-Fetch-Site``; scripts and older browsers rely on the CSRF token alone)."""
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


def _loop(request: Request) -> Loop:
    loop: Loop = request.app.state.loop
    return loop


def _store_down(session: Session | None) -> Response:
    return problem(503, "The lead store is not available",
                   "Leads cannot be shown right now. Try again in a minute; if this persists, "
                   "tell whoever runs leadscore.", session)  # fmt: skip


def _visible(session: Session, handoff: dict[str, Any] | None) -> bool:
    """A rep sees their own leads; a team lead's key every lead."""
    return handoff is not None and session.owner in (None, handoff.get("owner"))


def _not_found(lead_id: str, session: Session) -> Response:
    return problem(404, "Lead not found",
                   f"There is no lead {lead_id[:_ID_LENGTH]!r} among the leads you can see. "
                   "It may have been handed to another rep.", session)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# signing in and out


@router.get("")
async def root(request: Request) -> Response:
    """The workspace starts at the queue (signed in) or the sign-in form."""
    return redirect("/app/queue") if _session(request) is not None else _to_login(request)


@router.get("/login")
async def login_page(request: Request) -> Response:
    """The sign-in form (the queue when already signed in)."""
    if _session(request) is not None:
        return redirect("/app/queue")
    return render("login.html", error=None)


@router.post("/login")
async def login(request: Request, form: Form) -> Response:
    """Sign in with a key that has the `rep` scope: a session cookie and the queue."""
    if _cross_site(request):
        return problem(403, "Sign-in refused", "Sign in from leadscore's own sign-in page.")
    keys: KeyRing = request.app.state.keys
    presented = form.get("api_key", "").strip()
    key = keys.lookup(presented) if presented else None
    if key is None or REP_SCOPE not in key.scopes:
        error = (
            "That key was not accepted. Check it and try again."
            if key is None
            else "This key cannot sign in here: it needs the rep scope."
        )
        return render("login.html", 401, error=error)
    sessions: Sessions = request.app.state.sessions
    value, _ = sessions.issue(key, time.time())
    log.info("pages: key %s signed in (rep %s)", key.key_id, key.owner or "all")
    response = redirect("/app/queue")
    set_cookie(response, request, value)
    return response


@router.post("/logout")
async def logout(request: Request, form: Form) -> Response:
    """Sign out: the cookie is cleared (a form with the session's CSRF token)."""
    session = _session(request)
    if session is not None and not session.csrf_ok(form.get("csrf_token")):
        expired = "This form has expired. Reload the page and try again."
        return problem(403, "Sign-out refused", expired, session)
    response = redirect("/app/login")
    clear_cookie(response, request)
    return response


# ---------------------------------------------------------------------------------------------
# the queue


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters as given ("" for none): the rep (a team lead's choice, else the
    key's own rep), tier, SLA breached (true / false, as the API says it) and the page."""

    owner: str
    tier: str
    breached: str
    page: int = 1

    def problem(self) -> str | None:
        """What is not understood, for the rep; None when every filter is."""
        if len(self.owner) > NAME_LENGTH:
            return f"A rep id has at most {NAME_LENGTH} characters."
        if self.tier and self.tier not in TIERS:
            return "Tier must be A, B, C or D."
        if self.breached not in ("", *_BREACHED):
            return "SLA must be overdue (true) or on time (false)."
        return None

    def link(self, page: int, team_lead: bool) -> str:
        """The queue's address with these filters on another page."""
        given = {"owner": self.owner if team_lead else "", "tier": self.tier,
                 "breached": self.breached}  # fmt: skip
        return "/app/queue?" + urlencode({k: v for k, v in given.items() if v} | {"page": page})


def _queue_filters(
    session: Session, owner: str | None, tier: str | None, breached: str | None, page: str | None
) -> tuple[QueueFilters, str | None]:
    """The filters as given (for the form) and a message if one is not understood."""
    number = int(page) if page and page.isdigit() and 1 <= int(page) <= 1_000_000 else None
    filters = QueueFilters(
        owner=(owner or "").strip() if session.owner is None else session.owner,
        tier=(tier or "").strip().upper(),
        breached=(breached or "").strip().lower(),
        page=number or 1,
    )
    if page and number is None:
        return filters, "Page must be a whole number from 1."
    return filters, filters.problem()


@router.get("/queue")
def queue(
    request: Request,
    owner: str | None = None,
    tier: str | None = None,
    breached: str | None = None,
    page: str | None = None,
) -> Response:
    """The waiting leads, oldest first, filtered."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    loop = _loop(request)
    if loop.store is None:
        return _store_down(session)
    filters, error = _queue_filters(session, owner, tier, breached, page)
    context: dict[str, Any] = {"session": session, "filters": filters, "tiers": TIERS}
    if error is not None:
        return render("queue.html", 422, error=error, rows=[], total=0, pages=None, **context)
    now = datetime.now(UTC)
    breached_only = _BREACHED.get(filters.breached)
    first = (filters.page - 1) * PAGE_SIZE
    total, items = loop.store.queue(
        now, "waiting", breached_only, filters.owner or None, PAGE_SIZE, first,
        filters.tier or None,
    )  # fmt: skip
    rows = [views.queue_row(item, loop.sla, now) for item in items]
    team_lead = session.owner is None
    pages = {
        "first": first + 1, "last": first + len(rows), "total": total,
        "previous": filters.link(filters.page - 1, team_lead) if filters.page > 1 else None,
        "next": filters.link(filters.page + 1, team_lead) if first + len(rows) < total else None,
    }  # fmt: skip
    return render("queue.html", error=None, rows=rows, total=total, pages=pages, **context)


# ---------------------------------------------------------------------------------------------
# the lead card and the verdict


def _card_page(
    request: Request,
    session: Session,
    handoff: dict[str, Any],
    status: int = 200,
    error: str | None = None,
    given: dict[str, str] | None = None,
) -> Response:
    loop = _loop(request)
    served: Served | None = request.app.state.holder.current
    now = datetime.now(UTC)
    return render(
        "lead.html", status, session=session, card=views.card(handoff, loop.sla, loop.taxonomy,
        served, now), reasons=views.reason_options(loop.taxonomy), error=error,
        given=given or {}, form_id=secrets.token_urlsafe(16), note_length=NOTE_LENGTH,
    )  # fmt: skip


@router.get("/leads/{lead_id}")
def lead_card(request: Request, lead_id: str) -> Response:
    """One lead: the score as shown at the handoff and the verdict form."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    store = _loop(request).store
    if store is None:
        return _store_down(session)
    handoff = store.lead_view(lead_id, datetime.now(UTC)) if len(lead_id) <= _ID_LENGTH else None
    if handoff is None or not _visible(session, handoff):
        return _not_found(lead_id, session)
    return _card_page(request, session, handoff)


def _verdict(form: dict[str, str], rep: str) -> tuple[FeedbackIn | None, str | None]:
    """The form's verdict checked by the API's own rules, or a message for the rep."""
    disposition = form.get("disposition", "")
    reason = form.get("reason", "").strip() or None
    note = form.get("note", "").strip() or None
    if disposition == "accepted":
        reason = None  # the select always sends its value; it only matters for a rejection
    if disposition == "rejected" and reason is None:
        return None, "Choose a reason to reject the lead."
    try:
        body = FeedbackIn.model_validate(
            {"disposition": disposition, "reason": reason, "note": note, "rep": rep}
        )
    except ValidationError as exc:
        fields = {str(e["loc"][0]) if e["loc"] else "" for e in exc.errors()}
        if "note" in fields:
            return None, f"The note is too long: at most {NOTE_LENGTH} characters."
        return None, "Choose Accept, or a reason and Reject."
    return body, None


@router.post("/leads/{lead_id}/feedback")
def post_feedback(request: Request, lead_id: str, form: Form) -> Response:
    """Store the rep's verdict (as `POST /v1/leads/{id}/feedback` does) and go back to the
    queue. A double submit of one form stores one verdict (the form's id is its
    idempotency key)."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    if _cross_site(request) or not session.csrf_ok(form.get("csrf_token")):
        return problem(403, "Verdict refused",
                       "This form has expired or did not come from this page. Reload the "
                       "lead and give your verdict again.", session)  # fmt: skip
    loop = _loop(request)
    store = loop.store
    if store is None:
        return _store_down(session)
    now = datetime.now(UTC)
    handoff = store.lead_view(lead_id, now) if len(lead_id) <= _ID_LENGTH else None
    if handoff is None or not _visible(session, handoff):
        return _not_found(lead_id, session)
    body, error = _verdict(form, session.rep)
    taxonomy = loop.taxonomy
    if body is not None and body.reason and taxonomy and body.reason not in taxonomy.reason_ids:
        body, error = None, "Choose one of the listed reasons."
    if body is None:
        return _card_page(request, session, handoff, 422, error, form)
    given = FeedbackInput(disposition=body.disposition, decided_at=now, reason=body.reason,
                          note=body.note, rep=body.rep)  # fmt: skip
    form_id = form.get("form_id", "")
    key = f"app:{form_id}" if 16 <= len(form_id) <= 64 and form_id.isascii() else None
    digest = request_digest(lead_id, body.model_dump(mode="json", exclude_none=True))
    try:
        store.add_feedback(lead_id, given, key, now, digest)
    except NoHandoff:
        return _not_found(lead_id, session)
    except IdempotencyConflict:
        return problem(409, "Already answered",
                       "This form was already sent with another verdict. Open the lead again "
                       "to see what is stored.", session)  # fmt: skip
    log.info("pages: %s %s lead %s", session.rep, body.disposition, lead_id)
    return redirect("/app/queue")


@router.get("/{rest:path}")
async def unknown_page(request: Request, rest: str) -> Response:
    """Any other address under /app: the sign-in page without a session, else a 404 page."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    return problem(404, "Page not found", "There is no such page. Go back to your queue.",
                   session)  # fmt: skip
