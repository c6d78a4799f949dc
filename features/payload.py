"""One lead as posted to the API, given to the MLflow pyfunc or read from `lead.json`: the one
validator they all use.

Body: ``{"lead": {...}, "account": {...}, "contact": {...}, "events": [...], "as_of": ...}`` in
the data contract's field names (custom fields from config included). :func:`validate_lead`
checks, and reports every problem as a :class:`Problem` (location, message, type):

* types, strictly (a JSON value of another type is refused, not coerced):

  - timestamps: ISO-8601 text (``2026-03-05T10:00:00Z``; without an offset, UTC; a date alone
    is the end of that day) within years 1-9999 once in UTC, or a ``datetime``/``date`` from
    Python callers. A number is refused ("expected an ISO-8601 date or timestamp string"),
    numeric text too: pydantic would read either as seconds since 1970;
  - numbers: finite JSON numbers, and numeric text in plain decimal notation (``"12.5"``,
    ``"-3"``, ``"1e6"``: see :data:`NUMBER_TEXT`), because CRM exports and APIs (HubSpot's,
    for one) write numbers as strings and nothing else can be meant by them; counts whole,
    from 0 to 2^53 (``3``, ``3.0``, ``"3"``). A boolean is refused ("expected a number, got
    a boolean");
  - booleans: JSON ``true``/``false``, and the strings ``"true"``/``"false"`` in any case (CRM
    exports write those). Numbers (``0``/``1``) and pydantic's other lax spellings (``"yes"``,
    ``"on"``, ``"1"``, ``"t"``...) are refused: which of them a tool writes varies, and a
    number in a yes/no field is more likely a mapping mistake than a yes;
  - strings stay strings (a number is refused);

* sizes: every string value and every field name (unknown fields and values nested in them
  included) at most :data:`MAX_STRING_LENGTH` characters, and at most
  :data:`MAX_EXTRA_VALUES` values in one record's unknown fields (nested ones counted), so that
  what is kept, stored and echoed stays bounded; the number of events is limited by the
  caller (``max_events`` of :func:`validate_lead`; the API's ``LEADSCORE_MAX_EVENTS``),
  counted before any event is validated;
* required fields present;
* unknown fields: at the top level refused; inside lead, account, contact and events, a key
  within edit distance 2 of a field the contract (or the config) declares is refused with
  "did you mean"; any other key (CRMs add their own) is accepted, ignored by the features and
  listed in :attr:`ParsedLead.ignored_fields`;
* the lead's own story: events of another lead, events dated after an explicit `as_of`, a lead
  created after its `as_of`, and account or contact ids that contradict each other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from leadscore.features.config import FeatureConfig
from leadscore.features.errors import LeadscoreError
from leadscore.features.schema import Column, date_only_moment, schemas

# Keys the payload carries implicitly (the nesting says which lead/account an event belongs to).
_OPTIONAL_IN_BODY = {"account_id", "contact_id", "lead_id"}
Record = dict[str, Any]
Loc = tuple[str | int, ...]
_REQUIRED = {"leads": {"lead_id", "created_at"}, "events": {"timestamp", "type"}}
_ENTITIES = ("lead", "account", "contact")
MAX_SUGGESTION_DISTANCE = 2
# Every string value and field name of a body; a CRM's longest text fields (a note, a job
# title) fit, a pasted document does not.
MAX_STRING_LENGTH = 1000
# Counts stay exact as floats (the features sum them as floats; 10**400 would overflow).
MAX_COUNT = 2**53
# Values in one record's unknown fields (nested ones counted): CRMs add dozens, not thousands.
MAX_EXTRA_VALUES = 200
# Numeric text read as a number: plain decimal notation, bounded (ECMA-262 and Python alike, so
# that the OpenAPI schema says exactly what is read).
NUMBER_TEXT = r"^[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?$"
BOOLEAN_TEXT = r"^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"
# What every accepted timestamp text starts with (pydantic's ISO-8601 parser decides the rest).
MOMENT_TEXT = r"^[ \t\n\r]*[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NUMBER = re.compile(NUMBER_TEXT)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOOLEAN = re.compile(BOOLEAN_TEXT)
_MOMENT = re.compile(MOMENT_TEXT)
SHOWN_KEY_LENGTH = 40


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a body: where (keys and list indices), what, and its kind."""

    loc: Loc
    msg: str
    type: str = "value_error"

    @property
    def where(self) -> str:
        """``events[3].timestamp``."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "body"

    def to_dict(self, prefix: Loc = ()) -> dict[str, Any]:
        """``{loc, msg, type}`` as the API returns it (`prefix` first: ``body``, a batch index)."""
        return {"loc": [*prefix, *self.loc], "msg": self.msg, "type": self.type}


class LeadError(LeadscoreError, ValueError):
    """A lead body breaks the contract; `problems` lists each one."""

    def __init__(self, problems: Sequence[Problem], origin: str = "lead"):
        self.problems = list(problems)
        self.origin = origin
        super().__init__(
            f"{origin}: invalid lead: " + "; ".join(f"{p.where}: {p.msg}" for p in self.problems)
        )

    def lines(self) -> list[str]:
        """One line per problem, each naming the file (or lead) and the field."""
        return [f"{self.origin}: invalid lead: {p.where}: {p.msg}" for p in self.problems]


@dataclass(frozen=True)
class ParsedLead:
    """A valid body as canonical records (naive UTC timestamps), its as_of, and the fields the
    features ignore."""

    lead: Record
    account: Record
    contact: Record
    events: list[Record]
    as_of: datetime
    ignored_fields: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# the value types: strict about JSON types, each with the JSON schema of what it accepts


def _got(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else "a number"


def _moment_input(value: Any) -> Any:
    """Validator (before parsing): ISO-8601 text or a Python date/datetime, never a number (which
    pydantic would read as seconds since 1970); a date without a time is the end of that day."""
    if type(value) is str and len(value.strip()) != len("2026-03-05") and _MOMENT.match(value):
        return value  # the common case: a timestamp with a time, for pydantic to parse
    if isinstance(value, bool | int | float | Decimal):
        raise PydanticCustomError(
            "datetime_type", f"expected an ISO-8601 date or timestamp string, got {_got(value)}"
        )
    if isinstance(value, str):
        if not _MOMENT.match(value):
            raise PydanticCustomError(
                "datetime_parsing",
                "Input should be a valid datetime or date: expected an ISO-8601 date or timestamp "
                "string such as 2026-03-05T10:00:00Z",
            )
        if len(value.strip()) != len("2026-03-05"):  # more than a date
            return value
    return date_only_moment(value) or value


def _naive_utc(moment: datetime) -> datetime:
    """Validator: an aware moment as naive UTC; refuse one that leaves datetime's range."""
    try:
        return _utc(moment)
    except OverflowError:
        raise ValueError("is outside years 1-9999 once converted to UTC") from None


