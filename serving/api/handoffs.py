"""The handoff loop's routes: the queue, the rep's verdict, outcomes (scope `feedback`).

The store is opened by the app's lifespan (:func:`open_loop`); a store that cannot be opened
leaves scoring up and answers these routes 503 with the reason. Feedback is committed before the
201 is sent: an acknowledged verdict is in the database. Bodies must be sent as JSON
(`Content-Type: application/json`; 415 otherwise).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi import status as http

from leadscore.features.config import ConfigError
from leadscore.features.errors import LeadscoreError
from leadscore.features.feedback import HandoffConfig, load_handoff_config
from leadscore.serving.api.bodies import BodyError
from leadscore.serving.api.handoff_schemas import (
    FeedbackIn,
    FeedbackOut,
    HandoffPage,
    OutcomeIn,
    OutcomeOut,
)
from leadscore.serving.api.routes import JsonContent
from leadscore.serving.api.schemas import error_responses
from leadscore.serving.auth import FeedbackKey
from leadscore.serving.settings import Settings
from leadscore.serving.sla import SlaConfig, due_at, load_sla
from leadscore.serving.store import HandoffStore
from leadscore.serving.store.recorder import Recorder
from leadscore.serving.store.store import (
    FeedbackInput,
    IdempotencyConflict,
    NoHandoff,
    ScoreRecord,
    request_digest,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["handoffs"])
_FUTURE_SLACK = timedelta(minutes=5)  # clocks differ; beyond this a "future" moment is an error
LeadId = Annotated[str, Path(min_length=1, max_length=200, description="The lead's id.")]
_ERRORS = {
    401: "No API key, or an unknown one.",
    403: "The API key lacks the `feedback` scope.",
    404: "The lead has no handoff record.",
    415: "The body is not JSON: `Content-Type` must be `application/json`.",
    422: "The body breaks the contract: `detail` lists each field and why.",
    503: "The handoff store is not available (the reason is given).",
}


def _responses(*codes: int) -> dict[int | str, Any]:
    return error_responses(_ERRORS, *codes)


@dataclass
class Loop:
    """The store, the recorder and the definitions the routes apply."""

    store: HandoffStore | None = None
    recorder: Recorder | None = None
    sla: SlaConfig | None = None
    taxonomy: HandoffConfig | None = None
    error: str | None = None

    def close(self) -> None:
        """Write what is queued and release the database."""
        if self.recorder is not None:
            self.recorder.stop()
        if self.store is not None:
            self.store.close()


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_BODY_PARTS = ("lead", "account", "contact", "events")


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as None: JSON has no such numbers (PostgreSQL refuses
    them), and a CRM's own fields, which the contract passes through, may carry them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def stored_body(body: Mapping[str, Any] | None, as_of: datetime) -> dict[str, Any] | None:
    """The lead body a handoff keeps: its parts as sent, and the as_of it was scored at (the
    body's, or the moment the service filled in), so that it can be scored again as it was."""
    if body is None:
        return None
    kept = {part: _finite(body[part]) for part in _BODY_PARTS if part in body}
    return kept | {"as_of": as_of.isoformat()}


def score_record_builder(sla: SlaConfig) -> Any:
    """The function the recorder turns a queued score into a :class:`ScoreRecord` with (on
    the writer thread: the request path only queued references)."""

    def build(
        response: Any, lead: Any, handed_off_at: datetime, body: Mapping[str, Any] | None = None
    ) -> ScoreRecord:
        action = response.recommended_action.action
        owner = lead.get("owner")
        created = lead.get("created_at")
        shown = response.model_dump(
            mode="json",
            include={"reasons", "score_by_group", "sql_criteria", "recommended_action",
                     "threshold", "is_mql", "lead_age_days", "stale"},
        )  # fmt: skip
        return ScoreRecord(
            lead_id=response.lead_id, handed_off_at=handed_off_at,
            scored_at=response.scored_at, action=action, tier=response.tier,
            probability=response.mql_probability, owner=None if owner is None else str(owner),
            source=None if lead.get("source") is None else str(lead["source"]),
            lead_created_at=_aware(created),
            model_name=response.model.name, model_version=response.model.version,
            criteria_version=response.sql_criteria.version,
            criteria_verdict=response.sql_criteria.verdict,
            due_at=due_at(sla, handed_off_at, action, response.tier, owner),
            sla_version=sla.version, shown=shown, lead=stored_body(body, response.as_of),
        )  # fmt: skip

    return build


def open_loop(settings: Settings) -> Loop:
    """Open the store and load the SLA and taxonomy (blocking). A failure is kept as the
    loop's `error`: scoring goes on without recording, the loop's routes answer 503."""
    try:
        sla = load_sla(settings.sla_path)
        taxonomy = load_handoff_config(settings.handoff_path)
        store = HandoffStore.open(settings.store_url, upgrade=settings.store_migrate)
    except (ConfigError, LeadscoreError, OSError) as exc:
        log.error("the handoff store is off: %s", exc)
        return Loop(error=str(exc))
    recorder = None
    if settings.record != "none":
        recorder = Recorder(
            store, score_record_builder(sla), settings.record, settings.record_interval_seconds
        )
        recorder.start()
    return Loop(store, recorder, sla, taxonomy)


async def _loop(request: Request) -> Loop:
    loop: Loop = request.app.state.loop
    if loop.store is None:
        raise HTTPException(
            http.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the handoff store is not available: {loop.error or 'starting'}",
        )
    return loop


Open = Annotated[Loop, Depends(_loop)]


def _store(loop: Loop) -> HandoffStore:
    assert loop.store is not None  # _loop checked
    return loop.store


def _not_found(exc: NoHandoff) -> HTTPException:
    return HTTPException(http.HTTP_404_NOT_FOUND, detail=str(exc))


def _check_reason(loop: Loop, body: FeedbackIn) -> None:
    taxonomy = loop.taxonomy
    if body.reason is None or taxonomy is None or body.reason in taxonomy.rejection_reasons:
        return
    known = ", ".join(taxonomy.reason_ids)
    raise BodyError([{
        "loc": ["body", "reason"], "type": "enum",
        "msg": f"unknown rejection reason {body.reason!r}; expected one of: {known}",
    }])  # fmt: skip


def _not_future(name: str, value: datetime | None, now: datetime) -> None:
    if value is not None and value > now + _FUTURE_SLACK:
        raise BodyError([{
            "loc": ["body", name], "type": "datetime_future",
            "msg": f"{value.isoformat()} is in the future (now {now.isoformat()})",
        }])  # fmt: skip


@router.post(
    "/v1/leads/{lead_id}/feedback", status_code=http.HTTP_201_CREATED,
    response_model=FeedbackOut, responses=_responses(401, 403, 404, 415, 422, 503),
    summary="Record a rep's verdict (accepted / rejected with a reason) on a handed-over lead",
)  # fmt: skip
def post_feedback(
    _key: FeedbackKey,
    _json: JsonContent,
    lead_id: LeadId,
    body: FeedbackIn,
    loop: Open,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Makes a retry return the stored record instead of a second one.",
        ),
    ] = None,
) -> FeedbackOut:
    """Store the verdict on the lead's latest handoff. With an `Idempotency-Key` a retry gets
    the stored record (header `Idempotent-Replayed: true`) and nothing new is written; the same
    key with a different body is a 422. Committed before the answer is sent."""
    now = datetime.now(UTC)
    _check_reason(loop, body)
    _not_future("first_touch_at", body.first_touch_at, now)
    _not_future("decided_at", body.decided_at, now)
    given = FeedbackInput(
        disposition=body.disposition, decided_at=body.decided_at or now, reason=body.reason,
        note=body.note, rep=body.rep, first_touch_at=body.first_touch_at,
    )  # fmt: skip
    try:
        digest = request_digest(lead_id, body.model_dump(mode="json", exclude_none=True))
        record, replayed = _store(loop).add_feedback(lead_id, given, idempotency_key, now, digest)
    except NoHandoff as exc:
        raise _not_found(exc) from None
    except IdempotencyConflict as exc:
        raise BodyError([{"loc": ["header", "Idempotency-Key"], "msg": str(exc),
                          "type": "idempotency_conflict"}]) from None  # fmt: skip
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return FeedbackOut(**record)


