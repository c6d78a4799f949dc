"""`recommended_action`: every branch of the rule, and the routing file's validation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadscore.features.criteria.check import CriteriaResult, CriterionResult, verdict_of
from leadscore.features.criteria.rules import Status
from leadscore.serving.routing import (
    HandRaiser,
    RoutingConfig,
    RoutingError,
    load_routing,
    recommend,
)

AS_OF = datetime(2024, 3, 1, 12)
ROUTING = RoutingConfig(
    version="t1",
    hand_raisers=(
        HandRaiser(type="demo_request", label="demo request"),
        HandRaiser(type="touch", subtype=("contact_sales",), direction=("inbound",)),
    ),
    hand_raiser_within_days=30,
)


def _result(**statuses: Status) -> CriteriaResult:
    """Required criteria with the given statuses (plus one informative failing one)."""
    results = [
        CriterionResult(cid, "fit", True, status, None, f"{cid} is {status}", cid)
        for cid, status in statuses.items()
    ]
    results.append(CriterionResult("economic_buyer", "authority", False, "fail", None, "x", "x"))
    verdict = verdict_of(r.status for r in results if r.required)
    return CriteriaResult(verdict, tuple(results), "2024.1")


def _event(kind: str, days_ago: float, **more: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": AS_OF - timedelta(days=days_ago)} | more


DEMO = [_event("demo_request", 2)]


def test_sql_ready_routes_to_sales_whatever_the_score() -> None:
    rec = recommend(ROUTING, _result(size="pass", region="pass"), False, [], AS_OF)
    assert rec.action == "route_to_sales"
    assert "Meets every required SQL criterion" in rec.reason


def test_a_hand_raiser_without_failing_criteria_routes_to_sales() -> None:
    rec = recommend(ROUTING, _result(size="pass", budget="unknown"), False, DEMO, AS_OF)
    assert rec.action == "route_to_sales"
    assert "demo request on 2024-02-28" in rec.reason
    assert rec.criteria == ("budget",)
    narrowed = [_event("touch", 1, subtype="contact_sales", direction="inbound")]
    rec = recommend(ROUTING, _result(budget="unknown"), False, narrowed, AS_OF)
    assert rec.action == "route_to_sales"
    assert "contact sales on 2024-02-29" in rec.reason


def test_a_hand_raiser_with_a_failing_criterion_is_nurtured() -> None:
    rec = recommend(ROUTING, _result(size="fail", budget="unknown"), True, DEMO, AS_OF)
    assert rec.action == "nurture"
    assert rec.criteria == ("size",)
    assert "Fails required SQL criterion size: size is fail" in rec.reason


@pytest.mark.parametrize(
    "event",
    [
        _event("demo_request", 31),  # outside the window
        _event("demo_request", -1),  # after as_of
        _event("touch", 1, subtype="contact_sales", direction="outbound"),  # not narrowed in
        _event("web_session", 1, subtype="demo_page"),  # looking is not asking
    ],
)
def test_events_that_do_not_raise_a_hand(event: dict[str, Any]) -> None:
    rec = recommend(ROUTING, _result(budget="unknown"), False, [event], AS_OF)
    assert rec.action == "nurture"


def test_an_mql_that_needs_qualification_is_qualified() -> None:
    rec = recommend(ROUTING, _result(size="pass", budget="unknown"), True, [], AS_OF)
    assert rec.action == "qualify"
    assert rec.criteria == ("budget",)
    assert rec.reason == "An MQL with required criteria still unknown: budget"


def test_otherwise_nurture_naming_the_failing_criterion() -> None:
    rec = recommend(ROUTING, _result(size="fail", region="fail"), True, [], AS_OF)
    assert rec.action == "nurture"
    assert rec.criteria == ("size", "region")
    assert "(also failing: region)" in rec.reason
    quiet = recommend(ROUTING, _result(budget="unknown"), False, [], AS_OF)
    assert quiet.action == "nurture"
    assert quiet.reason == "Not an MQL yet; required criteria unknown: budget"


def test_the_shipped_routing_file_loads() -> None:
    config = load_routing()
    assert config.hand_raisers and config.version


def test_a_bad_routing_file_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text("version: 1\nhand_raisers:\n  - subtype: [x]\n  - type: t\n    colour: red\n")
    with pytest.raises(RoutingError) as err:
        load_routing(bad)
    assert err.value.lines() == [
        f"{bad} line 3: hand_raisers.0.type: missing key",
        f"{bad} line 5: hand_raisers.1.colour: unknown key",
    ]
    with pytest.raises(RoutingError, match="not found"):
        load_routing(tmp_path / "missing.yaml")