def _number_input(value: Any) -> Any:
    """Validator (before parsing): a number, or numeric text (:data:`NUMBER_TEXT`); never a
    boolean."""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "expected a number, got a boolean")
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise PydanticCustomError(
                "float_parsing", 'Input should be a valid number or numeric text such as "12.5"'
            )
        return float(value)
    return value


def _count_input(value: Any) -> Any:
    """Validator (before parsing): as :func:`_number_input`, for whole numbers."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "expected a number, got a boolean")
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise PydanticCustomError(
                "int_parsing", 'Input should be a valid integer or numeric text such as "3"'
            )
        return int(value) if _INTEGER.fullmatch(value) else float(value)
    return value


def _flag_input(value: Any) -> Any:
    """Validator (before parsing): true/false, or the text "true"/"false" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _BOOLEAN.fullmatch(value):
        return value.lower() == "true"
    got = _got(value) if isinstance(value, int | float | Decimal) else "something else"
    raise PydanticCustomError(
        "bool_type", f'expected a boolean: true or false (or the text "true"/"false"), got {got}'
    )


def _text_input(value: Any) -> Any:
    """Validator (before stripping): at most :data:`MAX_STRING_LENGTH` characters as sent."""
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        raise PydanticCustomError("string_too_long", _too_long(len(value)))
    return value


