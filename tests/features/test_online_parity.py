"""The batch builder (`features.snapshot`) and the one-lead builder (`features.online`) agree.

Both interpret one FeatureSpec under the rules in the docstring of
:mod:`~leadscore.features.snapshot`.
The property test draws 1-4 leads with accounts, contacts and event histories (no events,
events exactly at as_of, 1 µs / 1 s after it, before created_at, on the 7-day window edges,
several events on one (lead, timestamp, type), unknown categories, missing optional fields,
field_update ties broken by event_id), builds the batch side through
`features.contract.validate` on raw frames with ISO-8601 text timestamps, the online side from
plain dicts, and demands exact equality of every column (NaN == NaN, None == <NA>).

Moments are mostly whole microseconds (ISO text and `datetime`), sometimes nanoseconds
(`pd.Timestamp`, ISO text with nine fractional digits), as `as_of_after_creation` makes them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.features.config import CustomField, FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData, validate
from leadscore.features.online import OnlineBuilder
from leadscore.features.schema import END_OF_DAY, EVENT_TYPES, UnseenCategoryWarning
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import DAY_NS, FeatureSpec, build_spec
from tests.conftest import examples

UNKNOWN = "zz_unknown"
BASE = datetime(2024, 3, 1)  # naive UTC
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
NS = pd.Timedelta(nanoseconds=1)
SECOND = timedelta(seconds=1)
DAY_US = 86_400 * 10**6

# Dated custom fields (field_update events), one per dtype `latest` parses. Names must not
# clash with built-in lead columns (budget_confirmed, budget_amount, ...).
DATED_FIELDS = (
    CustomField(name="deal_budget", entity="lead", type="number", dated=True,
                label="Deal budget", template="Budget is {value}"),
    CustomField(name="champion_known", entity="lead", type="boolean", dated=True,
                label="Champion known", template="A champion is known: {value}"),
    CustomField(name="deal_tier", entity="lead", type="category", dated=True,
                values=("gold", "silver", "bronze"), label="Deal tier",
                template="Deal tier is {value}"),
)  # fmt: skip


def _config() -> FeatureConfig:
    base = load_feature_config()
    return FeatureConfig(ordered=base.ordered, custom_fields=(*base.custom_fields, *DATED_FIELDS))


CONFIG = _config()
SPEC: FeatureSpec = build_spec(CONFIG)
BUILDER = OnlineBuilder(SPEC)

EVENT_COLUMNS = (
    "event_id", "lead_id", "timestamp", "type", "subtype", "channel", "direction", "outcome",
    "value", "page_views", "pricing_page_views", "demo_page_views", "duration_seconds",
    "field", "field_value",
)  # fmt: skip
COUNT_COLUMNS = ("page_views", "pricing_page_views", "demo_page_views", "duration_seconds")


def _vocab(*values: str) -> list[str | None]:
    return [*values, UNKNOWN, None]


ACCOUNT_VALUES: dict[str, list[str | None]] = {
    "industry": _vocab("software", "fintech", "manufacturing"),
    "region": _vocab("emea", "na", "apac"),
    "employee_band": _vocab(*CONFIG.ordered["account.employee_band"]),
    "revenue_band": _vocab(*CONFIG.ordered["account.revenue_band"]),
    "process_maturity_band": _vocab("low", "medium", "high"),
}
CONTACT_VALUES: dict[str, list[str | None]] = {
    "role_function": _vocab("finance", "it", "operations"),
    "seniority": _vocab(*CONFIG.ordered["contact.seniority"]),
    "buyer_role": _vocab("champion", "decision_maker", "user"),
    "email_domain_type": _vocab("corporate", "personal", "unknown"),
}
LEAD_SOURCES = ["webinar", "paid_search", "referral", "outbound", UNKNOWN]
SUBTYPES = _vocab(
    "content_download", "webinar", "email", "call", "linkedin_message", "pricing_page",
    "demo_page", "meeting", "demo",
)  # fmt: skip
OUTCOMES = _vocab("meeting_set", "demo_completed", "connected", "no_answer", "left_voicemail")
# field_update values: mostly readable for their field, sometimes not (missing in both).
JUNK_VALUES = ["", " ", "abc", "inf", "nan", UNKNOWN]
FIELD_VALUES: dict[str, list[str]] = {
    "deal_budget": ["1200", "0", "-3.5", "1e3", " 42 ", "0.1", "7"],
    "champion_known": ["yes", "no", "TRUE", "false", "1", "0", " Yes "],
    "deal_tier": ["gold", "silver", " bronze ", "platinum"],
}


# ---------------------------------------------------------------------------------------------
# building both sides from one drawn world


def _iso(moment: datetime | str, style: str) -> str:
    """ISO-8601 text of a naive-UTC moment in one of several equivalent spellings."""
    if isinstance(moment, str):  # given as text already (example tests)
        return moment
    aware = moment.replace(tzinfo=UTC)
    if style == "date" and moment == datetime(moment.year, moment.month, moment.day):
        return moment.date().isoformat()
    if style == "z":
        return moment.isoformat() + "Z"
    if style == "utc":
        return aware.isoformat()
    if style == "plus":
        return aware.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    if style == "minus":
        return aware.astimezone(timezone(timedelta(hours=-8))).isoformat()
    return moment.isoformat()


def _meant(moment: datetime | str, style: str) -> datetime | str:
    """The moment a spelling means: a date alone (the "date" style of a midnight) is the end of
    that day, as the contract reads it; every other spelling is the moment itself."""
    if isinstance(moment, str) or _iso(moment, style) != moment.date().isoformat():
        return moment
    return moment + END_OF_DAY


def _online_moment(moment: datetime | str, style: str) -> Any:
    """The same moment as an online caller may pass it: text, naive, aware or a Timestamp."""
    if isinstance(moment, str):
        return moment
    if style == "naive":
        return moment
    if style == "aware":
        return moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-3)))
    if style == "pandas":
        return pd.Timestamp(moment)
    return _iso(moment, style)


def _as_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    values = [[r.get(c) for c in columns] for r in rows]
    return pd.DataFrame(values, columns=list(columns), dtype=object)


def crm_of(world: Mapping[str, Any]) -> tuple[CrmData, pd.Series]:
    """A drawn world as validated tables (via validate() on raw frames with ISO text
    timestamps) and its as_of per lead."""
    leads = [{**x, "created_at": _iso(x["created_at"], x["ts_style"])} for x in world["leads"]]
    events = [{**e, "timestamp": _iso(e["timestamp"], e["ts_style"])} for e in world["events"]]
    raw = {
        "accounts": _as_frame(world["accounts"], ["account_id", *ACCOUNT_VALUES]),
        "contacts": _as_frame(world["contacts"], ["contact_id", "account_id", *CONTACT_VALUES]),
        "leads": _as_frame(leads, ["lead_id", "account_id", "contact_id", "created_at", "source"]),
        "events": _as_frame(events, EVENT_COLUMNS),
        "outcomes": pd.DataFrame({"lead_id": pd.Series([], dtype=object)}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenCategoryWarning)
        tables = validate(raw, CONFIG)
    data = CrmData(**tables, observation_end=pd.Timestamp(BASE + 100 * DAY),
                   has_outcome_dates=True, source="test")  # fmt: skip
    as_of = pd.Series([pd.Timestamp(_meant(lead["as_of"], lead["as_of_style"]))
                       for lead in world["leads"]])  # fmt: skip
    return data, as_of


def batch_rows(world: Mapping[str, Any]) -> pd.DataFrame:
    """The snapshot of every lead, through the batch builder."""
    data, as_of = crm_of(world)
    return snapshot(data, SPEC, as_of)


def online_row(world: Mapping[str, Any], i: int) -> dict[str, Any]:
    """One lead's row from plain dicts: only that lead's events, in drawn (unsorted) order."""
    lead = world["leads"][i]
    accounts = {a["account_id"]: a for a in world["accounts"]}
    contacts = {c["contact_id"]: c for c in world["contacts"]}

    def plain(record: Mapping[str, Any], sparse: bool) -> dict[str, Any]:
        """The record; when `sparse`, with its missing fields left out instead of None."""
        return {k: v for k, v in record.items() if not (sparse and v is None)}

    def moment(value: datetime | str, ts_style: str, online_style: str) -> Any:
        """What the batch side reads (`ts_style` text), as the online caller passes it."""
        if online_style == "same":
            return _iso(value, ts_style)
        return _online_moment(_meant(value, ts_style), online_style)

    events = [
        {k: v for k, v in plain(ev, ev["sparse"]).items() if k in EVENT_COLUMNS}
        | {"timestamp": moment(ev["timestamp"], ev["ts_style"], ev["online_style"])}
        for ev in world["events"]
        if ev["lead_id"] == lead["lead_id"]
    ]
    lead_dict = {
        "lead_id": lead["lead_id"],
        "account_id": lead["account_id"],
        "contact_id": lead["contact_id"],
        "created_at": moment(lead["created_at"], lead["ts_style"], lead["online_style"]),
        "source": lead["source"],
    }
    account = plain(accounts[lead["account_id"]], lead["sparse"])
    contact_id = lead["contact_id"]
    contact = None if contact_id is None else plain(contacts[contact_id], lead["sparse"])
    as_of = _online_moment(lead["as_of"], lead["as_of_style"])
    return BUILDER.row(lead_dict, account, contact, events, as_of)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA


def _same(dtype: str, b: Any, o: Any) -> bool:
    """Exact equality of a batch value `b` and an online value `o` of one feature dtype."""
    if dtype == "count":
        return (
            isinstance(b, int | np.integer)
            and isinstance(o, int)
            and not isinstance(o, bool)
            and int(b) == o
        )
    if dtype == "number":  # a float on both sides; NaN == NaN, otherwise bit-for-bit equal
        if not (isinstance(b, float) and isinstance(o, float)):
            return False
        return (math.isnan(b) and math.isnan(o)) or math.isclose(b, o, rel_tol=0, abs_tol=0)
    if dtype == "boolean":
        if _missing(b) or _missing(o):
            return _missing(b) and o is None
        return isinstance(b, bool | np.bool_) and isinstance(o, bool) and bool(b) is o
    # category, ordinal
    if _missing(b) or _missing(o):
        return _missing(b) and o is None
    return isinstance(b, str) and isinstance(o, str) and b == o


def mismatches(batch: Mapping[Any, Any], online: Mapping[str, Any]) -> list[str]:
    """Every column on which a batch row and an online row differ."""
    problems = []
    expected = ["lead_id", "as_of", "lead_age_days"]
    expected += [n for n in SPEC.names if n not in expected]
    if list(batch) != expected or list(online) != expected:
        problems.append(f"columns: batch {list(batch)}, online {list(online)}")
    if str(batch["lead_id"]) != online["lead_id"]:
        problems.append(f"lead_id: batch {batch['lead_id']!r}, online {online['lead_id']!r}")
    batch_as_of = pd.Timestamp(batch["as_of"]).value
    if batch_as_of != online["as_of"]:
        problems.append(f"as_of (ns): batch {batch_as_of}, online {online['as_of']!r}")
    dtypes = {"lead_age_days": "number"} | {f.name: f.dtype for f in SPEC}
    for name, dtype in dtypes.items():
        if not _same(dtype, batch[name], online[name]):
            problems.append(f"{name} ({dtype}): batch {batch[name]!r}, online {online[name]!r}")
    return problems


def assert_parity(world: Mapping[str, Any]) -> pd.DataFrame:
    """Both builders agree for every lead of `world`; returns the batch rows."""
    batch = batch_rows(world)
    assert list(batch["lead_id"]) == [lead["lead_id"] for lead in world["leads"]]
    for i, lead in enumerate(world["leads"]):
        problems = mismatches(batch.iloc[i].to_dict(), online_row(world, i))
        assert not problems, f"lead {lead['lead_id']}:\n  " + "\n  ".join(problems)
    return batch


# ---------------------------------------------------------------------------------------------
# strategies

TS_STYLES = st.sampled_from(["plain", "z", "utc", "plus", "minus", "date"])
ONLINE_STYLES = st.sampled_from(["same", "naive", "aware", "pandas"])
NULLABLE_COUNT = st.none() | st.integers(0, 10_000)


@st.composite
def creation_moments(draw: st.DrawFn) -> datetime:
    """A creation moment: midnight (spellable as a bare date), whole seconds or microseconds."""
    days = draw(st.integers(0, 20))
    extra = draw(
        st.just(timedelta(0))
        | st.integers(0, 86_399).map(lambda s: s * SECOND)
        | st.integers(0, DAY_US - 1).map(lambda us: us * US)
    )
    return BASE + days * DAY + extra


@st.composite
def as_of_after(draw: st.DrawFn, created: datetime) -> datetime:
    """created_at + N x 24 h, N in 0..40: whole, fractional (to the ns, as in
    `as_of_after_creation`), fractional as a `timedelta` rounds it (to the µs), or any µs."""
    n = draw(
        st.integers(0, 40).map(lambda d: timedelta(days=d))
        | (
            st.floats(0, 40, allow_nan=False) | st.integers(0, 40 * 10**9).map(lambda k: k / 10**9)
        ).map(lambda d: pd.Timedelta(days=d))
        | st.floats(0, 40, allow_nan=False).map(lambda d: timedelta(days=d))
        | st.integers(0, 40 * DAY_US).map(lambda us: us * US)
    )
    return _plus(created, n)


def _plus(moment: datetime, delta: timedelta) -> datetime:
    """moment + delta, to the ns when either is a pandas type (datetime + Timedelta drops ns)."""
    if isinstance(delta, pd.Timedelta) or isinstance(moment, pd.Timestamp):
        return pd.Timestamp(moment) + pd.Timedelta(delta)
    return moment + delta


@st.composite
def event_times(draw: st.DrawFn, created: datetime, as_of: datetime) -> datetime:
    """Timestamps on and around every boundary the rules name, or anywhere nearby."""
    anchors = {
        "as_of": as_of,
        "created": created,
        "first_7d_end": created + 7 * DAY,
        "last_7d_start": as_of - 7 * DAY,
        "prev_7d_start": as_of - 14 * DAY,
    }
    anchor = draw(st.sampled_from([*anchors, "as_of", "anywhere"]))
    if anchor == "anywhere":
        span = max(as_of - created, timedelta(0)) + 10 * DAY
        return created - 5 * DAY + draw(st.integers(0, span // US)) * US
    nudge = draw(
        st.sampled_from([timedelta(0), US, -US, SECOND, -SECOND])
        | st.sampled_from([timedelta(0), US, SECOND, NS, -NS, 500 * NS])
        | st.integers(-3 * DAY_US, 3 * DAY_US).map(lambda us: us * US)
    )
    return _plus(anchors[anchor], nudge)


@st.composite
def events_for(
    draw: st.DrawFn, lead_id: str, created: datetime, as_of: datetime
) -> list[dict[str, Any]]:
    """0-6 drawn events of one lead, some repeated on the same (lead, timestamp, type)."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([*EVENT_TYPES, "touch", "field_update", UNKNOWN]))
        field = draw(st.sampled_from([*(f.name for f in DATED_FIELDS), UNKNOWN, None]))
        if kind != "field_update" and draw(st.booleans()):
            field = None
        readable = FIELD_VALUES.get(field or "", JUNK_VALUES)
        values = st.none() | st.sampled_from(readable) | st.sampled_from(JUNK_VALUES)
        event = {
            "lead_id": lead_id,
            "timestamp": draw(event_times(created, as_of)),
            "type": kind,
            "subtype": draw(st.sampled_from(SUBTYPES)),
            "channel": draw(st.sampled_from(_vocab("email", "phone", "web"))),
            "direction": draw(st.sampled_from(_vocab("inbound", "outbound"))),
            "outcome": draw(st.sampled_from(OUTCOMES)),
            "value": draw(st.none() | st.floats(-1e6, 1e9, allow_nan=False)),
            **{c: draw(NULLABLE_COUNT) for c in COUNT_COLUMNS},
            "field": field,
        }
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
            # copies share lead, timestamp and type; their field_value may differ
            out.append(
                event
                | {
                    "field_value": draw(values),
                    "page_views": draw(NULLABLE_COUNT),
                    "ts_style": draw(TS_STYLES),
                    "online_style": draw(ONLINE_STYLES),
                    "sparse": draw(st.booleans()),
                }
            )
    return out


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """1-4 leads with accounts, contacts, as_of and events; events of all leads interleaved."""
    accounts: list[dict[str, str | None]] = [
        {"account_id": f"a{i}", **{c: draw(st.sampled_from(v)) for c, v in ACCOUNT_VALUES.items()}}
        for i in range(draw(st.integers(1, 2)))
    ]
    contacts: list[dict[str, str | None]] = [
        {
            "contact_id": f"c{i}",
            "account_id": draw(st.sampled_from(accounts))["account_id"],
            **{c: draw(st.sampled_from(v)) for c, v in CONTACT_VALUES.items()},
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    contact_ids = st.none() | st.sampled_from([c["contact_id"] for c in contacts] or [None])
    # one fixed moment for every lead (sometimes before a lead's creation), or per-lead N days
    fixed_as_of = draw(
        st.none()
        | st.sampled_from([BASE + 12 * DAY, BASE + 30 * DAY + 7 * SECOND])
        | st.integers(-2 * DAY_US, 45 * DAY_US).map(lambda u: BASE + u * US)
    )
    leads, events = [], []
    for i in range(draw(st.integers(1, 4))):
        created = draw(creation_moments())
        as_of = fixed_as_of or draw(as_of_after(created))
        lead_id = f"L{i}"
        leads.append(
            {
                "lead_id": lead_id,
                "account_id": draw(st.sampled_from(accounts))["account_id"],
                "contact_id": draw(contact_ids),
                "created_at": created,
                "source": draw(st.sampled_from(LEAD_SOURCES)),
                "as_of": as_of,
                "ts_style": draw(TS_STYLES),
                "online_style": draw(ONLINE_STYLES),
                "as_of_style": draw(ONLINE_STYLES.filter(lambda s: s != "same") | TS_STYLES),
                "sparse": draw(st.booleans()),
            }
        )
        events.extend(draw(events_for(lead_id, created, as_of)))
    events = draw(st.permutations(events))
    # ids whose text order differs from list order ("e10" < "e9"), so tie-breaks are exercised
    ids = draw(st.permutations([f"e{k}" for k in range(len(events))]))
    events = [ev | {"event_id": eid} for ev, eid in zip(events, ids, strict=True)]
    return {"accounts": accounts, "contacts": contacts, "leads": leads, "events": events}


# ---------------------------------------------------------------------------------------------
# tests


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(worlds())
def test_builders_agree_on_random_histories(world: dict[str, Any]) -> None:
    assert_parity(world)


def _world(events: list[dict[str, Any]], as_of: datetime) -> dict[str, Any]:
    """Lead L0 created at BASE with `events`, and lead L1 whose touch must not leak into L0."""
    lead = {
        "account_id": "a0", "contact_id": "c0", "created_at": BASE, "source": "webinar",
        "as_of": as_of, "ts_style": "plain", "online_style": "same", "as_of_style": "plain",
        "sparse": False,
    }  # fmt: skip
    defaults = dict.fromkeys(EVENT_COLUMNS) | {
        "ts_style": "plain", "online_style": "same", "sparse": False,
    }  # fmt: skip
    other = {"event_id": "x0", "lead_id": "L1", "timestamp": as_of, "type": "touch"}
    return {
        "accounts": [{"account_id": "a0", "industry": "software"}],
        "contacts": [{"contact_id": "c0", "account_id": "a0", "seniority": "vp"}],
        "leads": [lead | {"lead_id": "L0"}, lead | {"lead_id": "L1"}],
        "events": [defaults | e for e in [*events, other]],
    }


AS_OF = BASE + 10 * DAY + timedelta(hours=5, microseconds=123)
HISTORY = [
    {"event_id": "e1", "lead_id": "L0", "timestamp": BASE + DAY, "type": "touch",
     "subtype": "email", "direction": "outbound"},
    {"event_id": "e2", "lead_id": "L0", "timestamp": BASE + 2 * DAY, "type": "web_session",
     "subtype": "pricing_page", "page_views": 3},
    {"event_id": "e3", "lead_id": "L0", "timestamp": BASE + 3 * DAY, "type": "field_update",
     "field": "deal_budget", "field_value": "1000"},
]  # fmt: skip
LATE_TOUCH = {"event_id": "e9", "lead_id": "L0", "type": "touch", "subtype": "webinar",
              "direction": "inbound"}  # fmt: skip
LATE_UPDATE = {"event_id": "e8", "lead_id": "L0", "type": "field_update", "field": "deal_budget",
               "field_value": "5000"}  # fmt: skip


def _lead0(world: dict[str, Any]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """L0's batch row and online row (compared by each test on the features it is about)."""
    return batch_rows(world).iloc[0].to_dict(), online_row(world, 0)


def _same_rows(a: Mapping[Any, Any], b: Mapping[Any, Any]) -> bool:
    """Two rows of one builder are equal (missing == missing, whatever its spelling)."""

    def gone(v: Any) -> bool:
        return _missing(v) or (isinstance(v, float) and math.isnan(v))

    return list(a) == list(b) and all(
        (gone(a[k]) and gone(b[k])) or (not gone(a[k]) and a[k] == b[k]) for k in a
    )


@pytest.mark.parametrize("after", [US, SECOND], ids=["1us", "1s"])
def test_event_after_as_of_changes_nothing(after: timedelta) -> None:
    without_batch, without_online = _lead0(_world(HISTORY, AS_OF))
    late = [LATE_TOUCH | {"timestamp": AS_OF + after}, LATE_UPDATE | {"timestamp": AS_OF + after}]
    with_batch, with_online = _lead0(_world([*HISTORY, *late], AS_OF))
    assert _same_rows(with_batch, without_batch)
    assert _same_rows(with_online, without_online)
    for row in (with_batch, with_online):
        assert row["touches"] == 1
        assert row["inbound_touches"] == row["webinars"] == 0
        assert row["days_since_last_touch"] == (AS_OF - (BASE + DAY)) / DAY
        assert row["deal_budget"] == 1000.0


def test_event_exactly_at_as_of_counts() -> None:
    before_batch, before_online = _lead0(_world(HISTORY, AS_OF))
    late = [LATE_TOUCH | {"timestamp": AS_OF}, LATE_UPDATE | {"timestamp": AS_OF}]
    at_batch, at_online = _lead0(_world([*HISTORY, *late], AS_OF))
    for row, was in ((at_batch, before_batch), (at_online, before_online)):
        assert row["touches"] == was["touches"] + 1 == 2
        assert row["inbound_touches"] == row["webinars"] == row["touches_last_7d"] == 1
        assert row["inbound_share"] == 0.5
        assert row["days_since_last_touch"] == 0.0
        assert row["days_since_first_touch"] == was["days_since_first_touch"]
        assert row["deal_budget"] == 5000.0


def test_field_update_tie_takes_greatest_event_id() -> None:
    ties = [
        LATE_UPDATE | {"event_id": eid, "timestamp": AS_OF, "field_value": value}
        for eid, value in (("e10", "10"), ("e9", "9"), ("e100", "100"))
    ]  # as text: "e10" < "e100" < "e9"
    batch, online = _lead0(_world([*HISTORY, *ties], AS_OF))
    assert batch["deal_budget"] == online["deal_budget"] == 9.0


def test_missing_latest_number_is_nan_in_both() -> None:
    batch, online = _lead0(_world([], AS_OF))  # no field_update at all
    assert math.isnan(batch["deal_budget"])
    assert isinstance(online["deal_budget"], float) and math.isnan(online["deal_budget"])


@pytest.mark.parametrize("as_of_style", ["pandas", "plain"], ids=["Timestamp", "iso_text"])
def test_sub_microsecond_as_of_agrees(as_of_style: str) -> None:
    """as_of_after_creation gives nanosecond moments; both builders must read them to the ns."""
    leads = pd.DataFrame({"created_at": [pd.Timestamp(BASE)]})
    as_of = as_of_after_creation(leads, 0.123456789).iloc[0]  # 02:57:46.666569600
    assert as_of.nanosecond != 0
    world = _world(HISTORY, as_of)
    world["leads"][0]["as_of_style"] = as_of_style
    batch, online = _lead0(world)
    age = (as_of.value - pd.Timestamp(BASE).value) / DAY_NS
    assert batch["lead_age_days"] == online["lead_age_days"] == age


def test_event_half_a_microsecond_after_as_of_does_not_count() -> None:
    """ISO text may carry nanoseconds; an event 500 ns after as_of is after as_of."""
    late = LATE_TOUCH | {"timestamp": "2024-03-11T05:00:00.000123500"}  # AS_OF + 500 ns
    batch, online = _lead0(_world([*HISTORY, late], AS_OF))
    assert batch["touches"] == online["touches"] == 1