@router.get(
    "/v1/leads/{lead_id}/feedback", response_model=list[FeedbackOut],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Every verdict on a lead, oldest first",
)  # fmt: skip
def get_feedback(_key: FeedbackKey, lead_id: LeadId, loop: Open) -> list[FeedbackOut]:
    """The lead's verdicts, oldest first (404 when it was never handed over)."""
    try:
        return [FeedbackOut(**r) for r in _store(loop).lead_feedback(lead_id)]
    except NoHandoff as exc:
        raise _not_found(exc) from None


@router.post(
    "/v1/leads/{lead_id}/outcome", response_model=OutcomeOut,
    responses=_responses(401, 403, 404, 415, 422, 503),
    summary="Record what became of a handed-over lead (SQL, won, lost)",
)  # fmt: skip
def post_outcome(
    _key: FeedbackKey, _json: JsonContent, lead_id: LeadId, body: OutcomeIn, loop: Open
) -> OutcomeOut:
    """Set the given outcome dates (the others are kept)."""
    now = datetime.now(UTC)
    for name in ("sql_at", "won_at", "lost_at"):
        _not_future(name, getattr(body, name), now)
    try:
        stored = _store(loop).add_outcome(lead_id, body.model_dump(), "api", now)
    except NoHandoff as exc:
        raise _not_found(exc) from None
    return OutcomeOut(**stored)


@router.get(
    "/v1/handoffs", response_model=HandoffPage,
    responses=_responses(401, 403, 422, 503),
    summary="The handoff queue, oldest first: waiting, breached, by owner",
)  # fmt: skip
def list_handoffs(
    _key: FeedbackKey,
    loop: Open,
    status: Annotated[
        Literal["waiting", "accepted", "rejected", "all"], Query(description="Verdict so far.")
    ] = "waiting",
    breached: Annotated[
        bool | None, Query(description="true: only SLA breaches; false: only on time.")
    ] = None,
    owner: Annotated[str | None, Query(max_length=200, description="The assigned rep.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HandoffPage:
    """Handed-over leads oldest first, with the score as shown, the SLA deadline and whether
    it is breached (first touch after the deadline, or none by a passed deadline)."""
    now = datetime.now(UTC)
    total, items = _store(loop).queue(now, status, breached, owner, limit, offset)
    return HandoffPage.model_validate(
        {"total": total, "limit": limit, "offset": offset, "items": items}
    )
