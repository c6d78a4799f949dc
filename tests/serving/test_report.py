"""The handoff report: every headline number and a few table cells of a small fixed scenario,
counted by hand; the empty and degenerate cases; the HTML is self-contained and escaped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from leadscore.features.errors import LeadscoreError
from leadscore.features.feedback import load_handoff_config
from leadscore.serving.store.report import (
    HANDOFF_COLUMNS,
    OUTCOME_COLUMNS,
    HandoffReport,
    build_report,
    headline,
    render_html,
    render_text,
)

NOW = pd.Timestamp("2026-03-31 12:00", tz="UTC").to_pydatetime()
SINCE = pd.Timestamp("2026-03-01 00:00", tz="UTC").to_pydatetime()
TAXONOMY = load_handoff_config()
WINDOW_DAYS = 5.0


def t(text: str | None) -> pd.Timestamp | None:
    """A UTC instant in March 2026 ("03-02 09" is 2 March 09:00), or None."""
    return None if text is None else pd.Timestamp(f"2026-{text}:00", tz="UTC")


def third_of_calendar(owner: str | None, start: datetime, end: datetime) -> float:
    """A stand-in calendar: one business hour per three calendar hours (so the business-hours
    numbers differ from the calendar ones and show the callable is used)."""
    return (end - start).total_seconds() / 3600 / 3


# id, lead, owner, source, tier, probability, criteria version, created, handed off, due,
# first touch, disposition, reason, dispositioned at
SCENARIO: list[tuple[Any, ...]] = [
    # before `since`: out of scope (its lead was won; it must not count anywhere)
    (0, "L0", "ann", "inbound", "A", 0.90, "v2", "02-19 09", "02-20 09", "02-21 09",
     "02-20 10", "accepted", None, "02-20 11"),
    (1, "L1", "ann", "inbound", "A", 0.65, "v2", "03-02 07", "03-02 09", "03-03 09",
     "03-02 15", "accepted", None, "03-03 09"),
    (2, "L2", "ann", "inbound", "A", 0.70, "v2", None, "03-03 09", "03-04 09",
     "03-05 09", "accepted", None, "03-06 09"),
    (3, "L3", "bob", "outbound", "B", 0.45, "v2", "03-04 05", "03-04 09", "03-05 09",
     "03-04 21", "rejected", "no_budget", "03-06 09"),
    (4, "L4", "bob", "outbound", "B", 0.30, "v1", "03-05 03", "03-05 09", "03-06 09",
     None, None, None, None),
    (5, "L5", "cid", "partner", "C", 0.25, "v1", "03-04 09", "03-06 09", None,
     "03-08 09", "rejected", "no_need", "03-08 09"),
    (6, "L6", "cid", "inbound", "C", 0.20, "v2", "03-07 09", "03-10 09", "03-11 09",
     "03-10 10", "rejected", "bad_data", "03-20 09"),
    (7, "L7", "ann", "inbound", "A", 1.00, "v2", "03-28 08", "03-28 09", "03-29 09",
     "03-28 11", "accepted", None, "03-28 12"),
    (8, "L8", None, None, "D", 0.05, "v2", "03-30 06", "03-30 09", "04-01 09",
     None, None, None, None),
    (9, "L9", "bob", "outbound", "D", 0.05, "v2", "03-11 09", "03-12 09", "03-13 09",
     "03-12 13", "rejected", "no_need", "03-13 09"),
    (10, "L10", "ann", "partner", "B", 0.35, "v2", "03-14 03", "03-15 09", "03-16 09",
     "03-15 19", "accepted", None, "03-16 09"),
    (11, "L11", "bob", "inbound", "B", 0.50, "v2", "03-28 22", "03-30 10", "03-31 10",
     None, None, None, None),
    (12, "L12", "cid", "partner", "A", 0.62, "v1", "03-25 09", "03-29 09", "04-01 09",
     "03-29 17", None, None, None),
]  # fmt: skip


def handoffs_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The store's handoffs frame for `rows` (see SCENARIO)."""
    records = []
    for (hid, lead, owner, source, tier, p, crit, created, handed, due, touch, disp, reason,
         disp_at) in rows:  # fmt: skip
        verdict = {"A": "sql_ready", "B": "sql_ready", "C": "needs_qualification"}.get(tier)
        records.append({
            "handoff_id": hid, "lead_id": lead, "owner": owner, "source": source,
            "lead_created_at": t(created), "handed_off_at": t(handed),
            "action": "route_to_sales" if tier in "AB" else "qualify", "tier": tier,
            "probability": p, "model_name": "mql", "model_version": "3" if hid % 2 else None,
            "criteria_version": crit, "criteria_verdict": verdict or "not_sql",
            "due_at": t(due), "first_touch_at": t(touch), "disposition": disp,
            "disposition_reason": reason, "dispositioned_at": t(disp_at),
            "rep": owner if disp else None,
        })  # fmt: skip
    return pd.DataFrame(records, columns=list(HANDOFF_COLUMNS))


