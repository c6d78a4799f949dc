"""The one-lead path's shortcuts (issue 14, speed) give what the plain code gives: the formatter
without Decimal, the cached sentences, the remembered criterion results and the payload model
without the length check before stripping."""

from __future__ import annotations

import copy
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadscore.features import payload
from leadscore.features.config import load_feature_config
from leadscore.features.criteria import check as criteria_check
from leadscore.features.criteria.check import check, criterion_status
from leadscore.features.criteria.rules import Criteria, parse_criteria
from leadscore.features.payload import LeadError, payload_model, validate_lead
from leadscore.features.spec import _sentence, build_spec, format_number
from leadscore.serving.examples import example_body
from tests.conftest import examples

CONFIG = load_feature_config()
SPEC = build_spec(CONFIG)


def _decimal_format(x: float) -> str:
    """format_number as written before the shortcut: Decimal's half-up rounding of repr(x)."""

    def half_up(v: float, places: int) -> Decimal:
        if abs(v) >= 1e15:
            return Decimal(round(v))
        return Decimal(repr(v)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    if not math.isfinite(x):
        return "unknown"
    if x < 0:
        shown = _decimal_format(-x)
        return "0" if shown in ("0", "under 0.1") else f"-{shown}"
    if 0 < x < 0.05:
        return "under 0.1"
    tenths = half_up(x, 1)
    if tenths >= 2:
        return f"{int(half_up(x, 0)):,}"
    return f"{tenths:.1f}".removesuffix(".0")


# halves in decimal that are no halves in binary (1.95 is 1.9499999...), and their neighbours
HALVES = st.integers(0, 400_000).map(lambda n: n / 20) | st.integers(0, 40_000).map(lambda n: n / 2)


@settings(max_examples=examples(500), deadline=None)
@given(
    st.floats(min_value=-1e17, max_value=1e17)
    | HALVES
    | HALVES.map(lambda x: math.nextafter(x, math.inf))
    | HALVES.map(lambda x: math.nextafter(x, -math.inf))
)
@example(1.95)
@example(0.05)
@example(-0.0)
@example(999_999.95)
@example(1_000_000.5)
@example(2.5e15 + 0.5)
def test_format_number_rounds_as_decimal_does(x: float) -> None:
    assert format_number(x) == _decimal_format(x)


def test_format_number_by_hand() -> None:
    # 1.95 is stored as 1.9499999999999999556; repr writes 1.95, which rounds half up to 2
    assert [format_number(x) for x in (1.95, 0.25, 19.5, 1234.5, -0.0, 0.04)] == [
        "2", "0.3", "20", "1,235", "-0", "under 0.1",
    ]  # fmt: skip


VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=True)
    | st.sampled_from([0.0, -0.0, 1.0, 1, True, "1", "web_session", "x_y", "long_" * 20])
)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.sampled_from(SPEC.features),
    st.lists(VALUES, min_size=1, max_size=6),
    st.none() | st.floats(0, 400),
)
def test_cached_sentences_read_as_worked_out_afresh(
    feature: Any, values: list[Any], age: float | None
) -> None:
    # in any order of the same and equal values (0.0 after -0.0, 1 after True, ...)
    for value in values:
        shown_age = None if age is None else format_number(max(age, 1.0))
        fresh = (
            feature.missing_sentence()
            if value is None or (isinstance(value, float) and math.isnan(value))
            else _sentence.__wrapped__(
                feature.template,
                feature.unit,
                feature.kind,
                value,
                shown_age if "age_days" in feature.template else "",
            )
        )
        assert feature.sentence(value, age) == fresh


def test_equal_values_that_read_differently_are_not_mixed_up() -> None:
    trend = next(f for f in SPEC.features if f.name == "engagement_trend")
    sales = next(f for f in SPEC.features if f.kind == "exists")
    for _ in range(2):  # the second round reads from the cache
        assert trend.sentence(-0.0) == trend.sentence(0.0).replace("by 0 ", "by -0 ")
        assert "by -0 " in trend.sentence(-0.0)
        assert sales.sentence(True) != sales.sentence(1)


# ---------------------------------------------------------------------------------------------
# criteria: the remembered results

CRITERIA_YAML = """version: '1'
owner: revops
reviewed_on: 2024-06-30
criteria:
  - {id: size, description: d, group: fit, field: account.employee_band, operator: between,
     values: ["200-499", "1000-1999"], required: true}
  - {id: calls, description: d, group: need, field: sales_calls, operator: ">=", value: 2,
     required: true}
"""