def _too_long(length: int) -> str:
    return f"String should have at most {MAX_STRING_LENGTH} characters (got {length})"


_MOMENT_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": MOMENT_TEXT},
    ],
    "description": "ISO-8601 text (without an offset: UTC; a date alone: the end of that day), "
    "never a number.",
}
_NUMBER_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER_TEXT}],
    "description": 'A finite number, or numeric text such as "12.5"; never a boolean.',
}
_COUNT_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        {"type": "string", "pattern": NUMBER_TEXT},
    ],
    "description": 'A whole number from 0 to 2^53, or numeric text such as "3"; never a boolean.',
}
_FLAG_SCHEMA = {
    "anyOf": [{"type": "boolean"}, {"type": "string", "pattern": BOOLEAN_TEXT}],
    "description": 'true or false, or the text "true"/"false" in any case; never a number.',
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}


# Every timestamp of a body: parsed from ISO-8601 and normalised to naive UTC on validation; a
# date alone means the end of that day, as in every table.
Moment = Annotated[
    datetime,
    BeforeValidator(_moment_input),
    AfterValidator(_naive_utc),
    WithJsonSchema(_MOMENT_SCHEMA),
]
Number = Annotated[float, BeforeValidator(_number_input), WithJsonSchema(_NUMBER_SCHEMA)]
Count = Annotated[
    int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_count_input), WithJsonSchema(_COUNT_SCHEMA)
]
Flag = Annotated[bool, BeforeValidator(_flag_input), WithJsonSchema(_FLAG_SCHEMA)]
OptionalMoment = Annotated[Moment | None, WithJsonSchema(_nullable(_MOMENT_SCHEMA))]
Text = Annotated[str, StringConstraints(max_length=MAX_STRING_LENGTH), BeforeValidator(_text_input)]
# Text for bodies whose record values are all short (:func:`_short_texts`): no check before
# stripping (the one that names the length as sent), which such a body cannot fail.
ShortText = Annotated[str, StringConstraints(max_length=MAX_STRING_LENGTH)]


class _Record(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        json_schema_extra={"propertyNames": {"maxLength": MAX_STRING_LENGTH}},
    )


_KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "timestamp": (Moment, _MOMENT_SCHEMA),
    "number": (Number, _NUMBER_SCHEMA),
    "count": (Count, _COUNT_SCHEMA),
    "boolean": (Flag, _FLAG_SCHEMA),
}


def _optional(annotation: Any, schema: dict[str, Any]) -> Any:
    """`annotation` or null, its JSON schema one flat ``anyOf``."""
    return Annotated[annotation | None, WithJsonSchema(_nullable(schema))]


def _field(table: str, col: Column, text: Any = Text) -> tuple[Any, Any]:
    required = col.name in _REQUIRED.get(table, set()) and col.kind != "count"
    annotation, schema = _KINDS.get(col.kind, (text, None))
    if required:
        return (annotation, ...)
    if schema is None:
        return (annotation | None, None)
    return (_optional(annotation, schema), None)


def _record_model(
    name: str, table: str, columns: tuple[Column, ...], text: Any = Text
) -> type[_Record]:
    fields: dict[str, Any] = {}
    for col in columns:
        implicit = col.name in _OPTIONAL_IN_BODY or (table == "events" and col.name == "event_id")
        if implicit and col.name not in _REQUIRED.get(table, set()):
            fields[col.name] = (text | None, None)
        else:
            fields[col.name] = _field(table, col, text)
    model: type[_Record] = create_model(name, __base__=_Record, **fields)
    return model