def outcomes_frame(rows: list[tuple[str, str | None, str | None, str | None]]) -> pd.DataFrame:
    """The store's outcomes frame: (lead, sql_at, won_at, lost_at)."""
    return pd.DataFrame(
        [{"lead_id": lead, "sql_at": t(s), "won_at": t(w), "lost_at": t(lo)}
         for lead, s, w, lo in rows],
        columns=list(OUTCOME_COLUMNS),
    )  # fmt: skip


OUTCOMES = [
    ("L0", None, "02-28 09", None),  # its handoff is out of scope
    ("L1", "03-05 09", "03-20 09", None),
    ("L2", None, None, "03-25 09"),
    ("L3", None, "03-28 09", None),  # rejected, then won
    ("L5", "03-09 09", None, None),  # SQL only: not converted
    ("L7", None, "03-30 09", None),
    ("L99", None, "03-15 09", None),  # never handed off
]


def report_of(
    rows: list[tuple[Any, ...]], outcomes: list[Any] | None = None, **kw: Any
) -> HandoffReport:
    """The report of `rows` as of NOW, since SINCE, with the scenario's settings."""
    args: dict[str, Any] = {
        "now": NOW, "since": SINCE, "current_criteria_version": "v2",
        "business_hours": third_of_calendar, "dispositioned_within_days": WINDOW_DAYS,
        "taxonomy": TAXONOMY,
    } | kw  # fmt: skip
    return build_report(handoffs_frame(rows), outcomes_frame(outcomes or []), **args)


@pytest.fixture(scope="module")
def report() -> HandoffReport:
    return report_of(SCENARIO, OUTCOMES)


def test_acceptance_and_waiting(report: HandoffReport) -> None:
    # in scope: handoffs 1-12 (0 is before `since`)
    assert report.handoffs == 12
    # accepted 1, 2, 7, 10; rejected 3, 5, 6, 9; unanswered 4, 8, 11, 12
    assert (report.accepted, report.rejected, report.waiting) == (4, 4, 4)
    assert report.acceptance.rate == 0.5
    # Wilson, p = 0.5, n = 8, z = 1.96: centre 0.5, half-width
    # z * sqrt(0.25/8 + z²/256) / (1 + z²/8) = 1.96 * 0.21507 / 1.48018 = 0.2848
    assert report.acceptance.low == pytest.approx(0.5 - 0.2848, abs=1e-3)
    assert report.acceptance.high == pytest.approx(0.5 + 0.2848, abs=1e-3)


