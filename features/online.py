"""The one-lead feature builder: the spec and rules of the batch snapshot, without pandas.

The API posts one lead with its account, contact and events; building a DataFrame for that
costs milliseconds, this costs tens of microseconds. A property-based test
(`tests/features/test_online_parity.py`) holds both builders equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from leadscore.features.schema import FALSE_TEXT, TRUE_TEXT, date_only_moment
from leadscore.features.spec import DAY_NS, Feature, FeatureSpec, parse_field_value

_EPOCH = datetime(1970, 1, 1)
_FRACTION = re.compile(r"^(.*[T ]\d\d:\d\d:\d\d)\.(\d+)(.*)$")
_US = 1000


def to_ns(value: Any) -> int:
    """Nanoseconds since the epoch (naive UTC) of a datetime, date or ISO-8601 text.

    A date without a time is the end of that day (as the contract reads it); an aware time is
    converted to UTC.
    """
    if type(value) is datetime and value.tzinfo is None:  # a validated body's timestamps
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * _US
    nanos = getattr(value, "value", None)
    if isinstance(nanos, int) and hasattr(value, "nanosecond"):
        return nanos  # pandas.Timestamp: keep the nanoseconds a datetime would drop
    day = date_only_moment(value)  # a date without a time is the end of that day
    if day is not None:
        value = day
    elif isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text.endswith("Z") else text
        fraction = _FRACTION.match(text)
        if fraction:  # datetime keeps microseconds; the batch parser (pandas) keeps nanoseconds
            head, digits, tail = fraction.groups()
            return to_ns(head + tail) + int(digits[:9].ljust(9, "0"))
        value = datetime.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
    elif isinstance(value, date):
        value = datetime(value.year, value.month, value.day)
    else:
        raise TypeError(f"not a timestamp: {value!r}")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * _US


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class OnlineBuilder:
    """Builds one lead's feature row from plain mappings; compiled once per spec."""

    def __init__(self, spec: FeatureSpec):
        self.spec = spec
        event_features = [
            f for f in spec if f.kind not in ("age", "attribute", "ratio", "difference")
        ]
        # Group features by (filter, window) so each event is tested once per distinct filter.
        groups: dict[Any, list[Feature]] = {}
        for f in event_features:
            groups.setdefault((f.filter, f.window), []).append(f)
        # Every event is bucketed by type once; a filter on type then scans only its buckets.
        self._groups = [
            (
                flt.type or None,
                tuple((c, a) for c, a in flt.conditions() if c != "type"),
                window,
                feats,
            )
            for (flt, window), feats in groups.items()
        ]
        self._routes = _routes({(types, conditions) for types, conditions, _, _ in self._groups})
        self._sources = {f.name: str(f.source).split(".") for f in spec if f.kind == "attribute"}
        # The row's keys in spec order (event features are filled in group order), and what
        # row() does for every other feature, in spec order (inputs are earlier features).
        self._keys = dict.fromkeys(f.name for f in spec if f.kind != "age")
        self._plan: list[tuple[str, str, Feature, Any, Any]] = []
        for f in spec:
            if f.kind == "attribute":
                entity, column = self._sources[f.name]
                self._plan.append(("attribute", f.name, f, entity, column))
            elif f.kind in ("ratio", "difference"):
                self._plan.append((f.kind, f.name, f, f.inputs[0], f.inputs[1]))

    def row(
        self,
        lead: Mapping[str, Any],
        account: Mapping[str, Any] | None,
        contact: Mapping[str, Any] | None,
        events: Sequence[Mapping[str, Any]],
        as_of: Any,
    ) -> dict[str, Any]:
        """`lead_id`, `as_of` (ns), `lead_age_days` and every feature of one lead.

        Events dated after as_of are ignored here (the API rejects them before); events of
        another lead are the caller's to reject.
        """
        created = to_ns(lead["created_at"])
        as_of_ns = to_ns(as_of)
        out: dict[str, Any] = {
            "lead_id": lead.get("lead_id"),
            "as_of": as_of_ns,
            "lead_age_days": float(as_of_ns - created) / DAY_NS,
        }
        out.update(self._keys)
        entities = {"lead": lead, "account": account or {}, "contact": contact or {}}
        timed: list[tuple[int, int, Mapping[str, Any]]] = []
        by_type: dict[Any, list[tuple[int, int, Mapping[str, Any]]]] = {}
        for i, ev in enumerate(events):
            ts = to_ns(ev["timestamp"])
            if ts <= as_of_ns:
                item = (i, ts, ev)
                timed.append(item)
                by_type.setdefault(ev.get("type"), []).append(item)
        # the events passing each filter, found once for all the windows that share the filter
        passing = _route(timed, self._routes)
        bounds = _window_bounds(created, as_of_ns)
        for types, conditions, window, feats in self._groups:
            kept = passing.get((types, conditions))
            if kept is None:
                kept = passing[types, conditions] = _passing(timed, by_type, types, conditions)
            if window == "all":
                matched = kept
            else:
                low, high = bounds[window]
                matched = [item for item in kept if low <= item[0] <= high]
            for f in feats:
                if f.kind == "count":
                    out[f.name] = len(matched)
                else:
                    value = _aggregate(f, matched, as_of_ns)
                    out[f.name] = _empty(f) if value is None else value
        for what, name, f, first, second in self._plan:
            if what == "attribute":
                value = entities[first].get(second)
                out[name] = _empty(f) if _missing(value) else _cast(f, value)
            elif what == "ratio":
                num, den = _as_float(out[first]), _as_float(out[second])
                out[name] = num / den if den != 0 else float("nan")
            else:
                out[name] = _as_float(out[first]) - _as_float(out[second])
        return out