def _criteria() -> Criteria:
    return parse_criteria(CRITERIA_YAML, CONFIG, SPEC)


def test_remembered_criterion_results_equal_fresh_ones() -> None:
    criteria = _criteria()
    size, calls = criteria.criteria
    for _ in range(2):
        assert criterion_status(size, " 200-499 ") == (
            "pass", "200-499", "Company size 200-499 is in the target range 200-1999"
        )  # fmt: skip
        assert criterion_status(calls, 3) == ("pass", 3.0, "Sales calls 3 is at least 2")
        assert criterion_status(size, "x" * 100)[0] == "unknown"  # not remembered: too long
        assert criterion_status(calls, -0.0)[1:] == (-0.0, "Sales calls 0 is below 2")
        assert math.copysign(1.0, criterion_status(calls, 0.0)[1]) == 1.0
        assert math.copysign(1.0, criterion_status(calls, -0.0)[1]) == -1.0
        result = check(criteria, {"account.employee_band": "5000+", "sales_calls": 1})
        assert (result.verdict, result.counts) == ("not_sql", {"pass": 0, "fail": 1,
                                                               "unknown": 1})  # fmt: skip


def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(criteria_check, "_MEMO", {})
    monkeypatch.setattr(criteria_check, "MEMO_VALUES", 4)
    monkeypatch.setattr(criteria_check, "MEMO_CRITERIA", 2)
    for _ in range(3):  # three loads of the same file: three sets of criteria
        for bc in _criteria().criteria:
            for n in range(10):
                assert criterion_status(bc, float(n + 1))[0] in ("pass", "fail", "unknown")
    assert len(criteria_check._MEMO) <= 2
    assert all(len(memo) <= 4 for _, memo in criteria_check._MEMO.values())


# ---------------------------------------------------------------------------------------------
# the payload model without the length check before stripping

MODEL = payload_model(CONFIG)
BODY = example_body(CONFIG)
TEXT = st.sampled_from([" ", "\t", ""]).flatmap(
    lambda pad: st.integers(995, 1003).map(lambda n: pad + "x" * n + pad)
) | st.text(max_size=20)


def _outcome(body: Any) -> Any:
    try:
        parsed = validate_lead(MODEL, body)
    except LeadError as exc:
        return [(p.loc, p.msg, p.type) for p in exc.problems]
    return (parsed.lead, parsed.account, parsed.contact, parsed.events, parsed.ignored_fields)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.sampled_from(["lead", "account", "contact", "events"]),
    st.sampled_from(["source", "industry", "job_title", "subtype", "crm_note"]),
    TEXT,
)
def test_bodies_read_the_same_with_or_without_the_shortcut(
    entity: str, field: str, text: str
) -> None:
    body = copy.deepcopy(BODY)
    (body["events"][0] if entity == "events" else body[entity])[field] = text
    fast = _outcome(body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payload, "_SHORT_TWINS", {})
        assert _outcome(body) == fast


def test_a_text_over_the_limit_as_sent_is_refused_even_if_stripping_would_fit_it() -> None:
    body = copy.deepcopy(BODY)
    body["events"][0]["subtype"] = " " + "x" * 1000  # 1001 as sent, 1000 once stripped
    with pytest.raises(LeadError) as info:
        validate_lead(MODEL, body)
    assert [(p.loc, p.msg) for p in info.value.problems] == [
        (("events", 0, "subtype"), "String should have at most 1000 characters (got 1001)")
    ]


_VALUES = st.sampled_from(["a", "b", "c", None])
_ALLOWED = st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True).map(tuple)


@given(
    types=st.lists(st.sampled_from(["email", "web"]), min_size=1, max_size=2, unique=True),
    subtype=_ALLOWED, direction=_ALLOWED, outcome=_ALLOWED,
    event=st.fixed_dictionaries({"subtype": _VALUES, "direction": _VALUES, "outcome": _VALUES}),
)  # fmt: skip
def test_matching_beyond_the_type_agrees_with_matching_for_events_of_its_types(
    types: list[str],
    subtype: tuple[str, ...],
    direction: tuple[str, ...],
    outcome: tuple[str, ...],
    event: dict[str, Any],
) -> None:
    from leadscore.features.spec import EventFilter

    f = EventFilter(type=tuple(types), subtype=subtype, direction=direction, outcome=outcome)
    for kind in types:
        typed = event | {"type": kind}
        assert f.matches_beyond_type(typed) == f.matches(typed)