def test_time_to_first_action_and_system_delay(report: HandoffReport) -> None:
    # touched: 1 (6 h), 2 (48 h), 3 (12 h), 5 (48 h), 6 (1 h), 7 (2 h), 9 (4 h), 10 (10 h),
    # 12 (8 h): sorted 1 2 4 6 [8] 10 12 48 48, median 8 h = 1/3 day, 8/3 business hours
    assert report.touched == 9
    assert report.first_touch_days_median == pytest.approx(8 / 24)
    assert report.first_touch_business_hours_median == pytest.approx(8 / 3)
    # creation to handoff (2 has no creation date): 1: 2 h, 3: 4, 4: 6, 5: 48, 6: 72, 7: 1,
    # 8: 3, 9: 24, 10: 30, 11: 36, 12: 96; sorted 1 2 3 4 6 [24] 30 36 48 72 96
    assert report.system_delay_hours_median == pytest.approx(24.0)
    # every deadline is 24 calendar hours after the handoff except 8 (48 h) and 12 (72 h), and
    # 5 has none: median 24 calendar hours, 8 business hours
    assert report.sla_business_hours_median == pytest.approx(8.0)
    # touches in business hours: 2, 16, 4, 16, 1/3, 2/3, 4/3, 10/3, 8/3: [0, 1) holds 2,
    # [1, 4) holds 2, 4/3, 10/3, 8/3; [4, 8) holds 4; [16, 40) holds 16 twice
    counts = [b.count for b in report.first_touch_histogram]
    assert counts == [2, 4, 1, 0, 2, 0, 0, 0]


def test_leaked_excludes_pending(report: HandoffReport) -> None:
    # now 31 March 12:00, windows: the deadline, and 5 days after handoff to answer.
    # 2: touched after its deadline -> leaked; 4: never touched nor answered -> leaked once;
    # 6: answered after 10 days -> leaked; 11: deadline 31 March 10:00 passed untouched -> leaked.
    # 8 and 12: deadline 1 April and answer window still open -> pending.
    # 7: deadline passed (touched in time), answer window open -> counted, not leaked.
    assert report.pending == 2
    assert (report.leak.count, report.leak.of) == (4, 10)
    assert report.leak.rate == pytest.approx(0.4)
    assert (report.leaked_untouched, report.leaked_unanswered) == (3, 2)
    # breached: 2 (late), 4 and 11 (untouched past the deadline); 5 has no deadline
    assert (report.breached, report.with_sla) == (3, 11)


def test_shared_definition_and_conversion(report: HandoffReport) -> None:
    # v1 on 4, 5, 12: 9 of 12 on the current version
    assert (report.shared_definition.count, report.shared_definition.rate) == (9, 0.75)
    # won: L1, L3, L7 (L0's handoff is out of scope, L99 was never handed off, L5 only SQL)
    assert (report.conversion.count, report.conversion.of) == (3, 12)


def test_by_tier_and_source(report: HandoffReport) -> None:
    tiers = {b.key: b for b in report.by_dimension["tier"]}
    assert list(tiers) == ["A", "B", "C", "D"]
    # A: 1, 2, 7, 12; accepted 1, 2, 7 (12 unanswered); won 1, 7
    a = tiers["A"]
    assert (a.n, a.accepted, a.rejected, a.acceptance.rate, a.won, a.conversion.rate) == (
        4, 3, 0, 1.0, 2, 0.5)  # fmt: skip
    # B: 3, 4, 10, 11; accepted 10, rejected 3 (won later)
    b = tiers["B"]
    assert (b.n, b.accepted, b.rejected, b.acceptance.rate, b.won) == (4, 1, 1, 0.5, 1)
    # D: 8 (unanswered), 9 (rejected): 0 of 1
    assert (tiers["D"].n, tiers["D"].acceptance.rate, tiers["D"].acceptance.of) == (2, 0.0, 1)
    # sources by size: inbound 1 2 6 7 11; outbound 3 4 9 and partner 5 10 12 (ties by
    # name); no source: 8
    sources = report.by_dimension["source"]
    assert [s.key for s in sources] == ["inbound", "outbound", "partner", "(none)"]
    inbound = sources[0]
    # inbound accepted 1 2 7, rejected 6; won 1 7
    assert (inbound.n, inbound.acceptance.rate, inbound.conversion.rate) == (5, 0.75, 0.4)
    verdicts = [v.key for v in report.by_dimension["criteria_verdict"]]
    assert verdicts == ["sql_ready", "needs_qualification", "not_sql"]
    # odd handoff ids carry model version 3: 1 3 5 7 9 11
    models = {m.key: m.n for m in report.by_dimension["model_version"]}
    assert models == {"mql 3": 6, "mql": 6}


