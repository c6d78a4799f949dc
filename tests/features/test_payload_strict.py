"""Strict input (issue 14): booleans are not numbers, numbers are not timestamps, every string
and field name bounded, the event limit counted first; and the JSON schema says what the
validator accepts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.features.config import load_feature_config
from leadscore.features.payload import (
    MAX_EXTRA_VALUES,
    MAX_STRING_LENGTH,
    LeadError,
    ParsedLead,
    payload_model,
    validate_lead,
)
from leadscore.features.schema import schemas
from leadscore.serving.examples import example_body
from tests.conftest import examples

CONFIG = load_feature_config()
MODEL = payload_model(CONFIG)
BODY = example_body(CONFIG)
ENTITY_TABLE = {"lead": "leads", "account": "accounts", "contact": "contacts"}


def _fields(kinds: set[str]) -> list[tuple[str, str]]:
    """(entity, field) of every field of these kinds in the example's contract; `events` for
    event fields."""
    tables = schemas(CONFIG)
    found = [(entity, c.name) for entity, table in ENTITY_TABLE.items()
             for c in tables[table].columns if c.kind in kinds]  # fmt: skip
    return found + [("events", c.name) for c in tables["events"].columns if c.kind in kinds]


NUMERIC = _fields({"number", "count"})
TIMESTAMPS = [*_fields({"timestamp"}), ("body", "as_of")]
FLAGS = _fields({"boolean"})


def _with(entity: str, name: str, value: Any, event: int = 0) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    if entity == "body":
        body[name] = value
    elif entity == "events":
        body["events"][event][name] = value
    else:
        body[entity][name] = value
    return body


def _loc(entity: str, name: str, event: int = 0) -> tuple[Any, ...]:
    return {"body": (name,), "events": ("events", event, name)}.get(entity, (entity, name))


def _problems(body: Any, **kwargs: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    with pytest.raises(LeadError) as info:
        validate_lead(MODEL, body, **kwargs)
    return [(p.loc, p.msg, p.type) for p in info.value.problems]


def _valid(body: Any, **kwargs: Any) -> ParsedLead:
    return validate_lead(MODEL, body, **kwargs)


def test_the_contract_has_fields_of_every_kind() -> None:
    # the properties below range over these; an empty list would make them vacuous
    assert ("events", "page_views") in NUMERIC and ("lead", "budget_amount") in NUMERIC
    assert ("lead", "created_at") in TIMESTAMPS and ("events", "timestamp") in TIMESTAMPS
    assert ("lead", "budget_confirmed") in FLAGS


@settings(max_examples=examples(60), deadline=None)
@given(st.sampled_from(NUMERIC), st.booleans(), st.integers(0, len(BODY["events"]) - 1))
def test_a_boolean_in_any_numeric_field_is_refused(
    field: tuple[str, str], flag: bool, event: int
) -> None:
    entity, name = field
    problems = _problems(_with(entity, name, flag, event))
    assert [(loc, msg) for loc, msg, _ in problems] == [
        (_loc(entity, name, event), "expected a number, got a boolean")
    ]


@settings(max_examples=examples(60), deadline=None)
@given(
    st.sampled_from(TIMESTAMPS),
    st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
)
def test_a_number_in_any_timestamp_field_is_refused(field: tuple[str, str], value: Any) -> None:
    entity, name = field
    problems = _problems(_with(entity, name, value))
    (hit,) = [p for p in problems if p[0] == _loc(entity, name)]
    assert hit[1].startswith("expected an ISO-8601 date or timestamp string, got a ")


@pytest.mark.parametrize("text", ["1700000000", "-1", "1.7e9", "soon", ""])
def test_text_that_is_no_iso_date_is_refused_as_a_timestamp(text: str) -> None:
    # pydantic alone reads "1700000000" as 2023-11-14 (seconds since 1970)
    ((loc, msg, kind),) = _problems(_with("lead", "created_at", text))
    assert loc == ("lead", "created_at") and kind == "datetime_parsing"
    assert "expected an ISO-8601 date or timestamp string" in msg


def test_timestamps_as_iso_text_or_python_datetimes() -> None:
    assert _valid(_with("lead", "created_at", "2026-03-01")).lead["created_at"] == datetime(
        2026, 3, 1, 23, 59, 59, 999999
    )
    naive = _valid(_with("lead", "created_at", "2026-03-01T09:00"))
    assert naive.lead["created_at"] == datetime(2026, 3, 1, 9, 0)
    aware = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # the pyfunc's callers pass datetimes
    assert _valid(_with("lead", "created_at", aware)).lead["created_at"] == datetime(2026, 3, 1, 9)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("FALSE", False), ("True", True), (True, True)]
)
def test_booleans_as_json_or_true_false_text(text: Any, expected: bool) -> None:
    for entity, name in FLAGS:
        parsed = _valid(_with(entity, name, text))
        record = parsed.events[0] if entity == "events" else getattr(parsed, entity)
        assert record[name] is expected


@pytest.mark.parametrize("value", [0, 1, 1.0, "1", "0", "yes", "no", "on", "t", " true", "truee"])
def test_numbers_and_other_spellings_are_not_booleans(value: Any) -> None:
    ((loc, msg, kind),) = _problems(_with("lead", "budget_confirmed", value))
    assert loc == ("lead", "budget_confirmed") and kind == "bool_type"
    assert msg.startswith('expected a boolean: true or false (or the text "true"/"false")')


@pytest.mark.parametrize(
    ("value", "expected"), [("12.5", 12.5), ("-3", -3.0), ("1e3", 1000.0), (".5", 0.5), (7, 7.0)]
)
def test_numeric_text_is_read_as_a_number(value: Any, expected: float) -> None:
    assert _valid(_with("lead", "budget_amount", value)).lead["budget_amount"] == expected


@pytest.mark.parametrize("value", ["12,5", "1_000", " 12", "12\n", "0x10", "inf", "NaN", "", "١٢"])
def test_other_text_is_not_a_number(value: str) -> None:
    ((loc, _msg, kind),) = _problems(_with("lead", "budget_amount", value))
    assert loc == ("lead", "budget_amount") and kind == "float_parsing"


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("3.0", 3), (3.0, 3), (2**53, 2**53)])
def test_counts_whole_from_numbers_or_text(value: Any, expected: int) -> None:
    assert _valid(_with("events", "page_views", value)).events[0]["page_views"] == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [("3.5", "int_from_float"), ("-1", "greater_than_equal"), (2**53 + 1, "less_than_equal"),
     (10**400, "less_than_equal"), ("lots", "int_parsing")],
)  # fmt: skip
def test_counts_out_of_range_or_not_whole(value: Any, kind: str) -> None:
    # 10**400 would overflow the features' float sums (a 500 before)
    ((loc, _msg, got),) = _problems(_with("events", "page_views", value))
    assert (loc, got) == (("events", 0, "page_views"), kind)


def test_strings_at_the_limit_pass_and_one_more_is_refused() -> None:
    at_limit = _valid(_with("account", "industry", "x" * MAX_STRING_LENGTH))
    assert len(at_limit.account["industry"]) == MAX_STRING_LENGTH
    ((loc, msg, kind),) = _problems(_with("account", "industry", "x" * (MAX_STRING_LENGTH + 1)))
    assert (loc, kind) == (("account", "industry"), "string_too_long")
    assert msg == f"String should have at most {MAX_STRING_LENGTH} characters (got 1001)"


def test_padding_counts_towards_the_limit() -> None:
    # the body is stored as sent: whitespace stripped for the features still took the space
    padded = " " * MAX_STRING_LENGTH + "x"
    ((loc, _msg, kind),) = _problems(_with("events", "subtype", padded, event=4))
    assert (loc, kind) == (("events", 4, "subtype"), "string_too_long")


def test_a_megabyte_in_unknown_fields_is_refused_and_not_repeated() -> None:
    huge = "x" * 1_000_000
    body = _with("account", "crm_notes", huge)
    body["contact"][huge] = "a field name of a megabyte"
    body["events"][2]["crm"] = {"nested": [1, huge]}
    problems = _problems(body)
    shown = "x" * 40 + "…"
    assert {(loc, kind) for loc, _, kind in problems} == {
        (("account", "crm_notes"), "string_too_long"),
        (("contact", shown), "string_too_long"),
        (("events", 2, "crm", "nested", 1), "string_too_long"),
    }
    assert sum(len(str(p)) for p in problems) < 2_000  # the megabyte is named, not echoed
    # at the top level an unknown key is refused anyway; named by its start only
    ((loc, _msg, kind),) = _problems(copy.deepcopy(BODY) | {huge: 1})
    assert (loc, kind) == ((shown,), "extra_forbidden")


def test_unknown_fields_hold_a_bounded_number_of_values() -> None:
    body = _with("lead", "crm", None)
    del body["lead"]["crm"]
    body["lead"] |= {f"crm_{i}": i for i in range(MAX_EXTRA_VALUES)}
    assert len(_valid(body).ignored_fields) == MAX_EXTRA_VALUES
    body["lead"]["crm_one_more"] = [1]  # two values: the list and its item
    ((loc, msg, kind),) = _problems(body)
    assert (loc, kind) == (("lead",), "too_many_extra_values")
    assert msg.startswith(f"more than {MAX_EXTRA_VALUES} values")
    deep: Any = "x"
    for _ in range(10_000):  # nesting deeper than any recursion limit: walked, not recursed
        deep = [deep]
    ((loc, _msg, kind),) = _problems(_with("events", "crm", deep))
    assert (loc, kind) == (("events", 0), "too_many_extra_values")


def test_the_event_limit_counts_before_validating() -> None:
    n = len(BODY["events"])
    assert len(_valid(BODY, max_events=n).events) == n
    assert len(_valid(BODY).events) == n  # no limit given: any number
    assert _problems(BODY, max_events=n - 1) == [
        (("events",), f"{n} events; at most {n - 1} per lead", "too_many_events")
    ]
    # only the count is reported: the events (not even dicts) were never looked at
    garbage = copy.deepcopy(BODY) | {"events": [17] * 200_000}
    assert _problems(garbage, max_events=5000) == [
        (("events",), "200000 events; at most 5000 per lead", "too_many_events")
    ]


# ---------------------------------------------------------------------------------------------
# the JSON schema says what the validator accepts: whatever is accepted is schema-valid

FIELD_SCHEMAS = MODEL.model_json_schema()["$defs"]
VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["12.5", "-3", "1e3", "3", "true", "False", "yes", "1", "2026-03-05",
                     "2026-03-05T10:00:00Z", "2026-03-05T10:00", "2026-03-05 10:00:00+01:00",
                     " 2026-03-05 ", "1700000000", "x" * 1001, "", " ", "web_session"]),
    st.text(max_size=12),
)  # fmt: skip
DEF = {"lead": "Lead", "account": "Account", "contact": "Contact", "events": "Event"}


@settings(max_examples=examples(200), deadline=None)
@given(st.sampled_from(NUMERIC + TIMESTAMPS[:-1] + FLAGS + _fields({"category", "string"})),
       VALUES)  # fmt: skip
def test_every_accepted_value_is_valid_for_the_schema(field: tuple[str, str], value: Any) -> None:
    entity, name = field
    try:
        _valid(_with(entity, name, value, event=3))
    except LeadError:
        return  # refused: the schema may say either (it cannot say every rule)
    schema = FIELD_SCHEMAS[DEF[entity]]["properties"][name]
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


def test_the_schema_of_each_kind() -> None:
    event = FIELD_SCHEMAS["Event"]["properties"]
    lead = FIELD_SCHEMAS["Lead"]["properties"]
    assert event["timestamp"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert {"type": "number"} in lead["budget_amount"]["anyOf"]
    assert {"type": "boolean"} not in lead["budget_amount"]["anyOf"]
    assert event["page_views"]["anyOf"][0] == {"type": "integer", "minimum": 0, "maximum": 2**53}
    assert event["subtype"]["anyOf"][0] == {"type": "string", "maxLength": MAX_STRING_LENGTH}
    assert FIELD_SCHEMAS["Account"]["propertyNames"] == {"maxLength": MAX_STRING_LENGTH}
    for value, valid in ((True, True), ("true", True), ("yes", False), (1, False)):
        assert jsonschema.Draft202012Validator(lead["budget_confirmed"]).is_valid(value) is valid


def test_custom_fields_are_strict_too() -> None:
    body = _with("account", "process_maturity_band", True)  # a custom category: text only
    ((loc, _msg, kind),) = _problems(body)
    assert (loc, kind) == (("account", "process_maturity_band"), "string_type")
