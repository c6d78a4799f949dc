"""Values both the reader and the writer need: decoding a raw value (reader) and the raw
values that decode to a canonical one (writer), how one activity is classified, the spec's
event vocabulary, and moments and value lists as text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.sources.hubspot.mapping import (
    ActivitiesMap,
    ActivityObject,
    ActivityRule,
    ActivityTypes,
    Coded,
)
from leadscore.features.spec import build_spec

_DIRECTIONS = frozenset({"inbound", "outbound"})


def decode(coded: Coded, raw: str | None, known: Iterable[str] = ()) -> tuple[str | None, bool]:
    """The canonical value of one raw value, and whether the mapping named it (an empty value
    counts as named). `known` values (the spec's vocabulary) are read as themselves."""
    if raw is None:
        return coded.default, True
    if raw in coded.values:
        return coded.values[raw], True
    low = raw.casefold()
    for key, target in coded.values.items():
        if key.casefold() == low:
            return target, True
    for key, target in coded.contains.items():
        if key.casefold() in low:
            return target, True
    for candidate in (*coded.values.values(), *coded.contains.values(), coded.default, *known):
        if candidate is not None and candidate.casefold() == low:
            return candidate, True
    if not coded.values and not coded.contains:
        return raw, True  # a plain property: its values are the canonical ones
    if not coded.values and coded.default is not None:
        return coded.default, True  # a text no key matches: what `default` is for
    return (raw if coded.default is None else coded.default), False


def encodings(coded: Coded, target: str | None, known: Iterable[str] = ()) -> list[str | None]:
    """Raw values that :func:`decode` reads as `target` and counts as named, the mapping's own
    first (a text matched by `contains` never passes through as itself)."""
    if coded.property is None:
        return [None] if coded.default == target else []
    found: list[str | None] = [k for k, v in coded.values.items() if v == target]
    found += [k for k, v in coded.contains.items() if v == target]
    if coded.default == target:
        found.append(None)
    if target is not None and not coded.contains:
        found.append(target)
    known = tuple(known)
    seen: list[str | None] = []
    for raw in found:
        if raw not in seen and decode(coded, raw, known) == (target, True):
            seen.append(raw)
    return seen


def _activity(
    acts: ActivitiesMap, obj: ActivityObject, raw: Mapping[str, str | None], known: _Known
) -> tuple[tuple[str, str | None, str | None, str | None], list[tuple[str, str]]]:
    """(type, subtype, direction, outcome) of one activity from its raw property values
    (keys subtype, direction, outcome, activity_type), and the (property, value) pairs no
    mapping names."""
    unnamed: list[tuple[str, str]] = []

    def read(coded: Coded, key: str, vocabulary: Iterable[str]) -> str | None:
        value, named = decode(coded, raw.get(key), vocabulary)
        if not named and coded.property is not None:
            unnamed.append((coded.property, str(raw.get(key))))
        return value

    subtype = read(obj.subtype, "subtype", known.subtypes)
    direction = read(obj.direction, "direction", _DIRECTIONS)
    outcome = read(obj.outcome, "outcome", known.outcomes)
    rule = _rule(acts.activity_type, raw.get("activity_type"))
    if rule is None and raw.get("activity_type") is not None and acts.activity_type.property:
        unnamed.append((acts.activity_type.property, str(raw.get("activity_type"))))
    kind: str = obj.type
    if rule is not None and rule.type is not None:
        kind = rule.type
    elif acts.inbound_is_touch and direction == "inbound":
        kind = "touch"
    if rule is not None and rule.subtype is not None:
        subtype = rule.subtype
    return (kind, subtype, direction, outcome), unnamed


def _rule(types: ActivityTypes, raw: str | None) -> ActivityRule | None:
    if raw is None:
        return None
    if raw in types.values:
        return types.values[raw]
    return next((r for k, r in types.values.items() if k.casefold() == raw.casefold()), None)


class _Known:
    """The spec's event vocabulary: raw values equal to one are read as themselves."""

    def __init__(self, config: FeatureConfig):
        spec = build_spec(config)
        self.subtypes = frozenset(v for f in spec for v in f.filter.subtype)
        self.outcomes = frozenset(v for f in spec for v in f.filter.outcome)


def _iso_moment(moment: Any) -> str | None:
    """ISO-8601 UTC with 'Z' (fractions only when there are some)."""
    if moment is None or pd.isna(moment):
        return None
    return pd.Timestamp(moment).isoformat() + "Z"


def _shown(values: Iterable[Any], n: int = 3) -> str:
    items = list(values)
    more = f", ... ({len(items)} in all)" if len(items) > n else ""
    return ", ".join(repr(v) for v in items[:n]) + more