def test_rejection_reasons_by_source(report: HandoffReport) -> None:
    # outbound: 3 no_budget, 9 no_need (taxonomy order: no_need first); inbound: 6 bad_data;
    # partner: 5 no_need
    rows = [(r.source, r.reason, r.label, r.count, r.share_of_source)
            for r in report.rejection_reasons]  # fmt: skip
    assert rows == [
        ("outbound", "no_need", "No need", 1, 0.5),
        ("outbound", "no_budget", "No budget", 1, 0.5),
        ("inbound", "bad_data", "Bad data", 1, 1.0),
        ("partner", "no_need", "No need", 1, 1.0),
    ]


def test_predicted_vs_actual_bands(report: HandoffReport) -> None:
    bands = report.calibration
    assert [(b.low, b.high) for b in bands] == [(0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.6),
                                                (0.6, 1.0)]  # fmt: skip
    # [0, .1): 8, 9; [.1, .2): none; [.2, .4): 4 .30, 5 .25, 6 .20 (edge), 10 .35;
    # [.4, .6): 3 .45 (won), 11 .50; [.6, 1]: 1 .65 (won), 2 .70, 7 1.0 (edge, won), 12 .62
    assert [b.n for b in bands] == [2, 0, 4, 2, 4]
    assert bands[1].mean_predicted is None and bands[1].actual.rate is None
    assert bands[2].mean_predicted == pytest.approx(1.10 / 4)
    assert bands[2].actual.rate == 0.0
    assert bands[4].mean_predicted == pytest.approx(2.97 / 4)
    assert (bands[3].actual.rate, bands[4].actual.rate) == (0.5, 0.5)


def test_sales_said_no_customer_said_yes(report: HandoffReport) -> None:
    assert report.said_no_customer_yes == 1
    (lead,) = report.said_no_customer_yes_leads
    assert (lead.lead_id, lead.reason, lead.reason_label, lead.owner, lead.probability) == (
        "L3", "no_budget", "No budget", "bob", 0.45)  # fmt: skip
    # accepted 1 2 7 10; won 1 7: 2 and 10 never converted (2 was lost, 10 is open)
    anc = report.accepted_not_converted
    assert (anc.count, anc.of, anc.rate) == (2, 4, 0.5)
    listed = {x.lead_id: x.lost_at for x in report.accepted_not_converted_leads}
    assert listed == {"L2": t("03-25 09"), "L10": None}


def test_headline_and_text(report: HandoffReport) -> None:
    lines = headline(report)
    assert lines[0].startswith("Acceptance rate")
    assert "50.0%" in lines[0] and "4 of 8" in lines[0] and "vs 44% industry" in lines[0]
    assert "0.3 days" in lines[1] and "vs 14 days industry" in lines[1]
    assert "40.0%" in lines[2] and "2 pending" in lines[2] and "vs 23% industry" in lines[2]
    assert "75.0%" in lines[3] and "vs 32% of companies" in lines[3]
    text = render_text(report)
    assert text.startswith("Handoff report: handoffs since 2026-03-01 00:00 UTC")
    assert "Sales said no, customer said yes: 1" in text and "No budget" in text
    assert "Definitions" in text and "Acceptance rate: accepted handoffs" in text