class LeadPayloadBase(BaseModel):
    """Shared behaviour of the generated payload models (see :func:`payload_model`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Typed loosely here; :func:`payload_model` narrows each to its contract-derived model.
    lead: Any
    account: Any = None
    contact: Any = None
    events: list[Any] = Field(default_factory=list)
    as_of: OptionalMoment = None

    def records(self) -> tuple[Record, Record, Record, list[Record]]:
        """(lead, account, contact, events) as plain dicts in canonical field names."""
        data = self.model_dump(include=_RECORDS)  # one serializer call for every record
        lead, account, contact = (
            _utc_extras(self.lead, data["lead"]),
            _utc_extras(self.account, data["account"]),
            _utc_extras(self.contact, data["contact"]),
        )
        for key, record in (("account_id", account), ("contact_id", contact)):
            if lead.get(key) is None:
                lead[key] = record.get(key)
        events = []
        for i, (ev, row) in enumerate(zip(self.events, data["events"], strict=True)):
            _utc_extras(ev, row)
            row["lead_id"] = lead["lead_id"]
            if row.get("event_id") is None:
                row["event_id"] = f"{lead['lead_id']}#{i}"
            events.append(row)
        return lead, account, contact, events

    def as_of_or_now(self) -> datetime:
        """The body's as_of, else now (UTC, naive like every canonical timestamp)."""
        moment = self.as_of or datetime.now(UTC)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


_RECORDS = {"lead", "account", "contact", "events"}


def _utc_extras(record: BaseModel | None, data: dict[str, Any] | None) -> dict[str, Any]:
    """`record` as dumped (`data`; {} for none), its unknown fields' timestamps naive UTC."""
    if record is None or data is None:
        return {}
    for key in record.model_extra or ():  # the declared timestamps are naive UTC already
        value = data[key]
        if isinstance(value, datetime):
            data[key] = _utc(value)
    return data


_MODELS: dict[str, type[LeadPayloadBase]] = {}
# Each payload model's twin for bodies of short texts only (see :data:`ShortText`).
_SHORT_TWINS: dict[type[LeadPayloadBase], type[LeadPayloadBase]] = {}


def payload_model(config: FeatureConfig) -> type[LeadPayloadBase]:
    """The request model for one lead under `config` (custom fields included); cached."""
    key = config.model_dump_json()
    if key not in _MODELS:
        model = _build_payload_model(config)
        _SHORT_TWINS[model] = _build_payload_model(config, ShortText)
        _MODELS[key] = model
    return _MODELS[key]


def _build_payload_model(config: FeatureConfig, text: Any = Text) -> type[LeadPayloadBase]:
    tables = schemas(config)
    lead = _record_model("Lead", "leads", tables["leads"].columns, text)
    account = _record_model("Account", "accounts", tables["accounts"].columns, text)
    contact = _record_model("Contact", "contacts", tables["contacts"].columns, text)
    event = _record_model("Event", "events", tables["events"].columns, text)
    model: type[LeadPayloadBase] = create_model(
        "LeadPayload",
        __base__=LeadPayloadBase,
        lead=(lead, ...),
        account=(account | None, None),  # type: ignore[arg-type]
        contact=(contact | None, None),  # type: ignore[arg-type]
        events=(list[event], Field(default_factory=list)),  # type: ignore[valid-type]
        as_of=(OptionalMoment, None),
    )
    return model


# ---------------------------------------------------------------------------------------------
# the validator


