"""What the service, the CLI and the reports do with the store: record handoffs, take feedback
and outcomes, list the queue, and read it all back as frames.

Every write is one transaction that is committed before the call returns, so a caller that
acknowledges after the call (the feedback route) never acknowledges something the database
does not have.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import pandas as pd
from sqlalchemy import Engine, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadscore.features.errors import LeadscoreError
from leadscore.serving.store.db import connect, current_revision, head_revision, migrate
from leadscore.serving.store.tables import Feedback, Handoff, Outcome

ROUTED = ("route_to_sales", "qualify")
Status = Literal["waiting", "accepted", "rejected", "all"]
RecordMode = Literal["routed", "all", "none"]
_RETRIES = 3
_IN_CHUNK = 500  # lead ids per IN (...) list


class NoHandoff(LeadscoreError):
    """The lead was never handed to sales, so it cannot take a verdict."""


class IdempotencyConflict(LeadscoreError):
    """An idempotency key was reused for a different request."""


@dataclass(frozen=True)
class ScoreRecord:
    """One score as the service showed it, to be kept if it routes the lead."""

    lead_id: str
    handed_off_at: datetime  # the moment the lead was scored as of (the SLA clock starts here)
    scored_at: datetime  # wall clock of the score
    action: str
    tier: str
    probability: float
    owner: str | None = None
    source: str | None = None
    lead_created_at: datetime | None = None
    model_name: str | None = None
    model_version: str | None = None
    criteria_version: str | None = None
    criteria_verdict: str | None = None
    due_at: datetime | None = None
    sla_version: str | None = None
    shown: dict[str, Any] = field(default_factory=dict)
    lead: dict[str, Any] | None = None  # the body as scored: lead, account, contact, events, as_of


@dataclass(frozen=True)
class FeedbackInput:
    """A rep's verdict on the lead's latest handoff."""

    disposition: str
    decided_at: datetime
    reason: str | None = None
    note: str | None = None
    rep: str | None = None
    first_touch_at: datetime | None = None

    def digest(self, lead_id: str) -> str:
        """A digest of the verdict, to tell a retry from a different request under one key."""
        return request_digest(lead_id, self.__dict__)


def request_digest(lead_id: str, body: dict[str, Any]) -> str:
    """SHA-256 of a lead id and a request body (canonical JSON)."""
    data = {"lead_id": lead_id, **body}
    text = json.dumps(data, sort_keys=True, default=lambda v: v.isoformat())
    return hashlib.sha256(text.encode()).hexdigest()


def feedback_dict(row: Feedback) -> dict[str, Any]:
    """A stored feedback record as plain data (the API's response body)."""
    return {
        "id": row.id, "handoff_id": row.handoff_id, "lead_id": row.lead_id,
        "disposition": row.disposition, "reason": row.reason, "note": row.note, "rep": row.rep,
        "first_touch_at": row.first_touch_at, "decided_at": row.decided_at,
        "recorded_at": row.recorded_at,
    }  # fmt: skip


def outcome_dict(row: Outcome) -> dict[str, Any]:
    """A stored outcome as plain data."""
    return {
        "lead_id": row.lead_id, "sql_at": row.sql_at, "won_at": row.won_at,
        "lost_at": row.lost_at, "origin": row.origin, "updated_at": row.updated_at,
    }  # fmt: skip


def breached(row: Handoff, now: datetime) -> bool:
    """Whether the handoff missed its SLA: touched after the deadline, or not touched by a
    deadline that has passed. No deadline (no SLA target): never."""
    if row.due_at is None:
        return False
    if row.first_touch_at is not None:
        return row.first_touch_at > row.due_at
    return now >= row.due_at


def handoff_dict(row: Handoff, now: datetime) -> dict[str, Any]:
    """A handoff as the queue shows it."""
    status = row.disposition or "waiting"
    return {
        "id": row.id, "lead_id": row.lead_id, "owner": row.owner, "source": row.source,
        "lead_created_at": row.lead_created_at, "handed_off_at": row.handed_off_at,
        "action": row.action, "tier": row.tier, "probability": row.probability,
        "model": {"name": row.model_name, "version": row.model_version},
        "criteria_version": row.criteria_version, "criteria_verdict": row.criteria_verdict,
        "due_at": row.due_at, "breached": breached(row, now), "status": status,
        "first_touch_at": row.first_touch_at, "disposition": row.disposition,
        "disposition_reason": row.disposition_reason, "dispositioned_at": row.dispositioned_at,
        "rep": row.rep, "score_count": row.score_count,
        "latest": {
            "scored_at": row.latest_scored_at, "probability": row.latest_probability,
            "tier": row.latest_tier, "action": row.latest_action,
            "model_version": row.latest_model_version,
            "criteria_version": row.latest_criteria_version,
            "criteria_verdict": row.latest_criteria_verdict,
        },
        "shown": row.shown,
    }  # fmt: skip


class HandoffStore:
    """The handoff store on one database (see :mod:`leadscore.serving.store`)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, upgrade: bool = True) -> HandoffStore:
        """Open the store at `url`, migrating its schema to this code's head first (unless
        `upgrade` is false, when a store behind the code is refused)."""
        from leadscore.serving.store.db import StoreError

        engine = connect(url)
        if upgrade:
            migrate(engine)
        else:
            at, head = current_revision(engine), head_revision(engine)
            if at != head:
                raise StoreError(
                    f"the store is at schema {at or 'none'}, this code needs {head}: "
                    "run `leadscore store upgrade`"
                )
        return cls(engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._session() as session, session.begin():
            yield session

    # -----------------------------------------------------------------------------------------
    # handoffs

    def record(self, records: Sequence[ScoreRecord], mode: RecordMode = "routed") -> int:
        """Keep the scores that hand a lead over (`mode` routed) or all of them (`all`), in one
        transaction; returns how many rows were written. A score of a lead with an open
        handoff updates its latest score and keeps the first."""
        kept = [r for r in records if mode == "all" or (mode == "routed" and r.action in ROUTED)]
        if not kept:
            return 0
        for attempt in range(_RETRIES):
            try:
                with self._tx() as session:
                    self._record_batch(session, kept)
                return len(kept)
            except IntegrityError:  # another worker opened the same lead's handoff: re-read
                if attempt == _RETRIES - 1:
                    raise
        return 0  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _record_batch(session: Session, records: Sequence[ScoreRecord]) -> None:
        """The batch as plain rows through SQLAlchemy Core: one query for the open handoffs,
        one multi-row insert, one executemany update. The writer thread shares the GIL with
        the request path, so its Python work per record is kept small."""
        table = cast(Table, Handoff.__table__)
        leads = sorted({r.lead_id for r in records})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(leads), _IN_CHUNK):
            chunk = leads[start : start + _IN_CHUNK]
            query = select(
                table.c.id, table.c.lead_id, table.c.action, table.c.score_count, table.c.owner
            ).where(table.c.lead_id.in_(chunk), table.c.closed.is_(False))
            for hit in session.execute(query):
                found[hit.lead_id] = {
                    "b_id": hit.id, "action": hit.action,
                    "score_count": hit.score_count, "owner": hit.owner,
                }  # fmt: skip
        opened: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}
        for r in records:
            row = opened.get(r.lead_id)
            if row is None and r.lead_id not in found:
                opened[r.lead_id] = _first_score(r) | _latest_score(r) | {
                    "score_count": 1, "closed": False
                }
                continue
            if row is None:
                row = changed.setdefault(r.lead_id, dict(found[r.lead_id]))
            if row["action"] not in ROUTED and r.action in ROUTED:
                row.update(_first_score(r))  # recorded while nurtured (mode all): now handed over
            row.update(_latest_score(r))
            row["score_count"] += 1
            row["owner"] = row["owner"] or r.owner
        if opened:
            session.execute(insert(table), list(opened.values()))
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changed.values():
            columns = tuple(sorted(k for k in change if k != "b_id"))
            by_columns.setdefault(columns, []).append(change)
        for columns, rows in by_columns.items():
            # bound names must differ from the column names in an executemany UPDATE
            statement = (
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values({c: bindparam(f"p_{c}") for c in columns})
            )
            params = [{"b_id": r["b_id"]} | {f"p_{c}": r[c] for c in columns} for r in rows]
            session.connection().execute(statement, params)

    def latest_handoff(self, lead_id: str) -> dict[str, Any] | None:
        """The lead's newest handoff, or None."""
        with self._session() as session:
            row = self._latest(session, lead_id)
            return None if row is None else handoff_dict(row, datetime.now(UTC))

    def lead_view(self, lead_id: str, now: datetime) -> dict[str, Any] | None:
        """The lead's newest handoff as the queue shows it plus ``lead``, the body it was
        scored with (None when not kept), or None when the lead was never handed over."""
        with self._session() as session:
            row = self._latest(session, lead_id)
            return None if row is None else handoff_dict(row, now) | {"lead": row.lead}

    @staticmethod
    def _latest(session: Session, lead_id: str) -> Handoff | None:
        query = select(Handoff).where(Handoff.lead_id == lead_id, Handoff.action.in_(ROUTED))
        return session.scalars(query.order_by(Handoff.id.desc()).limit(1)).one_or_none()

    def queue(
        self,
        now: datetime,
        status: Status = "waiting",
        breached_only: bool | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
        tier: str | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Handoffs oldest first, filtered; (total matching, one page)."""
        query = select(Handoff).where(Handoff.action.in_(ROUTED))
        if status == "waiting":
            query = query.where(Handoff.disposition.is_(None))
        elif status != "all":
            query = query.where(Handoff.disposition == status)
        if owner is not None:
            query = query.where(Handoff.owner == owner)
        if tier is not None:
            query = query.where(Handoff.tier == tier)
        if breached_only is not None:
            late = or_(
                and_(Handoff.first_touch_at.is_not(None), Handoff.first_touch_at > Handoff.due_at),
                and_(Handoff.first_touch_at.is_(None), Handoff.due_at <= now),
            )
            cond = and_(Handoff.due_at.is_not(None), late)
            query = query.where(cond if breached_only else ~cond)
        with self._session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = session.scalars(
                query.order_by(Handoff.handed_off_at, Handoff.id).limit(limit).offset(offset)
            ).all()
            return int(total), [handoff_dict(row, now) for row in page]

    # -----------------------------------------------------------------------------------------
    # feedback

    def add_feedback(
        self,
        lead_id: str,
        given: FeedbackInput,
        key: str | None,
        now: datetime,
        digest: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store a verdict on the lead's latest handoff and apply it; (record, replayed). With
        an idempotency `key` a retry returns the stored record and writes nothing; `digest`
        identifies the request as sent (default: the verdict's fields), so that a retry whose
        defaults (the decision's moment) differ still counts as the same request."""
        digest = digest or given.digest(lead_id)
        for attempt in range(_RETRIES):
            try:
                with self._tx() as session:
                    if key is not None:
                        stored = self._by_key(session, key)
                        if stored is not None:
                            return self._replay(stored, digest, key), True
                    row = self._apply(session, lead_id, given, key, digest, now)
                    return feedback_dict(row), False
            except IntegrityError:  # a concurrent request with the same key won the race
                if key is None or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _by_key(session: Session, key: str) -> Feedback | None:
        return session.scalars(select(Feedback).where(Feedback.idempotency_key == key)).first()

    @staticmethod
    def _replay(stored: Feedback, digest: str, key: str) -> dict[str, Any]:
        if stored.request_digest != digest:
            raise IdempotencyConflict(
                f"Idempotency-Key {key!r} was used for a different request (feedback "
                f"{stored.id} on lead {stored.lead_id!r}); use a new key for a new request"
            )
        return feedback_dict(stored)

    def _apply(
        self,
        session: Session,
        lead_id: str,
        given: FeedbackInput,
        key: str | None,
        digest: str,
        now: datetime,
    ) -> Feedback:
        handoff = self._latest(session, lead_id)
        if handoff is None:
            raise NoHandoff(
                f"lead {lead_id!r} has no handoff record: only leads handed to sales "
                "(scored with action route_to_sales or qualify while recording) take feedback"
            )
        touched = given.first_touch_at or given.decided_at
        row = Feedback(
            handoff_id=handoff.id, lead_id=lead_id, disposition=given.disposition,
            reason=given.reason, note=given.note, rep=given.rep,
            first_touch_at=given.first_touch_at, decided_at=given.decided_at, recorded_at=now,
            idempotency_key=key, request_digest=digest,
        )  # fmt: skip
        session.add(row)
        if handoff.first_touch_at is None or touched < handoff.first_touch_at:
            handoff.first_touch_at = touched
        handoff.disposition = given.disposition
        handoff.disposition_reason = given.reason
        handoff.dispositioned_at = given.decided_at
        handoff.rep = given.rep or handoff.rep
        handoff.closed = given.disposition == "rejected"
        session.flush()
        return row

    def lead_feedback(self, lead_id: str) -> list[dict[str, Any]]:
        """Every verdict on the lead, oldest first (:class:`NoHandoff` if it has none)."""
        with self._session() as session:
            if self._latest(session, lead_id) is None:
                raise NoHandoff(f"lead {lead_id!r} has no handoff record")
            rows = session.scalars(
                select(Feedback).where(Feedback.lead_id == lead_id).order_by(Feedback.id)
            ).all()
            return [feedback_dict(r) for r in rows]

    def feedback_ids(self) -> list[int]:
        """Every stored feedback id (tests and checks)."""
        with self._session() as session:
            return list(session.scalars(select(Feedback.id).order_by(Feedback.id)))

    # -----------------------------------------------------------------------------------------
    # outcomes

    def add_outcome(
        self,
        lead_id: str,
        dates: dict[str, datetime | None],
        origin: str,
        now: datetime,
        require_handoff: bool = True,
    ) -> dict[str, Any]:
        """Set the given outcome dates of a lead (others kept)."""
        with self._tx() as session:
            if require_handoff and self._latest(session, lead_id) is None:
                raise NoHandoff(
                    f"lead {lead_id!r} has no handoff record: outcomes are kept for leads "
                    "handed to sales (import a source with `leadscore handoff import-outcomes`)"
                )
            row = session.get(Outcome, lead_id)
            if row is None:
                row = Outcome(lead_id=lead_id, origin=origin, updated_at=now)
                session.add(row)
            for name in ("sql_at", "won_at", "lost_at"):
                if dates.get(name) is not None:
                    setattr(row, name, dates[name])
            row.origin, row.updated_at = origin, now
            session.flush()
            return outcome_dict(row)

    def import_outcomes(self, outcomes: pd.DataFrame, origin: str, now: datetime) -> int:
        """Outcome dates of every handed-over lead found in `outcomes` (canonical columns
        lead_id, sql_at, won_at, lost_at); returns how many leads were updated."""
        with self._session() as session:
            known = set(session.scalars(select(Handoff.lead_id).distinct()))
        rows = outcomes[outcomes["lead_id"].astype(str).isin(known)]
        count = 0
        with self._tx() as session:
            for rec in rows.to_dict("records"):
                lead = str(rec["lead_id"])
                row = session.get(Outcome, lead) or Outcome(lead_id=lead)
                for name in ("sql_at", "won_at", "lost_at"):
                    setattr(row, name, _moment(rec.get(name)))
                row.origin, row.updated_at = origin, now
                session.add(row)
                count += 1
        return count

    # -----------------------------------------------------------------------------------------
    # reading back

    def frames(self, since: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(handoffs, outcomes) as the reports read them: one row per handoff handed over at or
        after `since`, and the outcomes of those leads. Datetimes are UTC."""
        query = select(Handoff).where(Handoff.action.in_(ROUTED))
        if since is not None:
            query = query.where(Handoff.handed_off_at >= since)
        with self._session() as session:
            rows = session.scalars(query.order_by(Handoff.id)).all()
            leads = {r.lead_id for r in rows}
            found = session.scalars(select(Outcome)).all()
        handoffs = pd.DataFrame([_frame_row(r) for r in rows], columns=HANDOFF_COLUMNS)
        outcomes = pd.DataFrame(
            [outcome_dict(o) for o in found if o.lead_id in leads],
            columns=["lead_id", "sql_at", "won_at", "lost_at", "origin", "updated_at"],
        )
        for frame in (handoffs, outcomes):
            for col in frame.columns:
                if col.endswith("_at"):
                    frame[col] = pd.to_datetime(frame[col], utc=True)
        return handoffs, outcomes

    def export_feedback(self) -> pd.DataFrame:
        """Each handed-over lead's latest verdict (the feedback file that criteria and
        training read: lead_id, disposition, reason, dispositioned_at, rep, note)."""
        with self._session() as session:
            rows = session.execute(
                select(Feedback).order_by(Feedback.lead_id, Feedback.decided_at, Feedback.id)
            ).scalars().all()  # fmt: skip
        latest: dict[str, Feedback] = {}
        for row in rows:
            latest[row.lead_id] = row
        frame = pd.DataFrame(
            [
                {
                    "lead_id": r.lead_id,
                    "disposition": r.disposition,
                    "reason": r.reason,
                    "dispositioned_at": r.decided_at,
                    "rep": r.rep,
                    "note": r.note,
                }
                for r in latest.values()
            ],
            columns=["lead_id", "disposition", "reason", "dispositioned_at", "rep", "note"],
        )
        frame["dispositioned_at"] = pd.to_datetime(frame["dispositioned_at"], utc=True)
        return frame

    def gauges(self, now: datetime) -> dict[str, Any]:
        """Waiting and breached handoffs, and acceptance by tier (for /metrics)."""
        with self._session() as session:
            routed = Handoff.action.in_(ROUTED)
            waiting = session.scalar(
                select(func.count()).where(routed, Handoff.disposition.is_(None))
            )
            late = session.scalar(
                select(func.count()).where(
                    routed, Handoff.disposition.is_(None), Handoff.first_touch_at.is_(None),
                    Handoff.due_at.is_not(None), Handoff.due_at <= now,
                )
            )  # fmt: skip
            by_tier = session.execute(
                select(Handoff.tier, Handoff.disposition, func.count())
                .where(routed, Handoff.disposition.is_not(None))
                .group_by(Handoff.tier, Handoff.disposition)
            ).all()
        tiers: dict[str, dict[str, int]] = {}
        for tier, disposition, n in by_tier:
            tiers.setdefault(tier, {"accepted": 0, "rejected": 0})[str(disposition)] = int(n)
        return {"waiting": int(waiting or 0), "breached": int(late or 0), "by_tier": tiers}


HANDOFF_COLUMNS = [
    "handoff_id", "lead_id", "owner", "source", "lead_created_at", "handed_off_at", "action",
    "tier", "probability", "model_name", "model_version", "criteria_version",
    "criteria_verdict", "due_at", "first_touch_at", "disposition", "disposition_reason",
    "dispositioned_at", "rep", "latest_criteria_version",
]  # fmt: skip


def _frame_row(r: Handoff) -> dict[str, Any]:
    return {
        "handoff_id": r.id, "lead_id": r.lead_id, "owner": r.owner, "source": r.source,
        "lead_created_at": r.lead_created_at, "handed_off_at": r.handed_off_at,
        "action": r.action, "tier": r.tier, "probability": r.probability,
        "model_name": r.model_name, "model_version": r.model_version,
        "criteria_version": r.criteria_version, "criteria_verdict": r.criteria_verdict,
        "due_at": r.due_at, "first_touch_at": r.first_touch_at, "disposition": r.disposition,
        "disposition_reason": r.disposition_reason, "dispositioned_at": r.dispositioned_at,
        "rep": r.rep, "latest_criteria_version": r.latest_criteria_version,
    }  # fmt: skip


def _first_score(r: ScoreRecord) -> dict[str, Any]:
    """The columns a handoff keeps from the score that handed the lead over."""
    return {
        "lead_id": r.lead_id, "owner": r.owner, "source": r.source,
        "lead_created_at": r.lead_created_at, "handed_off_at": r.handed_off_at,
        "recorded_at": r.scored_at, "action": r.action, "tier": r.tier,
        "probability": r.probability, "model_name": r.model_name,
        "model_version": r.model_version, "criteria_version": r.criteria_version,
        "criteria_verdict": r.criteria_verdict, "shown": r.shown, "lead": r.lead,
        "due_at": r.due_at, "sla_version": r.sla_version,
    }  # fmt: skip


def _latest_score(r: ScoreRecord) -> dict[str, Any]:
    """The columns every later score of an open handoff moves."""
    return {
        "latest_scored_at": r.handed_off_at, "latest_probability": r.probability,
        "latest_tier": r.tier, "latest_action": r.action,
        "latest_model_version": r.model_version,
        "latest_criteria_version": r.criteria_version,
        "latest_criteria_verdict": r.criteria_verdict,
    }  # fmt: skip


def _moment(value: Any) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()