def test_to_dict_is_json(report: HandoffReport) -> None:
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["acceptance"]["rate"] == 0.5
    assert data["now"] == "2026-03-31T12:00:00+00:00"
    assert data["calibration"][1]["mean_predicted"] is None
    assert data["said_no_customer_yes_leads"][0]["won_at"] == "2026-03-28T09:00:00+00:00"
    assert data["benchmarks"]["leak_rate"] == 0.23
    assert data["dispositioned"] == 8


def test_html_is_self_contained_and_escaped() -> None:
    # a rejected lead later won is listed by id and owner: both must come out as text
    rows = [(1, "<script>alert(1)</script>", "<b>ann</b>", "inbound", "A", 0.7, "v2",
             "03-02 07", "03-02 09", "03-03 09", "03-02 15", "rejected", "no_need", "03-03 09"),
            *SCENARIO[2:5]]  # fmt: skip
    report = report_of(rows, [("<script>alert(1)</script>", None, "03-20 09", None)])
    html = render_html(report)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;ann&lt;/b&gt;" in html
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    # three plots, each an inline PNG
    assert html.count('src="data:image/png;base64,') == 3
    assert "Definitions" in html
    # 1 of 3 answered accepted: the interval (6%-79%) holds the 44% benchmark
    assert "vs 44% industry (no clear difference)" in html


def test_no_handoffs() -> None:
    # without rows, and as an empty frame without columns
    empty = report_of([], [])
    bare = build_report(pd.DataFrame(), pd.DataFrame(), now=NOW, since=SINCE,
                        current_criteria_version="v2", business_hours=third_of_calendar,
                        dispositioned_within_days=WINDOW_DAYS, taxonomy=TAXONOMY)  # fmt: skip
    for r in (empty, bare):
        assert r.handoffs == 0 and r.acceptance.rate is None and r.leak.rate is None
        assert r.first_touch_days_median is None and r.by_dimension["tier"] == ()
        assert "No handoffs since 2026-03-01 00:00 UTC" in render_text(r)
        html = render_html(r)
        assert "No handoffs since 2026-03-01 00:00 UTC" in html and "data:image" not in html
        json.dumps(r.to_dict(), allow_nan=False)


def test_no_dispositioned_handoffs_is_not_applicable() -> None:
    # 4, 8, 11, 12: nobody answered
    report = report_of([SCENARIO[4], SCENARIO[8], SCENARIO[11], SCENARIO[12]])
    assert report.acceptance.rate is None and report.acceptance.of == 0
    assert "n/a" in headline(report)[0]
    assert report.to_dict()["acceptance"]["rate"] is None
    assert "n/a" in render_html(report)


def test_no_sla_target_is_never_breached() -> None:
    # long past, no deadline, never touched nor answered: not breached, leaked only for the
    # unanswered window
    row = (1, "L1", "ann", "inbound", "A", 0.5, "v2", None, "03-02 09", None, None, None, None,
           None)  # fmt: skip
    report = report_of([row])
    assert (report.breached, report.with_sla, report.leaked_untouched) == (0, 0, 0)
    assert (report.leak.count, report.leak.of, report.leaked_unanswered) == (1, 1, 1)
    # before its answer window ends, it is pending
    early = report_of([row], now=pd.Timestamp("2026-03-05", tz="UTC").to_pydatetime())
    assert (early.pending, early.leak.of, early.breached) == (1, 0, 0)


def test_bad_input_is_named() -> None:
    with pytest.raises(LeadscoreError, match="now must be timezone-aware"):
        report_of(SCENARIO[:2], now=datetime(2026, 3, 31))
    frame = handoffs_frame(SCENARIO[:2]).drop(columns=["due_at"])
    with pytest.raises(LeadscoreError, match=r"handoffs frame lacks the columns \['due_at'\]"):
        build_report(frame, outcomes_frame([]), now=NOW, since=SINCE,
                     current_criteria_version="v2", business_hours=third_of_calendar,
                     dispositioned_within_days=WINDOW_DAYS, taxonomy=TAXONOMY)  # fmt: skip
