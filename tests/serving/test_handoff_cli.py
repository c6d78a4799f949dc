"""The handoff loop's commands end to end on a real store (SQLite and PostgreSQL): `report
handoff` on a small fixed store counted by hand, `handoff export-feedback` read back by the
feedback loader, `handoff import-outcomes` from the CRM fixture, `store upgrade|status`, and
one played demo (`handoff simulate`) checked against the store it filled."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from leadscore.cli import app
from leadscore.features.feedback import load_feedback, load_handoff_config
from leadscore.serving.store import HandoffStore
from leadscore.serving.store.store import FeedbackInput, ScoreRecord
from leadscore.serving.store.tables import Feedback, Handoff, Outcome
from tests.serving.conftest import tracking_restored

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "small_crm"
NOW = "2026-03-31T12:00:00Z"
CURRENT = "crit-7"  # the criteria version the report is given (a file of its own)


def t(text: str) -> datetime:
    """A UTC instant in 2026 ("03-02 09" is 2 March 09:00)."""
    return datetime.fromisoformat(f"2026-{text}:00+00:00")


def invoke(args: list[str]) -> Result:
    """Run `leadscore ARGS` in-process (stdout and stderr apart)."""
    return CliRunner().invoke(app, args)


def one_error(result: Result) -> str:
    """The single `error:` line on stderr, with no traceback."""
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def record(
    store: HandoffStore,
    lead: str,
    handed: str,
    due: str | None,
    tier: str = "A",
    criteria: str = CURRENT,
    action: str = "route_to_sales",
) -> None:
    """Hand `lead` over at `handed` with first-touch deadline `due`."""
    at = t(handed)
    store.record([ScoreRecord(
        lead_id=lead, handed_off_at=at, scored_at=at, action=action, tier=tier,
        probability=0.5, owner="ann", source="inbound", lead_created_at=at - timedelta(hours=2),
        model_name="mql", model_version="1", criteria_version=criteria,
        criteria_verdict="sql_ready", due_at=None if due is None else t(due),
    )])  # fmt: skip


def verdict(
    store: HandoffStore,
    lead: str,
    disposition: str,
    decided: str,
    touch: str | None = None,
    reason: str | None = None,
) -> None:
    """A rep's verdict on `lead`, recorded when it was decided."""
    touched = None if touch is None else t(touch)
    given = FeedbackInput(disposition=disposition, decided_at=t(decided), reason=reason,
                          rep="ann", first_touch_at=touched)  # fmt: skip
    store.add_feedback(lead, given, key=None, now=t(decided))


def fill(url: str) -> None:
    """Seven handoffs; as of NOW (31 March 12:00), 30 days back starts 1 March 12:00.

    L0 (3 January, won): in 90 days, not in 12 weeks (from 6 January 12:00) nor 30 days.
    L1 accepted, touched 1 h after handoff, won.      L2 rejected, touched after its deadline, won.
    L3 accepted then rejected (old criteria), touched after 6 h.
    L4 untouched past its deadline.                   L5 handed 2 h ago: deadline still ahead.
    L6 accepted, touched 2 h after handoff.
    """
    store = HandoffStore.open(url)
    try:
        record(store, "L0", "01-03 09", "01-03 13")
        verdict(store, "L0", "accepted", "01-03 12", touch="01-03 10")
        record(store, "L1", "03-02 09", "03-02 13")
        verdict(store, "L1", "accepted", "03-02 12", touch="03-02 10")
        record(store, "L2", "03-05 09", "03-05 13", tier="B")
        verdict(store, "L2", "rejected", "03-06 10", touch="03-06 09", reason="no_budget")
        record(store, "L3", "03-10 09", "03-12 09", tier="C", criteria="crit-6", action="qualify")
        verdict(store, "L3", "accepted", "03-11 09", touch="03-10 15")
        verdict(store, "L3", "rejected", "03-14 09", reason="no_need")
        record(store, "L4", "03-20 09", "03-20 13")
        record(store, "L5", "03-31 10", "03-31 14")
        record(store, "L6", "03-25 09", "03-25 13", tier="B")
        verdict(store, "L6", "accepted", "03-26 09", touch="03-25 11")
        for lead, won in (("L0", "01-20 09"), ("L1", "03-20 09"), ("L2", "03-25 09")):
            store.add_outcome(lead, {"won_at": t(won)}, "test", t(won))
    finally:
        store.close()


@pytest.fixture
def filled(store_url: str, tmp_path: Path) -> dict[str, str]:
    """The fixed store, and a criteria file at version CURRENT."""
    fill(store_url)
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(f'version: "{CURRENT}"\n', encoding="utf-8")
    return {"url": store_url, "criteria": str(criteria)}


