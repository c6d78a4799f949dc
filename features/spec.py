"""The feature spec: one declarative list of every model input.

Each :class:`Feature` says what it is (name, label, group, dtype, unit), how to compute it
from a lead's point-in-time history (kind, source column, event filter, window) and how to
explain it to a sales rep (a sentence template). The batch snapshot builder, the one-lead
builder, the API schema, the model's input order and the reasons are all derived from it.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from leadscore.features.config import FeatureConfig, Group
from leadscore.features.errors import LeadscoreError
from leadscore.features.schema import CURRENT_STATE_COLUMNS, FALSE_TEXT, TRUE_TEXT

DType = Literal["category", "ordinal", "number", "count", "boolean"]
Kind = Literal[
    "age",  # lead_age_days: days from created_at to as_of
    "attribute",  # a lead/account/contact column (`source` = "account.industry")
    "count",  # number of matching events
    "sum",  # sum of an event column (`source`) over matching events
    "max",  # largest value of an event column over matching events
    "exists",  # any matching event
    "days_since_last",  # days from the latest matching event to as_of
    "days_since_first",  # days from the earliest matching event to as_of
    "latest",  # latest `field_value` of matching field_update events
    "ratio",  # inputs[0] / inputs[1]; missing when the denominator is 0
    "difference",  # inputs[0] - inputs[1]
]
Window = Literal["all", "first_7d", "last_7d", "prev_7d"]

WINDOW_DAYS = 7
DAY_NS = 86_400 * 10**9
EVENT_KINDS = frozenset(
    {"count", "sum", "max", "exists", "days_since_last", "days_since_first", "latest"}
)
FILTER_COLUMNS = ("type", "subtype", "channel", "direction", "outcome", "field")


class SpecError(LeadscoreError, ValueError):
    """The feature spec is inconsistent (unknown input, forbidden column, bad template)."""


@dataclass(frozen=True)
class EventFilter:
    """Which events a feature counts: each named column must hold one of the listed values."""

    type: tuple[str, ...] = ()
    subtype: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    direction: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    field: tuple[str, ...] = ()

    def conditions(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """(column, allowed values) for every constrained column."""
        for col in FILTER_COLUMNS:
            allowed: tuple[str, ...] = getattr(self, col)
            if allowed:
                yield col, allowed

    @functools.cached_property
    def _conditions(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """:meth:`conditions`, listed once per filter rather than once per event."""
        return tuple(self.conditions())

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether one event (a mapping of canonical event fields) passes the filter."""
        return all(event.get(col) in allowed for col, allowed in self._conditions)

    @functools.cached_property
    def _beyond_type(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(c for c in self._conditions if c[0] != "type")

    def matches_beyond_type(self, event: Mapping[str, Any]) -> bool:
        """:meth:`matches` for an event already known to be of one of the filter's types (a
        caller that looks filters up by event type skips that check)."""
        return all(event.get(col) in allowed for col, allowed in self._beyond_type)


@dataclass(frozen=True)
class Feature:
    """One model input, declared as data."""

    name: str
    label: str
    group: Group
    dtype: DType
    kind: Kind
    template: str
    description: str = ""
    unit: str | None = None
    source: str | None = None
    filter: EventFilter = field(default_factory=EventFilter)
    window: Window = "all"
    inputs: tuple[str, ...] = ()
    categories: tuple[str, ...] | None = None  # declared vocabulary; the order for ordinals
    monotone: Literal[-1, 0, 1] = 0  # +1: more never lowers the score (certain direction)
    defines_targets: tuple[str, ...] = ()  # targets for which this feature *is* the label

    def sentence(self, value: Any, age_days: float | None = None) -> str:
        """The plain-language sentence for a value ("Viewed the pricing page 4 times ...").

        Numbers follow one rule (:func:`format_number`), fractions read as percentages and a
        count of 1 takes the singular ("1 day ago"). A missing value is never read into the
        template ("Last touch was unknown days ago"): see :meth:`missing_sentence`.
        """
        if is_missing(value):
            return self.missing_sentence()
        shown_age: str | None = ""  # a template without the age reads the same at any age
        if "age_days" in self.template:
            shown_age = None if age_days is None else format_number(max(float(age_days), 1.0))
        if _cacheable(value):  # the same words for the same value: worked out once
            return _sentence(self.template, self.unit, self.kind, value, shown_age)
        return _sentence.__wrapped__(self.template, self.unit, self.kind, value, shown_age)

    @property
    def unknown_when_missing(self) -> bool:
        """Whether a missing value means the data is not known (an attribute or a field the CRM
        has not filled) rather than that no matching event happened ("No touch yet")."""
        return self.kind in ("attribute", "latest", "age")

    def missing_sentence(self) -> str:
        """What a missing value says: "Company size is not known", or for a feature computed
        from events, that there were none ("No touch yet")."""
        if self.unknown_when_missing:
            return f"{self.label} is not known"
        return _NONE_YET.get(self.name, f"{self.label}: none yet")

    def show(self, value: Any) -> str:
        """A (present) value as the sentence shows it: yes/no, a percentage for fractions, a
        duration for seconds, a signed number for differences, words for categories."""
        return _show(self.template, self.unit, self.kind, value)


def _cacheable(value: Any) -> bool:
    """Whether equal values of this one's type read the same (-0.0 equals 0.0 but reads "-0"),
    it is hashable and it is no long text (the cache stays small)."""
    kind = type(value)
    if kind is float:
        return value != 0.0 or math.copysign(1.0, value) > 0
    if kind is str:
        return len(value) <= CACHED_TEXT_LENGTH
    return kind is int or kind is bool


CACHED_TEXT_LENGTH = 64


@functools.lru_cache(maxsize=4096, typed=True)
def _sentence(template: str, unit: str | None, kind: str, value: Any, shown_age: str | None) -> str:
    """:meth:`Feature.sentence` of a present value (`shown_age` formatted; None: unknown)."""
    shown = _show(template, unit, kind, value)
    if shown_age is None:
        template = _FIRST_AGE_DAYS.sub(" so far", template)
    text = template.format(value=shown, age_days=shown_age or "")
    return _FIRST_ONE_DAY.sub("first day", _singular_after_one(text))


def _show(template: str, unit: str | None, kind: str, value: Any) -> str:
    """:meth:`Feature.show` of a feature with this template, unit and kind."""
    if isinstance(value, (bool, *_bool_types())):
        return "yes" if value else "no"
    if isinstance(value, numbers.Real):
        x = float(value)
        if unit == "fraction":
            return format_percent(x)
        if unit == "seconds" and "{value} seconds" not in template:
            return format_duration(x)
        shown = format_number(x)
        return f"+{shown}" if kind == "difference" and x > 0 else shown
    return str(value).replace("_", " ")


def parse_field_value(feature: Feature, raw: Any) -> Any:
    """A field_update's text value in the feature's dtype (None when empty or unreadable).

    Shared by the batch and the one-lead builders; pandas' missing value is recognised without
    importing pandas (it only exists when a frame is being built).
    """
    pd = sys.modules.get("pandas")
    if raw is None or (isinstance(raw, float) and raw != raw) or (pd is not None and raw is pd.NA):
        return None
    if feature.dtype in ("number", "count"):
        if isinstance(raw, bool):  # as text ("True") it is no number either
            return None
        try:
            number = float(raw)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None
    if feature.dtype == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        return True if text in TRUE_TEXT else False if text in FALSE_TEXT else None
    text = str(raw).strip()
    return text or None


def is_missing(value: Any) -> bool:
    """None or NaN (what a feature row holds for "no value")."""
    if type(value) is float:  # the common case, without the ABC check
        return value != value
    return value is None or (isinstance(value, numbers.Real) and value != value)


def _bool_types() -> tuple[type, ...]:
    # numpy's bool is no bool subclass; features does not import numpy just for this
    np = sys.modules.get("numpy")
    return (np.bool_,) if np is not None else ()


def _round_half_up(x: float, places: int) -> Decimal:
    if abs(x) >= 1e15:  # beyond a float's decimals (and Decimal's default precision)
        return Decimal(round(x))
    return Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def format_number(x: float) -> str:
    """A number as a sentence shows it. One rule everywhere: whole from 2 up, with thousands
    separators ("10", "1,234,567"); one decimal below, without a trailing ".0" ("0.5", "1",
    "1.5"); "under 0.1" for a sliver above 0."""
    if not math.isfinite(x):
        return "unknown"
    if x < 0:
        shown = format_number(-x)
        return "0" if shown in ("0", "under 0.1") else f"-{shown}"
    if 0 < x < 0.05:
        return "under 0.1"
    if type(x) is float and 0 < x < 1e15:
        return _format_plain(x)
    tenths = _round_half_up(x, 1)
    if tenths >= 2:
        return f"{int(_round_half_up(x, 0)):,}"
    return f"{tenths:.1f}".removesuffix(".0")


def _format_plain(x: float) -> str:
    """:func:`format_number` of a float from 0 up to 1e15 without Decimal: the same half-up
    rounding of the number as ``repr`` writes it."""
    tenths, whole = _half_up(x * 10.0, x), None
    if tenths is None:  # a float next to a half: the digits of repr(x) decide
        digits, _, fraction = repr(x).partition(".")
        tenths = int(digits) * 10 + int(fraction[0]) + (len(fraction) > 1 and fraction[1] >= "5")
        whole = int(digits) + (fraction[0] >= "5")
    if tenths >= 20:
        whole = _half_up(x, x) if whole is None else whole
        if whole is None:
            digits, _, fraction = repr(x).partition(".")
            whole = int(digits) + (fraction[0] >= "5")
        return f"{whole:,}"
    return str(tenths // 10) if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}"


# Below this, a float and the decimal its repr writes differ by less than 1e-9 (times ten
# included): a fraction further than HALF_MARGIN from one half rounds the same for both.
_HALF_SAFE_BELOW = 1e6
HALF_MARGIN = 1e-6


def _half_up(scaled: float, x: float) -> int | None:
    """`scaled` (x or 10x, x >= 0) rounded half up, when that cannot differ from rounding the
    decimal repr(x) writes; None when it might (x large, or the fraction near one half)."""
    if x >= _HALF_SAFE_BELOW:
        return None
    whole = int(scaled)
    fraction = scaled - whole
    if abs(fraction - 0.5) <= HALF_MARGIN:
        return None
    return whole + (fraction > 0.5)


def format_percent(p: float) -> str:
    """A probability or share as a percentage: whole percents ("72%"), one decimal near 0 and
    100 ("0.4%", "99.5%"), and "<0.1%" / ">99.9%" rather than a rounded 0% or 100%."""
    if not math.isfinite(p):
        return "unknown"
    pct = 100.0 * p
    if pct <= 0 or pct >= 100:
        return "0%" if pct <= 0 else "100%"
    if pct < 0.05:
        return "<0.1%"
    if pct >= 99.95:
        return ">99.9%"
    places = 1 if pct < 2 or pct > 98 else 0
    return f"{_round_half_up(pct, places)}".removesuffix(".0") + "%"


def format_points(points: float) -> str:
    """The size of a share of probability in percentage points ("17 points", "1 point",
    "0.4 points", "under 0.1 points"); the sign is for the wording around it."""
    shown = format_number(abs(points) * 100.0)
    return f"{shown} point" + ("" if shown == "1" else "s")


def format_duration(seconds: float) -> str:
    """Seconds in the unit a person would use: seconds below 2 minutes, minutes below 2 hours,
    hours above ("45 seconds", "24 minutes", "3 hours")."""
    if seconds < 120:
        return f"{format_number(seconds)} seconds"
    if seconds < 7200:
        return f"{format_number(seconds / 60)} minutes"
    return f"{format_number(seconds / 3600)} hours"


# A missing value of a feature computed from events means no such event happened.
_NONE_YET = {
    "days_since_first_touch": "No touch yet",
    "days_since_last_touch": "No touch yet",
    "days_since_last_session": "No website visit yet",
    "days_since_last_engagement": "No touch or website visit yet",
    "days_since_last_sales_activity": "No sales activity yet",
    "days_since_opportunity_opened": "No opportunity opened yet",
    "opportunity_value": "No opportunity with a deal value yet",
    "inbound_share": "No touches yet, so no share initiated by the lead",
}
_FIRST_AGE_DAYS = re.compile(r" in the first \{age_days\} days")
_FIRST_ONE_DAY = re.compile(r"\bfirst 1 day\b")
# "1" followed by a noun phrase: the words up to the first of these keep their form
_ONE = re.compile(r"(?<![\w.,+-])([+-]?1)((?: [A-Za-z-]+){1,4})")
_PHRASE_ENDS = frozenset(
    ("in", "on", "at", "of", "the", "a", "an", "to", "from", "by", "for", "with", "ago", "old",
     "week", "was", "were", "is", "are", "over", "per", "since", "than", "so", "yet", "this",
     "that", "last", "first", "more")
)  # fmt: skip
_NOT_PLURAL = frozenset(
    ("sales", "is", "was", "has", "does", "its", "this", "us", "plus", "status", "analytics",
     "news")
)  # fmt: skip


def _singular(word: str) -> str:
    lower = word.lower()
    if lower in _NOT_PLURAL or not lower.endswith("s") or lower.endswith("ss"):
        return word
    if lower.endswith("ies"):
        return word[:-3] + "y"
    if lower.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    return word[:-1]


def _singular_after_one(text: str) -> str:
    """ "1 days ago" -> "1 day ago", "1 marketing or SDR touches" -> "... touch"."""

    def fix(match: re.Match[str]) -> str:
        words = match.group(2).split(" ")[1:]
        for i, word in enumerate(words):
            if word.lower() in _PHRASE_ENDS:
                break
            words[i] = _singular(word)
        return match.group(1) + "".join(" " + w for w in words)

    return _ONE.sub(fix, text)


def _ev(
    name: str,
    label: str,
    group: Group,
    kind: Kind,
    template: str,
    *,
    window: Window = "all",
    source: str | None = None,
    dtype: DType | None = None,
    unit: str | None = None,
    monotone: Literal[-1, 0, 1] = 0,
    defines: tuple[str, ...] = (),
    **conditions: tuple[str, ...],
) -> Feature:
    default_dtype: dict[Kind, DType] = {
        "count": "count",
        "exists": "boolean",
        "sum": "number",
        "max": "number",
        "days_since_last": "number",
        "days_since_first": "number",
    }
    return Feature(
        name=name,
        label=label,
        group=group,
        dtype=dtype or default_dtype[kind],
        kind=kind,
        template=template,
        description=label,
        unit=unit or ("days" if kind.startswith("days_") else None),
        source=source,
        filter=EventFilter(**conditions),
        window=window,
        monotone=monotone,
        defines_targets=defines,
    )


def _attr(name: str, source: str, label: str, template: str, dtype: DType = "category") -> Feature:
    return Feature(name, label, "fit", dtype, "attribute", template, label, source=source)


TOUCH = ("touch",)
SESSION = ("web_session",)
SALES = ("sales_activity",)
OPP = ("opportunity_opened",)
ENGAGE = ("touch", "web_session")

BUILTIN_FEATURES: tuple[Feature, ...] = (
    # when: leads are scored at any age, and what is normal on day 1 is not on day 30
    Feature("lead_age_days", "Lead age", "engagement", "number", "age", "The lead is {value} days old",
            "Days from the lead's creation to the moment it is scored.", unit="days"),
    # fit: who they are
    _attr("industry", "account.industry", "Industry", "Works in {value}"),
    _attr("region", "account.region", "Region", "Based in the {value} region"),
    _attr("employee_band", "account.employee_band", "Company size", "Company size is {value} employees", "ordinal"),
    _attr("revenue_band", "account.revenue_band", "Company revenue", "Company revenue is {value}", "ordinal"),
    _attr("role_function", "contact.role_function", "Role", "Contact's role is {value}"),
    _attr("seniority", "contact.seniority", "Seniority", "Contact's seniority is {value}", "ordinal"),
    _attr("buyer_role", "contact.buyer_role", "Buyer role", "Contact is the {value} in the buying group"),
    _attr("lead_source", "lead.source", "Lead source", "Came in through {value}"),
    # engagement: what they did
    _ev("touches", "Touches", "engagement", "count", "Had {value} marketing or SDR touches in the first {age_days} days", type=TOUCH),
    _ev("inbound_touches", "Inbound touches", "engagement", "count", "Reached out to us {value} times in the first {age_days} days", type=TOUCH, direction=("inbound",), monotone=1),
    _ev("outbound_touches", "Outbound touches", "engagement", "count", "Received {value} outbound touches in the first {age_days} days", type=TOUCH, direction=("outbound",)),
    _ev("content_downloads", "Content downloads", "engagement", "count", "Downloaded content {value} times in the first {age_days} days", type=TOUCH, subtype=("content_download",)),
    _ev("webinars", "Webinars", "engagement", "count", "Attended {value} webinars in the first {age_days} days", type=TOUCH, subtype=("webinar",)),
    _ev("email_touches", "Email touches", "engagement", "count", "Had {value} email touches in the first {age_days} days", type=TOUCH, subtype=("email",)),
    _ev("call_touches", "Call touches", "engagement", "count", "Had {value} SDR calls in the first {age_days} days", type=TOUCH, subtype=("call",)),
    _ev("linkedin_touches", "LinkedIn touches", "engagement", "count", "Had {value} LinkedIn messages in the first {age_days} days", type=TOUCH, subtype=("linkedin_message",)),
    _ev("touches_first_7d", "Touches in week one", "engagement", "count", "Had {value} touches in the first 7 days", type=TOUCH, window="first_7d"),
    _ev("touches_last_7d", "Touches last week", "engagement", "count", "Had {value} touches in the last 7 days", type=TOUCH, window="last_7d"),
    _ev("days_since_first_touch", "Days since first touch", "engagement", "days_since_first", "First touch was {value} days ago", type=TOUCH),
    _ev("days_since_last_touch", "Days since last touch", "engagement", "days_since_last", "Last touch was {value} days ago", type=TOUCH),
    _ev("web_sessions", "Web sessions", "engagement", "count", "Visited the website {value} times in the first {age_days} days", type=SESSION),
    _ev("pricing_page_sessions", "Pricing-page visits", "engagement", "count", "Visited the pricing page {value} times in the first {age_days} days", type=SESSION, subtype=("pricing_page",), monotone=1),
    _ev("demo_page_sessions", "Demo-page visits", "engagement", "count", "Visited the demo page {value} times in the first {age_days} days", type=SESSION, subtype=("demo_page",), monotone=1),
    _ev("page_views", "Page views", "engagement", "sum", "Viewed {value} pages in the first {age_days} days", type=SESSION, source="page_views", unit="pages"),
    _ev("pricing_page_views", "Pricing page views", "engagement", "sum", "Viewed the pricing page {value} times in the first {age_days} days", type=SESSION, source="pricing_page_views", unit="views", monotone=1),
    _ev("demo_page_views", "Demo page views", "engagement", "sum", "Viewed the demo page {value} times in the first {age_days} days", type=SESSION, source="demo_page_views", unit="views", monotone=1),
    _ev("session_seconds", "Time on site", "engagement", "sum", "Spent {value} on the website in the first {age_days} days", type=SESSION, source="duration_seconds", unit="seconds"),
    _ev("days_since_last_session", "Days since last visit", "engagement", "days_since_last", "Last visited the website {value} days ago", type=SESSION),
    _ev("engagement_first_7d", "Engagement in week one", "engagement", "count", "Had {value} touches or website visits in the first 7 days", type=ENGAGE, window="first_7d"),
    _ev("engagement_last_7d", "Engagement last week", "engagement", "count", "Had {value} touches or website visits in the last 7 days", type=ENGAGE, window="last_7d"),
    _ev("engagement_prev_7d", "Engagement the week before", "engagement", "count", "Had {value} touches or website visits in the week before last", type=ENGAGE, window="prev_7d"),
    Feature("engagement_trend", "Engagement trend", "engagement", "number", "difference",
            "Touches and website visits changed by {value} week over week",
            "Touches and visits in the last 7 days minus the 7 days before (velocity).",
            inputs=("engagement_last_7d", "engagement_prev_7d")),
    Feature("inbound_share", "Inbound share", "engagement", "number", "ratio",
            "{value} of touches were initiated by the lead",
            "Inbound touches divided by all touches; unknown without touches.",
            unit="fraction", inputs=("inbound_touches", "touches")),
    _ev("days_since_last_engagement", "Days since last engagement", "engagement", "days_since_last", "Last engaged {value} days ago", type=ENGAGE),
    # sales: what sales did and heard
    _ev("sales_activities", "Sales activities", "sales", "count", "Sales logged {value} activities in the first {age_days} days", type=SALES),
    _ev("sales_calls", "Sales calls", "sales", "count", "Sales called {value} times in the first {age_days} days", type=SALES, subtype=("call",)),
    _ev("sales_emails", "Sales emails", "sales", "count", "Sales emailed {value} times in the first {age_days} days", type=SALES, subtype=("email",)),
    _ev("sales_meetings", "Sales meetings", "sales", "count", "Had {value} sales meetings in the first {age_days} days", type=SALES, subtype=("meeting",)),
    _ev("sales_demos", "Demos", "sales", "count", "Had {value} demos in the first {age_days} days", type=SALES, subtype=("demo",)),
    _ev("meetings_set", "Meetings set", "sales", "count", "Agreed to {value} meetings in the first {age_days} days", type=SALES, outcome=("meeting_set",), monotone=1),
    _ev("demos_completed", "Demos completed", "sales", "count", "Completed {value} demos in the first {age_days} days", type=SALES, outcome=("demo_completed",), monotone=1),
    _ev("conversations", "Conversations", "sales", "count", "Sales connected with them {value} times in the first {age_days} days", type=SALES, outcome=("connected",)),
    _ev("unanswered_attempts", "Unanswered attempts", "sales", "count", "Did not answer {value} sales attempts in the first {age_days} days", type=SALES, outcome=("no_answer", "left_voicemail")),
    _ev("sales_activities_last_7d", "Sales activities last week", "sales", "count", "Sales logged {value} activities in the last 7 days", type=SALES, window="last_7d"),
    _ev("days_since_last_sales_activity", "Days since last sales activity", "sales", "days_since_last", "Last sales activity was {value} days ago", type=SALES),
    _ev("opportunity_opened", "Opportunity opened", "sales", "exists", "Opportunity opened: {value}", type=OPP, monotone=1, defines=("sql",)),
    _ev("opportunity_value", "Opportunity value", "sales", "max", "Estimated deal value is {value}", type=OPP, source="value", unit="currency", defines=("sql",)),
    _ev("days_since_opportunity_opened", "Days since opportunity opened", "sales", "days_since_first", "Opportunity opened {value} days ago", type=OPP, defines=("sql",)),
)  # fmt: skip


def _custom_feature(custom: Any) -> Feature:
    dtype: DType = custom.type
    if custom.dated:
        return Feature(
            name=custom.name,
            label=custom.label,
            group=custom.group,
            dtype=dtype,
            kind="latest",
            template=custom.template,
            description=custom.description or custom.label,
            filter=EventFilter(type=("field_update",), field=(custom.name,)),
            categories=custom.vocabulary,
        )
    return Feature(
        name=custom.name,
        label=custom.label,
        group=custom.group,
        dtype=dtype,
        kind="attribute",
        template=custom.template,
        description=custom.description or custom.label,
        source=custom.qualified,
        categories=custom.vocabulary,
    )


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered list of features a model consumes; serializable to JSON with the model."""

    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        _check(self.features)

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def names(self) -> list[str]:
        """Feature names in model input order."""
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def without_target_defining(self, target: str) -> FeatureSpec:
        """The spec minus features that *are* the label for `target` (and those built on them)."""
        drop = {f.name for f in self.features if target in f.defines_targets}
        kept = tuple(f for f in self.features if f.name not in drop and not set(f.inputs) & drop)
        return FeatureSpec(kept)

    def to_json(self) -> str:
        """JSON text that :meth:`from_json` reads back (stored with each model)."""
        return json.dumps([asdict(f) for f in self.features], indent=1)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Inverse of :meth:`to_json`."""
        items = json.loads(text)
        feats = []
        for item in items:
            flt = EventFilter(**{k: tuple(v) for k, v in item.pop("filter").items()})
            cats = item.pop("categories")
            feats.append(
                Feature(
                    **item
                    | {
                        "filter": flt,
                        "inputs": tuple(item["inputs"]),
                        "defines_targets": tuple(item["defines_targets"]),
                        "categories": None if cats is None else tuple(cats),
                    }
                )
            )
        return cls(tuple(feats))


def _check(features: tuple[Feature, ...]) -> None:
    names = [f.name for f in features]
    seen: set[str] = set()
    for f in features:
        if f.name in seen:
            raise SpecError(f"feature {f.name!r} is declared twice")
        seen.add(f.name)
        column = (f.source or "").split(".")[-1]
        if f.name in CURRENT_STATE_COLUMNS or column in CURRENT_STATE_COLUMNS:
            raise SpecError(
                f"feature {f.name!r} reads {f.source or f.name!r}, which encodes the outcome or "
                "current state; it can never be a model input"
            )
        if f.kind == "attribute" and (f.source is None or f.source.count(".") != 1):
            raise SpecError(f"feature {f.name!r}: attribute source must be entity.column")
        if f.kind in ("sum", "max") and not f.source:
            raise SpecError(f"feature {f.name!r}: {f.kind} needs an event column as source")
        if f.kind in ("ratio", "difference"):
            missing = [i for i in f.inputs if i not in names[: names.index(f.name)]]
            if len(f.inputs) != 2 or missing:
                raise SpecError(
                    f"feature {f.name!r}: {f.kind} needs two earlier features as inputs; "
                    f"unknown or later: {missing}"
                )
        if "_" in f.template.replace("{age_days}", ""):
            raise SpecError(f"feature {f.name!r}: template must read as words, not snake_case")
        if "{value}" not in f.template:
            raise SpecError(f"feature {f.name!r}: template must contain {{value}}")


def build_spec(config: FeatureConfig) -> FeatureSpec:
    """The built-in features with declared band orders applied, plus the config's custom fields."""
    feats = []
    for f in BUILTIN_FEATURES:
        if config.builtin_features == "attributes" and f.kind != "attribute":
            continue
        if f.kind == "attribute" and f.source:
            order = config.order_of(f.source)
            if order:
                f = replace(f, dtype="ordinal", categories=order)
            elif f.dtype == "ordinal":  # no declared order: nothing to rank by
                f = replace(f, dtype="category")
        feats.append(f)
    feats.extend(_custom_feature(c) for c in config.custom_fields if c.is_feature)
    dropped = set(config.exclude_features)
    kept = [f for f in feats if f.name not in dropped and not set(f.inputs) & dropped]
    return FeatureSpec(tuple(kept))


def describe_how(f: Feature) -> str:
    """How a feature is computed, in a few words (`count of type=touch, first_7d`)."""
    if f.kind == "attribute":
        return str(f.source)
    if f.inputs:
        return f"{f.kind} of {' and '.join(f.inputs)}"
    if f.kind == "age":
        return "days from created_at to as_of"
    conditions = ", ".join(f"{c}={'/'.join(v)}" for c, v in f.filter.conditions())
    window = "" if f.window == "all" else f", {f.window}"
    source = f"({f.source})" if f.source else ""
    return f"{f.kind}{source} of {conditions}{window}"


def markdown_table(spec: FeatureSpec) -> str:
    """The spec as a Markdown table: name, group, dtype, how, sentence (docs and CLI)."""
    lines = ["| feature | group | dtype | how | sentence |", "| --- | --- | --- | --- | --- |"]
    for f in spec:
        template = f.template.replace("|", "\\|")
        lines.append(f"| `{f.name}` | {f.group} | {f.dtype} | {describe_how(f)} | {template} |")
    return "\n".join(lines)
