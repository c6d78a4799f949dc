"""One lead as posted to the API, given to the MLflow pyfunc or read from `lead.json`: the one
validator they all use.

Body: ``{"lead": {...}, "account": {...}, "contact": {...}, "events": [...], "as_of": ...}`` in
the data contract's field names (custom fields from config included). :func:`validate_lead`
checks, and reports every problem as a :class:`Problem` (location, message, type):

* types: counts whole and >= 0, numbers finite, timestamps ISO-8601
  within years 1-9999 once in UTC, required fields present;
* unknown fields: at the top level refused; inside lead, account, contact and events, a key
  within edit distance 2 of a field the contract (or the config) declares is refused with
  "did you mean"; any other key (CRMs add their own) is accepted, ignored by the features and
  listed in :attr:`ParsedLead.ignored_fields`;
* the lead's own story: events of another lead, events dated after an explicit `as_of`, a lead
  created after its `as_of`, and account or contact ids that contradict each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

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


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, str_strip_whitespace=True)


def _annotation(col: Column) -> Any:
    kinds: dict[str, Any] = {"timestamp": Moment, "number": float, "boolean": bool}
    return kinds.get(col.kind, str)


def _field(table: str, col: Column) -> tuple[Any, Any]:
    required = col.name in _REQUIRED.get(table, set())
    if col.kind == "count":
        return (int | None, Field(default=None, ge=0))
    annotation = _annotation(col)
    if required:
        return (annotation, ...)
    return (annotation | None, None)


def _record_model(name: str, table: str, columns: tuple[Column, ...]) -> type[_Record]:
    fields: dict[str, Any] = {}
    for col in columns:
        implicit = col.name in _OPTIONAL_IN_BODY or (table == "events" and col.name == "event_id")
        if implicit and col.name not in _REQUIRED.get(table, set()):
            fields[col.name] = (str | None, None)
        else:
            fields[col.name] = _field(table, col)
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
    as_of: Moment | None = None

    def records(self) -> tuple[Record, Record, Record, list[Record]]:
        """(lead, account, contact, events) as plain dicts in canonical field names."""
        lead, account, contact = _dump(self.lead), _dump(self.account), _dump(self.contact)
        for key, record in (("account_id", account), ("contact_id", contact)):
            if lead.get(key) is None:
                lead[key] = record.get(key)
        events = []
        for i, ev in enumerate(self.events):
            row = _dump(ev)
            row["lead_id"] = lead["lead_id"]
            if row.get("event_id") is None:
                row["event_id"] = f"{lead['lead_id']}#{i}"
            events.append(row)
        return lead, account, contact, events

    def as_of_or_now(self) -> datetime:
        """The body's as_of, else now (UTC, naive like every canonical timestamp)."""
        moment = self.as_of or datetime.now(UTC)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _naive_utc(moment: datetime) -> datetime:
    """Validator: an aware moment as naive UTC; refuse one that leaves datetime's range."""
    try:
        return _utc(moment)
    except OverflowError:
        raise ValueError("is outside years 1-9999 once converted to UTC") from None


def _end_of_date(value: Any) -> Any:
    """Validator (before parsing): a date without a time is the end of that day."""
    return date_only_moment(value) or value


# Every timestamp of a body: parsed from ISO-8601 and normalised to naive UTC on validation; a
# date alone means the end of that day, as in every table.
Moment = Annotated[datetime, BeforeValidator(_end_of_date), AfterValidator(_naive_utc)]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _dump(record: BaseModel | None) -> dict[str, Any]:
    if record is None:
        return {}
    data = record.model_dump()
    return {k: _utc(v) if isinstance(v, datetime) else v for k, v in data.items()}


_MODELS: dict[str, type[LeadPayloadBase]] = {}


def payload_model(config: FeatureConfig) -> type[LeadPayloadBase]:
    """The request model for one lead under `config` (custom fields included); cached."""
    key = config.model_dump_json()
    if key not in _MODELS:
        _MODELS[key] = _build_payload_model(config)
    return _MODELS[key]


def _build_payload_model(config: FeatureConfig) -> type[LeadPayloadBase]:
    tables = schemas(config)
    lead = _record_model("Lead", "leads", tables["leads"].columns)
    account = _record_model("Account", "accounts", tables["accounts"].columns)
    contact = _record_model("Contact", "contacts", tables["contacts"].columns)
    event = _record_model("Event", "events", tables["events"].columns)
    model: type[LeadPayloadBase] = create_model(
        "LeadPayload",
        __base__=LeadPayloadBase,
        lead=(lead, ...),
        account=(account | None, None),  # type: ignore[arg-type]
        contact=(contact | None, None),  # type: ignore[arg-type]
        events=(list[event], Field(default_factory=list)),  # type: ignore[valid-type]
        as_of=(Moment | None, None),
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


def _type_problems(exc: ValidationError, model: type[LeadPayloadBase]) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            near = closest(str(loc[0]), model.model_fields)
            msg += f"; did you mean {near!r}?" if near else (
                f"; a body has {', '.join(model.model_fields)}"
            )
        problems.append(Problem(loc, msg, str(err["type"])))
    return problems


def _unknown_keys(
    record: BaseModel | None, loc: Loc, problems: list[Problem], ignored: dict[str, None]
) -> None:
    if record is None or not record.model_extra:
        return
    known = type(record).model_fields
    where = ".".join(str(p) for p in loc if not isinstance(p, int))
    for key in record.model_extra:
        near = closest(key, known)
        if near is not None:
            problems.append(
                Problem((*loc, key), f"unknown field; did you mean {near!r}?", "unknown_field")
            )
        else:
            ignored[f"{where}.{key}"] = None


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


def validate_lead(model: type[LeadPayloadBase], data: Any, origin: str = "lead") -> ParsedLead:
    """Validate one lead body against a contract's payload model (:func:`payload_model`).

    Raises :class:`LeadError` listing every problem (module docstring); returns the lead as
    canonical records with its as_of (the body's, else now) and the ignored fields.
    """
    try:
        payload = model.model_validate(data)
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
    problems += _id_problems(_dump(payload.lead), account, contact)
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