def _passing(
    timed: list[tuple[int, int, Mapping[str, Any]]],
    by_type: Mapping[Any, list[tuple[int, int, Mapping[str, Any]]]],
    types: tuple[str, ...] | None,
    conditions: tuple[tuple[str, tuple[str, ...]], ...],
) -> list[tuple[int, Mapping[str, Any]]]:
    """(timestamp, event) of the events of one of `types` (None: any) that meet every other
    condition, in the caller's event order (sums add in the same order as the batch path)."""
    if types is None:
        pool = timed
    elif len(types) == 1:
        pool = by_type.get(types[0], [])
    else:
        pool = sorted(item for t in types for item in by_type.get(t, ()))
    if not conditions:
        return [(ts, ev) for _, ts, ev in pool]
    if len(conditions) == 1:  # the common case, without a generator per event
        ((col, allowed),) = conditions
        return [(ts, ev) for _, ts, ev in pool if ev.get(col) in allowed]
    return [
        (ts, ev) for _, ts, ev in pool if all(ev.get(col) in allowed for col, allowed in conditions)
    ]


Filter = tuple[tuple[str, ...] | None, tuple[tuple[str, tuple[str, ...]], ...]]
# Per event type: the filters that take every event of it, and per column the filters that
# take the events with one of some values there ({value: filters}, and (values, filter) pairs).
Routes = dict[str, tuple[list[Filter], list[tuple[str, dict[str, list[Filter]], list[Any]]]]]


def _routes(filters: set[Filter]) -> Routes:
    """How :func:`_route` sends each event to the filters it passes: those on one or more
    types with at most one other condition (the others are left to :func:`_passing`)."""
    routes: Routes = {}
    for flt in sorted(filters, key=repr):
        types, conditions = flt
        if types is None or len(conditions) > 1:
            continue
        for kind in dict.fromkeys(types):
            whole, by_column = routes.setdefault(kind, ([], []))
            if not conditions:
                whole.append(flt)
                continue
            ((col, allowed),) = conditions
            entry = next((e for e in by_column if e[0] == col), None)
            if entry is None:
                entry = (col, {}, [])
                by_column.append(entry)
            for value in dict.fromkeys(allowed):
                entry[1].setdefault(value, []).append(flt)
            entry[2].append((allowed, flt))
    return routes


def _route(
    timed: list[tuple[int, int, Mapping[str, Any]]], routes: Routes
) -> dict[Filter, list[tuple[int, Mapping[str, Any]]]]:
    """(timestamp, event) of the events passing each routed filter, in event order: each event
    is looked at once, not once per filter (as :func:`_passing` would find them)."""
    kept: dict[Filter, list[tuple[int, Mapping[str, Any]]]] = {}
    for whole, by_column in routes.values():
        for flt in whole:
            kept[flt] = []
        for *_, pairs in by_column:
            for _, flt in pairs:
                kept[flt] = []
    for _, ts, ev in timed:
        route = routes.get(ev["type"]) if "type" in ev else None
        if route is None:
            continue
        whole, by_column = route
        item = (ts, ev)
        for flt in whole:
            kept[flt].append(item)
        for col, by_value, pairs in by_column:
            value = ev.get(col)
            if type(value) is str:  # a dict lookup finds what `in` finds
                for flt in by_value.get(value, ()):
                    kept[flt].append(item)
            else:
                for allowed, flt in pairs:
                    if value in allowed:
                        kept[flt].append(item)
    return kept


def _empty(f: Feature) -> Any:
    """Missing value as the batch builder has it: NaN for numbers, None otherwise."""
    return float("nan") if f.dtype in ("number", "count") else None


def _as_float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _cast(f: Feature, value: Any) -> Any:
    if f.dtype in ("category", "ordinal"):
        return str(value)
    if f.dtype == "boolean":
        if isinstance(value, str):  # as the contract reads text booleans
            text = value.strip().lower()
            return True if text in TRUE_TEXT else False if text in FALSE_TEXT else None
        return bool(value)
    return float(value)


def _window_bounds(created: int, as_of: int) -> dict[str, tuple[float, float]]:
    """Each window but "all" as the inclusive range of the (whole nanosecond) timestamps in it:
    the first week from created_at (both ends in), the last week before as_of (as_of in) and
    the week before that."""
    week = 7 * DAY_NS
    return {
        "first_7d": (created, created + week),
        "last_7d": (as_of - week + 1, math.inf),
        "prev_7d": (as_of - 2 * week + 1, as_of - week),
    }


def _aggregate(f: Feature, matched: list[tuple[int, Mapping[str, Any]]], as_of: int) -> Any:
    if f.kind == "count":
        return len(matched)
    if f.kind == "exists":
        return bool(matched)
    if f.kind == "sum":
        total = 0.0
        for _, ev in matched:
            v: Any = ev.get(str(f.source))
            if not _missing(v):
                total += float(v)
        return total
    if f.kind == "max":
        raw: list[Any] = [ev.get(str(f.source)) for _, ev in matched]
        values = [float(v) for v in raw if not _missing(v)]
        return max(values) if values else float("nan")
    if f.kind == "days_since_last":
        return float(as_of - max(ts for ts, _ in matched)) / DAY_NS if matched else float("nan")
    if f.kind == "days_since_first":
        return float(as_of - min(ts for ts, _ in matched)) / DAY_NS if matched else float("nan")
    if f.kind == "latest":
        if not matched:
            return None
        _, ev = max(matched, key=lambda item: (item[0], str(item[1].get("event_id"))))
        return parse_field_value(f, ev.get("field_value"))
    raise AssertionError(f"not an event feature: {f.kind}")