def report_args(filled: dict[str, str], *extra: str) -> list[str]:
    return ["report", "handoff", "--store", filled["url"], "--now", NOW,
            "--criteria-file", filled["criteria"], *extra]  # fmt: skip


def test_report_json_headline(filled: dict[str, str]) -> None:
    result = invoke(report_args(filled, "--since", "30d", "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["since"] == "2026-03-01T12:00:00+00:00"
    # L1-L6 in scope; accepted L1, L6; rejected L2, L3 (its latest verdict); waiting L4, L5
    assert data["handoffs"] == 6
    assert (data["accepted"], data["rejected"], data["waiting"]) == (2, 2, 2)
    assert data["acceptance"]["rate"] == 0.5 and data["dispositioned"] == 4
    # touched L1 1 h, L2 24 h, L3 6 h (the later verdict did not move it), L6 2 h after
    # handoff: the median of 1/24, 1/12, 1/4, 1 days is (1/12 + 1/4) / 2 = 1/6
    assert data["touched"] == 4
    assert data["first_touch_days_median"] == pytest.approx(1 / 6)
    # answer windows (30 days) all still open; deadlines passed for L1-L4 and L6, L5's ahead:
    # L2 touched late and L4 never touched leak, of 5; L5 pending
    assert (data["leak"]["count"], data["leak"]["of"], data["pending"]) == (2, 5, 1)
    assert (data["breached"], data["with_sla"]) == (2, 6)
    # L3 was scored with crit-6; the other five with the current crit-7
    assert (data["shared_definition"]["count"], data["shared_definition"]["of"]) == (5, 6)
    # won: L1, L2 (L0 is out of scope); L2 rejected, then won
    assert (data["conversion"]["count"], data["said_no_customer_yes"]) == (2, 1)
    assert data["benchmarks"]["acceptance_rate"] == 0.44


def test_report_text_has_benchmarks_and_definitions(filled: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    result = invoke(report_args(filled, "--since", "30d", "--html", str(out)))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Acceptance rate" in text and "2 of 4 answered handoffs accepted" in text
    for benchmark in ("vs 44%", "vs 14 days", "vs 23%", "vs 32%"):
        assert benchmark in text
    headline_at, definitions_at = text.index("Acceptance rate"), text.index("Definitions")
    assert headline_at < definitions_at
    assert "Acceptance rate: accepted handoffs" in text[definitions_at:]
    assert "Leaked: handoffs" in text[definitions_at:]
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "50.0%" in html


@pytest.mark.parametrize(("since", "handoffs"), [
    ("90d", 7),  # from 31 December 12:00: L0 too
    ("12w", 6),  # from 6 January 12:00: not L0 (3 January)
    ("2026-03-05", 5),  # the whole of 5 March: L2 (09:00) to L6
])  # fmt: skip
def test_since_forms(filled: dict[str, str], since: str, handoffs: int) -> None:
    result = invoke(report_args(filled, "--since", since, "--json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["handoffs"] == handoffs


def test_bad_since_is_one_usage_line(filled: dict[str, str]) -> None:
    result = invoke(report_args(filled, "--since", "lately", "--json"))
    assert result.exit_code == 2
    line = one_error(result)
    assert "--since 'lately' is not a date" in line
    assert result.stdout == ""


def test_store_that_is_not_a_url(tmp_path: Path) -> None:
    result = invoke(["report", "handoff", "--store", "handoffs.db", "--json"])
    assert result.exit_code == 1
    line = one_error(result)
    assert "'handoffs.db' is not a store URL" in line and "sqlite:///FILE" in line


def test_export_feedback_round_trip(filled: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    result = invoke(["handoff", "export-feedback", "--store", filled["url"], "--out", str(out)])
    assert result.exit_code == 0, result.output
    read = load_feedback(out, load_handoff_config())
    got = {r.lead_id: (r.disposition, None if pd.isna(r.reason) else r.reason,
                       r.dispositioned_at) for r in read.itertuples()}  # fmt: skip

    def naive(text: str) -> pd.Timestamp:
        return pd.Timestamp(t(text)).tz_localize(None)

    # one verdict per answered lead, L3's latest (the rejection); L4, L5 never answered
    assert got == {
        "L0": ("accepted", None, naive("01-03 12")),
        "L1": ("accepted", None, naive("03-02 12")),
        "L2": ("rejected", "no_budget", naive("03-06 10")),
        "L3": ("rejected", "no_need", naive("03-14 09")),
        "L6": ("accepted", None, naive("03-26 09")),
    }
    assert read.attrs["superseded"] == 0  # the export already kept the latest only


def test_import_outcomes_only_for_handed_over_leads(store_url: str) -> None:
    store = HandoffStore.open(store_url)
    try:
        for lead in ("l0000", "l0001", "l0003", "x-not-in-crm"):
            record(store, lead, "03-02 09", "03-02 13")
    finally:
        store.close()
    result = invoke(["handoff", "import-outcomes", "--data", str(FIXTURE), "--store", store_url])
    assert result.exit_code == 0, result.output
    assert "outcomes of 3 handed-over leads" in result.stderr
    store = HandoffStore.open(store_url)
    try:
        with store.engine.connect() as conn:
            rows = {r.lead_id: r for r in conn.execute(select(Outcome))}
    finally:
        store.close()
    # the fixture has every lead (most without dates); only the three handed over are kept
    assert sorted(rows) == ["l0000", "l0001", "l0003"]
    # tests/fixtures/small_crm/outcomes.csv: l0001,2024-01-20 08:15:11,2024-02-08 05:50:25,
    l0001 = rows["l0001"]
    assert l0001.sql_at == datetime(2024, 1, 20, 8, 15, 11, tzinfo=UTC)
    assert l0001.won_at == datetime(2024, 2, 8, 5, 50, 25, tzinfo=UTC)
    assert l0001.lost_at is None
    assert rows["l0000"].won_at is None and rows["l0000"].sql_at is None


def test_store_upgrade_then_status(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = invoke(["store", "upgrade", "--store", url])
    assert result.exit_code == 0, result.output
    assert "store schema empty -> " in result.stdout
    now = datetime.now(UTC)
    store = HandoffStore.open(url, upgrade=False)
    try:
        # deadlines around the real clock: status reads it
        for lead, due in (("late", now - timedelta(days=1)), ("early", now + timedelta(days=1)),
                          ("done", now + timedelta(days=1))):  # fmt: skip
            store.record([ScoreRecord(lead_id=lead, handed_off_at=now - timedelta(days=2),
                                      scored_at=now, action="route_to_sales", tier="A",
                                      probability=0.5, due_at=due)])  # fmt: skip
        store.add_feedback("done", FeedbackInput("accepted", now), None, now)
    finally:
        store.close()
    result = invoke(["store", "status", "--store", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "waiting 2 (breached 1); answered 1"


def test_status_of_a_store_never_migrated(tmp_path: Path) -> None:
    result = invoke(["store", "status", "--store", f"sqlite:///{tmp_path / 'bare.db'}"])
    assert result.exit_code == 1
    line = one_error(result)
    assert "schema none" in line and "run `leadscore store upgrade`" in line


@pytest.mark.slow
def test_simulate_fills_a_consistent_store(
    trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with tracking_restored():
        monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
        result = invoke(["handoff", "simulate", "--data", str(trained["bundle"]), "--store", url,
                         "--max-leads", "300", "--weeks", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    end = datetime.fromisoformat(result.stdout.strip())
    assert end.tzinfo is not None
    found = re.search(r"([\d,]+) handoffs, \d+ reps, ([\d,]+) verdicts, ([\d,]+) outcomes",
                      result.stderr)  # fmt: skip
    assert found, result.stderr
    counts = [int(n.replace(",", "")) for n in found.groups()]
    printed = dict(zip(("handoffs", "verdicts", "outcomes"), counts, strict=True))
    assert printed["handoffs"] > 0 and printed["verdicts"] > 0

    store = HandoffStore.open(url, upgrade=False)
    try:
        with store.engine.connect() as conn:
            handoffs = {r.id: r.lead_id for r in conn.execute(select(Handoff.id, Handoff.lead_id))}
            feedback = conn.execute(
                select(Feedback.handoff_id, Feedback.lead_id, Feedback.decided_at)
            ).all()
            known = conn.execute(
                select(Outcome.lead_id, Outcome.sql_at, Outcome.won_at, Outcome.lost_at)
            ).all()
    finally:
        store.close()
    assert len(handoffs) == printed["handoffs"]
    assert len(feedback) == printed["verdicts"]
    assert all(handoffs.get(f.handoff_id) == f.lead_id for f in feedback)
    assert max(f.decided_at for f in feedback) <= end
    outcomes = {o.lead_id for o in known}
    assert len(outcomes) == printed["outcomes"] and outcomes <= set(handoffs.values())
    # the outcomes posted are those known by the clock's end
    assert all(d <= end for o in known for d in (o.sql_at, o.won_at, o.lost_at) if d)

    result = invoke(["report", "handoff", "--store", url, "--now", end.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # every handoff is inside the default 90 days (the play spans 2 weeks + 30 days), and each
    # was answered at most once
    assert data["handoffs"] == printed["handoffs"]
    assert data["dispositioned"] == printed["verdicts"]