def edit_distance(a: str, b: str, limit: int = MAX_SUGGESTION_DISTANCE) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts once), case-insensitive;
    anything above `limit` is returned as ``limit + 1``."""
    a, b = a.lower(), b.lower()
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return min(prev[-1], limit + 1)


def closest(key: str, known: Iterable[str]) -> str | None:
    """The known name within edit distance 2 of `key` (the nearest; None if there is none)."""
    best: tuple[int, str] | None = None
    for name in known:
        d = edit_distance(key, name)
        if d <= MAX_SUGGESTION_DISTANCE and (best is None or (d, name) < best):
            best = (d, name)
    return None if best is None else best[1]


@functools.lru_cache(maxsize=1024)
def _closest_field(model: type[BaseModel], key: str) -> str | None:
    """:func:`closest` among `model`'s fields (CRMs send the same unknown keys again and again)."""
    return closest(key, model.model_fields)


def _shown(key: str | int) -> str | int:
    """A key as an error names it: a field name over the limit only by its start."""
    if isinstance(key, str) and len(key) > MAX_STRING_LENGTH:
        return key[:SHOWN_KEY_LENGTH] + "…"
    return key


def _type_problems(exc: ValidationError, model: type[LeadPayloadBase]) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(_shown(part) for part in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            near = closest(str(loc[0]), model.model_fields)
            known = ", ".join(model.model_fields)
            msg += f"; did you mean {near!r}?" if near else f"; a body has {known}"
        problems.append(Problem(loc, msg, str(err["type"])))
    return problems


def _unknown_keys(
    record: BaseModel | None, loc: Loc, problems: list[Problem], ignored: dict[str, None]
) -> None:
    if record is None or not record.model_extra:
        return
    model = type(record)
    where = ".".join(str(p) for p in loc if not isinstance(p, int))
    budget = MAX_EXTRA_VALUES
    for key, value in record.model_extra.items():
        if len(key) > MAX_STRING_LENGTH:
            problems.append(Problem((*loc, _shown(key)), "field name: " + _too_long(len(key)),
                                    "string_too_long"))  # fmt: skip
            continue
        budget = _bounded_extra(value, (*loc, key), budget, problems)
        if budget < 0:
            problems.append(Problem(loc, f"more than {MAX_EXTRA_VALUES} values in fields the "
                                         "contract does not know (nested ones counted)",
                                    "too_many_extra_values"))  # fmt: skip
            return
        near = _closest_field(model, key)
        if near is not None:
            problems.append(
                Problem((*loc, key), f"unknown field; did you mean {near!r}?", "unknown_field")
            )
        else:
            ignored[f"{where}.{key}"] = None


def _bounded_extra(value: Any, loc: Loc, budget: int, problems: list[Problem]) -> int:
    """Check one unknown field's value (kept as sent, so stored and echoed): every string and
    nested key within :data:`MAX_STRING_LENGTH`; returns the budget of values left (< 0: over
    :data:`MAX_EXTRA_VALUES`, and the walk stopped)."""
    stack: list[tuple[Loc, Any]] = [(loc, value)]
    while stack:
        where, node = stack.pop()
        budget -= 1
        if budget < 0:
            return budget
        if isinstance(node, str) and len(node) > MAX_STRING_LENGTH:
            problems.append(Problem(where, _too_long(len(node)), "string_too_long"))
        elif isinstance(node, Mapping):
            for key, item in node.items():
                if isinstance(key, str) and len(key) > MAX_STRING_LENGTH:
                    problems.append(Problem((*where, _shown(key)),
                                            "field name: " + _too_long(len(key)),
                                            "string_too_long"))  # fmt: skip
                else:
                    stack.append(((*where, key), item))
        elif isinstance(node, list | tuple):
            stack.extend(((*where, i), item) for i, item in enumerate(node))
    return budget


def _id_problems(lead: Record, account: Record, contact: Record) -> list[Problem]:
    """Account and contact ids that contradict the lead (as posted) or each other."""
    checks = (
        (("account", "account_id"), account, lead.get("account_id"), "the lead names account"),
        (("contact", "contact_id"), contact, lead.get("contact_id"), "the lead names contact"),
        (("contact", "account_id"), contact, account.get("account_id"), "the account is"),
    )
    problems = []
    for loc, record, expected, says in checks:
        given = record.get(loc[1])
        if given is not None and expected is not None and given != expected:
            problems.append(Problem(loc, f"is {given!r} but {says} {expected!r}"))
    return problems


def _short_texts(data: Any) -> bool:
    """Whether every value of the body's records is a record of values that are not over-long
    texts (then :data:`Text`'s check before stripping cannot fail, nor change anything)."""
    if type(data) is not dict:
        return False
    events = data.get("events", [])
    if type(events) is not list:
        return False
    for record in (data.get("lead"), data.get("account"), data.get("contact"), *events):
        if record is None:
            continue
        if type(record) is not dict:
            return False
        for value in record.values():
            if type(value) is str and len(value) > MAX_STRING_LENGTH:
                return False
    return True


def _too_many_events(data: Any, max_events: int | None) -> Problem | None:
    """The event limit, checked on the list's length alone (before any event is validated)."""
    events = data.get("events") if max_events is not None and isinstance(data, Mapping) else None
    if not isinstance(events, Sized) or isinstance(events, str | bytes | Mapping):
        return None
    if max_events is None or len(events) <= max_events:
        return None
    return Problem(("events",), f"{len(events)} events; at most {max_events} per lead",
                   "too_many_events")  # fmt: skip


def validate_lead(
    model: type[LeadPayloadBase],
    data: Any,
    origin: str = "lead",
    max_events: int | None = None,
) -> ParsedLead:
    """Validate one lead body against a contract's payload model (:func:`payload_model`).

    Raises :class:`LeadError` listing every problem (module docstring); a body of more than
    `max_events` events (None: any number) is refused with that problem alone. Returns the lead
    as canonical records with its as_of (the body's, else now) and the ignored fields.
    """
    too_many = _too_many_events(data, max_events)
    if too_many is not None:
        raise LeadError([too_many], origin)
    twin = _SHORT_TWINS.get(model)
    try:
        payload = (twin if twin and _short_texts(data) else model).model_validate(data)
    except ValidationError as exc:
        raise LeadError(_type_problems(exc, model), origin) from None
    problems: list[Problem] = []
    ignored: dict[str, None] = {}  # ordered and unique
    for entity in _ENTITIES:
        _unknown_keys(getattr(payload, entity), (entity,), problems, ignored)
    for i, event in enumerate(payload.events):
        _unknown_keys(event, ("events", i), problems, ignored)
    lead, account, contact, events = payload.records()
    lead_id = payload.lead.lead_id
    for i, event in enumerate(payload.events):
        if event.lead_id is not None and event.lead_id != lead_id:
            problems.append(Problem(("events", i, "lead_id"),
                                    f"{event.lead_id!r} is another lead's event; expected "
                                    f"{lead_id!r} or no lead_id"))  # fmt: skip
        if payload.as_of is not None and event.timestamp > payload.as_of:
            problems.append(Problem(("events", i, "timestamp"),
                                    f"{event.timestamp.isoformat()} is after as_of "
                                    f"{payload.as_of.isoformat()}; a score may only use history "
                                    "up to as_of"))  # fmt: skip
    posted = {key: getattr(payload.lead, key, None) for key in ("account_id", "contact_id")}
    problems += _id_problems(posted, account, contact)
    as_of = payload.as_of_or_now()
    created = payload.lead.created_at
    if created > as_of:
        loc: Loc = ("as_of",) if payload.as_of is not None else ("lead", "created_at")
        what = (f"as_of {as_of.isoformat()} is before the lead's created_at"
                if payload.as_of is not None else "is in the future")  # fmt: skip
        problems.append(Problem(loc, f"{what} ({created.isoformat()}); a lead cannot be "
                                     "scored before it exists"))  # fmt: skip
    if problems:
        raise LeadError(problems, origin)
    return ParsedLead(lead, account, contact, events, as_of, tuple(ignored))
