"""The one-lead feature builder: the spec and rules of the batch snapshot, without pandas.

The API posts one lead with its account, contact and events; building a DataFrame for that
costs milliseconds, this costs tens of microseconds. A property-based test
(`tests/features/test_online_parity.py`) holds both builders equal.
"""

from __future__ import annotations

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
        self._sources = {f.name: str(f.source).split(".") for f in spec if f.kind == "attribute"}

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
        entities = {"lead": lead, "account": account or {}, "contact": contact or {}}
        acc: dict[str, Any] = {}
        timed: list[tuple[int, int, Mapping[str, Any]]] = []
        by_type: dict[Any, list[tuple[int, int, Mapping[str, Any]]]] = {}
        for i, ev in enumerate(events):
            ts = to_ns(ev["timestamp"])
            if ts <= as_of_ns:
                item = (i, ts, ev)
                timed.append(item)
                by_type.setdefault(ev.get("type"), []).append(item)
        # the events passing each filter, found once for all the windows that share the filter
        passing: dict[Any, list[tuple[int, Mapping[str, Any]]]] = {}
        for types, conditions, window, feats in self._groups:
            kept = passing.get((types, conditions))
            if kept is None:
                kept = passing[types, conditions] = _passing(timed, by_type, types, conditions)
            if window == "all":
                matched = kept
            else:
                matched = [item for item in kept if _in_window(window, item[0], created, as_of_ns)]
            for f in feats:
                acc[f.name] = _aggregate(f, matched, as_of_ns)
        for f in self.spec:
            if f.kind == "age":
                continue  # already in the row
            if f.kind == "attribute":
                entity, column = self._sources[f.name]
                value = entities[entity].get(column)
                out[f.name] = _empty(f) if _missing(value) else _cast(f, value)
            elif f.kind == "ratio":
                num, den = (_as_float(out[i]) for i in f.inputs)
                out[f.name] = num / den if den != 0 else float("nan")
            elif f.kind == "difference":
                a, b = (_as_float(out[i]) for i in f.inputs)
                out[f.name] = a - b
            else:
                value = acc[f.name]
                out[f.name] = _empty(f) if value is None else value
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


def _in_window(window: str, ts: int, created: int, as_of: int) -> bool:
    if window == "all":
        return True
    if window == "first_7d":
        return created <= ts <= created + 7 * DAY_NS
    if window == "last_7d":
        return ts > as_of - 7 * DAY_NS
    return as_of - 14 * DAY_NS < ts <= as_of - 7 * DAY_NS


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
