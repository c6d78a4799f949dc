"""The handoff store on SQLite and PostgreSQL (every test here runs on both backends)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from leadscore.serving.store import HandoffStore, migrate
from leadscore.serving.store.db import StoreError, connect, current_revision, head_revision
from leadscore.serving.store.store import (
    FeedbackInput,
    IdempotencyConflict,
    NoHandoff,
    ScoreRecord,
)
from leadscore.serving.store.tables import Base

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York


def rec(lead: str, action: str = "route_to_sales", at: datetime = T0, **kw: object) -> ScoreRecord:
    """A score record with sensible defaults."""
    fields: dict[str, object] = {
        "tier": "A", "probability": 0.4, "due_at": at + timedelta(hours=4), "owner": "rep_1",
        "criteria_version": "2024.1", "criteria_verdict": "sql_ready",
    }  # fmt: skip
    fields.update(kw)
    return ScoreRecord(lead_id=lead, handed_off_at=at, scored_at=at, action=action, **fields)  # type: ignore[arg-type]


def test_migrations_create_exactly_the_tables_the_code_declares(store_url: str) -> None:
    engine = connect(store_url)
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    migrate(engine)  # idempotent
    engine.dispose()


def test_datetimes_come_back_as_the_same_utc_moment(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    berlin = datetime(2026, 7, 1, 18, 30, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    store.record([rec("L1", at=berlin)])
    handoffs, _ = store.frames()
    assert handoffs.loc[0, "handed_off_at"] == pd.Timestamp("2026-07-01T18:30:00Z")
    store.close()


def test_only_routed_scores_are_kept_and_a_rescore_keeps_the_first(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    assert store.record([rec("N1", action="nurture")]) == 0
    store.record([rec("L1", probability=0.4)])
    store.record([rec("L1", probability=0.6, at=T0 + timedelta(hours=1), tier="A")])
    _, page = store.queue(T0, status="all")
    assert [h["lead_id"] for h in page] == ["L1"]
    handoff = page[0]
    assert handoff["probability"] == 0.4 and handoff["handed_off_at"] == T0
    assert handoff["latest"]["probability"] == 0.6 and handoff["score_count"] == 2
    store.record([rec("L2", probability=0.3), rec("L2", probability=0.5)])  # one batch
    _, page = store.queue(T0, status="all")
    twice = [h for h in page if h["lead_id"] == "L2"]
    assert len(twice) == 1 and twice[0]["probability"] == 0.3 and twice[0]["score_count"] == 2
    store.close()


def test_mode_all_keeps_nurtures_and_the_routing_becomes_the_handoff(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    store.record([rec("L1", action="nurture", tier="C", due_at=None)], mode="all")
    assert store.queue(T0, status="all")[0] == 0  # a nurture is not a handoff
    later = T0 + timedelta(days=2)
    store.record([rec("L1", at=later, tier="A")], mode="all")
    total, page = store.queue(later, status="all")
    assert total == 1 and page[0]["handed_off_at"] == later and page[0]["tier"] == "A"
    assert page[0]["score_count"] == 2
    store.close()


def test_a_rejection_closes_the_handoff_and_a_new_routing_opens_another(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    store.record([rec("L1")])
    no = FeedbackInput("rejected", T0 + timedelta(hours=2), reason="unable_to_reach")
    store.add_feedback("L1", no, None, T0)
    store.record([rec("L1", at=T0 + timedelta(days=40))])
    total, page = store.queue(T0 + timedelta(days=40), status="all")
    assert total == 2 and [h["status"] for h in page] == ["rejected", "waiting"]
    store.close()


def test_feedback_applies_to_the_latest_handoff(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    with pytest.raises(NoHandoff, match="'L9' has no handoff record"):
        store.add_feedback("L9", FeedbackInput("accepted", T0), None, T0)
    store.record([rec("L1")])
    touched = T0 + timedelta(hours=1)
    store.add_feedback(
        "L1", FeedbackInput("accepted", T0 + timedelta(hours=3), rep="r", first_touch_at=touched),
        None, T0,
    )  # fmt: skip
    _, [handoff] = store.queue(T0 + timedelta(days=1), status="accepted")
    assert handoff["first_touch_at"] == touched and handoff["rep"] == "r"
    assert handoff["breached"] is False  # touched 1 h after handoff, due after 4 h
    assert [f["disposition"] for f in store.lead_feedback("L1")] == ["accepted"]
    store.close()


def test_an_idempotent_retry_stores_nothing_new(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    store.record([rec("L1")])
    given = FeedbackInput("rejected", T0 + timedelta(hours=1), reason="no_budget", note="frozen")
    first, replayed = store.add_feedback("L1", given, "key-1", T0)
    again, replayed_again = store.add_feedback("L1", given, "key-1", T0 + timedelta(seconds=5))
    assert (replayed, replayed_again) == (False, True)
    assert again == first and store.feedback_ids() == [first["id"]]
    other = FeedbackInput("rejected", T0 + timedelta(hours=1), reason="no_need")
    with pytest.raises(IdempotencyConflict, match="'key-1' was used for a different request"):
        store.add_feedback("L1", other, "key-1", T0)
    assert store.feedback_ids() == [first["id"]]
    store.close()


def test_queue_filters_and_orders_oldest_first(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    now = T0 + timedelta(hours=6)
    store.record([
        rec("late", at=T0 + timedelta(hours=1), owner="ana"),  # due T0+5h, untouched: breached
        rec("early", at=T0, owner="ben"),  # due T0+4h: breached
        rec("fresh", at=T0 + timedelta(hours=5), owner="ana"),  # due T0+9h: on time
        rec("nosla", at=T0, owner="ana", due_at=None),  # no target: never breached
    ])  # fmt: skip
    total, page = store.queue(now)
    assert total == 4 and [h["lead_id"] for h in page] == ["early", "nosla", "late", "fresh"]
    _, page = store.queue(now, breached_only=True)
    assert [h["lead_id"] for h in page] == ["early", "late"]
    _, page = store.queue(now, breached_only=False, owner="ana")
    assert [h["lead_id"] for h in page] == ["nosla", "fresh"]
    _, page = store.queue(now, limit=1, offset=1)
    assert [h["lead_id"] for h in page] == ["nosla"]
    gauges = store.gauges(now)
    assert gauges["waiting"] == 4 and gauges["breached"] == 2
    store.close()


def test_outcomes_merge_and_imports_keep_only_handed_over_leads(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    store.record([rec("L1"), rec("L2")])
    with pytest.raises(NoHandoff):
        store.add_outcome("L9", {"won_at": T0}, "api", T0)
    store.add_outcome("L1", {"sql_at": T0 + timedelta(days=3)}, "api", T0)
    stored = store.add_outcome("L1", {"won_at": T0 + timedelta(days=30)}, "api", T0)
    assert stored["sql_at"] == T0 + timedelta(days=3)  # kept
    assert stored["won_at"] == T0 + timedelta(days=30)
    table = pd.DataFrame({
        "lead_id": ["L2", "L3"], "sql_at": [pd.NaT, pd.NaT],
        "won_at": [pd.NaT, pd.NaT], "lost_at": ["2026-04-01", "2026-04-02"],
    })  # fmt: skip
    assert store.import_outcomes(table, "import:crm", T0) == 1
    _, outcomes = store.frames()
    lost = outcomes.set_index("lead_id")["lost_at"]
    assert list(lost.index) == ["L1", "L2"] and lost["L2"] == pd.Timestamp("2026-04-01", tz="UTC")
    store.close()


def test_export_feedback_gives_each_leads_latest_verdict(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    store.record([rec("L1"), rec("L2")])
    store.add_feedback("L1", FeedbackInput("accepted", T0 + timedelta(hours=1)), None, T0)
    store.add_feedback(
        "L1", FeedbackInput("rejected", T0 + timedelta(hours=2), reason="duplicate"), None, T0
    )
    store.add_feedback("L2", FeedbackInput("accepted", T0 + timedelta(hours=1)), None, T0)
    exported = store.export_feedback().set_index("lead_id")
    assert exported.loc["L1", "disposition"] == "rejected"
    assert exported.loc["L1", "reason"] == "duplicate"
    assert exported.loc["L2", "disposition"] == "accepted"
    store.close()


def test_a_store_behind_the_code_is_refused_without_upgrade(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    with pytest.raises(StoreError, match="run `leadscore store upgrade`"):
        HandoffStore.open(url, upgrade=False)


def test_a_bad_store_url_is_one_clear_line() -> None:
    with pytest.raises(StoreError, match="not a store URL"):
        connect("mysql+nosuchdriver://x")


def _writer(url: str, worker: int, per_worker: int) -> None:
    """One of four processes: its own verdicts, each sent twice under one key, plus the
    next worker's first keys (the same requests a retrying client would send)."""
    store = HandoffStore(connect(url))
    for i in range(per_worker):
        lead = f"W{worker}-{i}"
        given = FeedbackInput("accepted", T0 + timedelta(hours=1), rep=f"rep{worker}")
        store.add_feedback(lead, given, f"k-{lead}", T0)
        store.add_feedback(lead, given, f"k-{lead}", T0)
    nxt = (worker + 1) % 4
    for i in range(per_worker // 2):
        lead = f"W{nxt}-{i}"
        store.add_feedback(lead, FeedbackInput("accepted", T0 + timedelta(hours=1),
                                               rep=f"rep{nxt}"), f"k-{lead}", T0)  # fmt: skip
    store.close()


@pytest.mark.slow
def test_four_workers_writing_at_once_store_each_record_once(store_url: str) -> None:
    per_worker = 40
    store = HandoffStore.open(store_url)
    store.record([rec(f"W{w}-{i}") for w in range(4) for i in range(per_worker)])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_url, w, per_worker)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    exported = store.export_feedback()
    assert len(store.feedback_ids()) == 4 * per_worker  # one per key, whoever sent it
    assert sorted(exported["lead_id"]) == sorted(f"W{w}-{i}" for w in range(4)
                                                 for i in range(per_worker))  # fmt: skip
    store.close()


def _migrate_once(url: str) -> None:
    engine = connect(url)
    migrate(engine)
    engine.dispose()


@pytest.mark.slow
def test_workers_starting_together_migrate_once(store_url: str) -> None:
    """`leadscore serve --workers 4` starts four processes that all migrate at once."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_migrate_once, args=(store_url,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    engine = connect(store_url)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()
