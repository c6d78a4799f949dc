"""Point-in-time snapshots: one feature row per lead, from history dated at or before as_of.

This is the batch builder (vectorised over all leads and events);
:mod:`~leadscore.features.online` is the one-lead builder for the API. Both interpret the same
:class:`~leadscore.features.spec.FeatureSpec` with the same rules, and a property-based test
holds them equal:

* as_of for a lead is ``created_at + N x 24 h`` (or one fixed moment); an event counts when
  its timestamp is ``<= as_of`` (a date without a time is midnight UTC);
* windows: ``first_7d`` is ``created_at <= t <= created_at + 7 d``; ``last_7d`` is
  ``as_of - 7 d < t``; ``prev_7d`` is ``as_of - 14 d < t <= as_of - 7 d``;
* sums treat a missing value as 0; ``max``/``days_since_*`` are missing without a match;
* ``latest`` takes the field_update with the greatest (timestamp, event_id).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData, isin
from leadscore.features.spec import DAY_NS, Feature, FeatureSpec, Window, parse_field_value

_BIG = np.iinfo(np.int64).max
_SMALL = np.iinfo(np.int64).min


def as_of_after_creation(leads: pd.DataFrame, days: float) -> pd.Series:
    """as_of = created_at + `days` x 24 h for every lead."""
    return leads["created_at"] + pd.Timedelta(days=days)


class _Frame:
    """Event columns aligned to lead positions, with the masks the spec needs cached."""

    def __init__(self, data: CrmData, as_of_ns: np.ndarray, created_ns: np.ndarray):
        ev = data.events
        pos = pd.Index(data.leads["lead_id"]).get_indexer(ev["lead_id"])
        ts = ev["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        if len(as_of_ns):
            keep = (pos >= 0) & (ts <= as_of_ns[np.maximum(pos, 0)])
        else:  # no lead to build (e.g. none open at its as_of): no event belongs to one
            keep = np.zeros(len(ev), dtype=bool)
        self.events = ev[keep].reset_index(drop=True)
        self.pos = pos[keep]
        self.ts = ts[keep]
        self.as_of = as_of_ns
        self.created = created_ns
        self.n = len(as_of_ns)
        self._masks: dict[Any, np.ndarray] = {}

    def mask(self, feature: Feature) -> np.ndarray:
        key = (feature.filter, feature.window)
        if key not in self._masks:
            m = self._cached(("window", feature.window), lambda: self._window(feature.window))
            for col, allowed in feature.filter.conditions():
                m = m & self._cached((col, allowed), lambda c=col, a=allowed: self._isin(c, a))
            self._masks[key] = m
        return self._masks[key]

    def _cached(self, key: Any, compute: Any) -> np.ndarray:
        # the same condition (type=touch) and window recur across many features
        if key not in self._masks:
            self._masks[key] = compute()
        return self._masks[key]

    def _isin(self, col: str, allowed: tuple[str, ...]) -> np.ndarray:
        return isin(self.events[col], allowed)

    def _window(self, window: Window) -> np.ndarray:
        if window == "all":
            return np.ones(len(self.ts), dtype=bool)
        if window == "first_7d":
            start = self.created[self.pos]
            return (self.ts >= start) & (self.ts <= start + 7 * DAY_NS)
        end = self.as_of[self.pos]
        if window == "last_7d":
            return self.ts > end - 7 * DAY_NS
        return (self.ts > end - 14 * DAY_NS) & (self.ts <= end - 7 * DAY_NS)

    def column(self, name: str) -> np.ndarray:
        return self.events[name].to_numpy(dtype="float64", na_value=np.nan)


def _event_feature(frame: _Frame, f: Feature) -> pd.Series | np.ndarray:
    m = frame.mask(f)
    pos = frame.pos[m]
    if f.kind in ("count", "exists"):
        counts = np.bincount(pos, minlength=frame.n)
        return counts > 0 if f.kind == "exists" else counts.astype(np.int64)
    if f.kind == "sum":
        vals = np.nan_to_num(frame.column(str(f.source))[m], nan=0.0)
        return np.bincount(pos, weights=vals, minlength=frame.n).astype("float64")
    if f.kind == "max":
        out = np.full(frame.n, np.nan)
        np.fmax.at(out, pos, frame.column(str(f.source))[m])
        return out
    if f.kind in ("days_since_last", "days_since_first"):
        last = f.kind == "days_since_last"
        extreme = np.full(frame.n, _SMALL if last else _BIG, dtype=np.int64)
        (np.maximum if last else np.minimum).at(extreme, pos, frame.ts[m])
        found = extreme != (_SMALL if last else _BIG)
        days = np.full(frame.n, np.nan)
        days[found] = (frame.as_of[found] - extreme[found]) / DAY_NS
        return days
    if f.kind == "latest":
        ev = frame.events[m].assign(_pos=pos, _ts=frame.ts[m])
        ev = ev.sort_values(["_pos", "_ts", "event_id"]).drop_duplicates("_pos", keep="last")
        values: list[Any] = [None] * frame.n
        for p, raw in zip(ev["_pos"].to_numpy(), ev["field_value"].tolist(), strict=True):
            values[p] = parse_field_value(f, raw)
        return _typed(f, pd.Series(values, dtype=object))
    raise AssertionError(f"not an event feature: {f.kind}")


def _typed(f: Feature, values: pd.Series) -> pd.Series:
    if f.dtype in ("category", "ordinal"):
        return values.astype("string")
    if f.dtype == "boolean":
        return values.astype("boolean")
    return values.astype("float64")


def _attribute(data: CrmData, f: Feature, rows: dict[str, np.ndarray]) -> pd.Series:
    """A lead/account/contact column aligned to leads; `rows` maps entity -> row positions."""
    entity, column = str(f.source).split(".")
    table = {"lead": data.leads, "account": data.accounts, "contact": data.contacts}[entity]
    if column not in table.columns:
        return _typed(f, pd.Series([None] * len(data.leads), dtype=object))
    column_values = table[column]
    source = column_values.astype(object).where(column_values.notna(), None).to_numpy()
    pos = rows[entity]
    values = np.where(pos >= 0, source[np.maximum(pos, 0)] if len(source) else None, None)
    return _typed(f, pd.Series(values, dtype=object))


def _entity_rows(data: CrmData) -> dict[str, np.ndarray]:
    leads = data.leads
    return {
        "lead": np.arange(len(leads)),
        "account": pd.Index(data.accounts["account_id"]).get_indexer(leads["account_id"]),
        "contact": pd.Index(data.contacts["contact_id"]).get_indexer(leads["contact_id"]),
    }


def snapshot(data: CrmData, spec: FeatureSpec, as_of: pd.Series) -> pd.DataFrame:
    """Feature rows for every lead of `data` at its `as_of` (a Series aligned to data.leads).

    Only events dated ``<= as_of`` of their own lead are read; current-state columns never
    are (the spec refuses them). Returns `lead_id`, `as_of`, `lead_age_days` and the rest of
    the spec's features in spec order.
    """
    if len(as_of) != len(data.leads):
        raise ValueError("as_of must have one entry per lead")
    as_of = pd.Series(as_of).reset_index(drop=True).astype("datetime64[ns]")
    created = data.leads["created_at"].reset_index(drop=True).astype("datetime64[ns]")
    as_of_ns = as_of.to_numpy().view(np.int64)
    created_ns = created.to_numpy().view(np.int64)
    frame = _Frame(data, as_of_ns, created_ns)
    entity_rows = _entity_rows(data)
    columns: dict[str, Any] = {
        "lead_id": data.leads["lead_id"].reset_index(drop=True).astype("string"),
        "as_of": as_of,
        "lead_age_days": (as_of_ns - created_ns) / DAY_NS,
    }
    for f in spec:
        if f.kind == "age":
            continue  # lead_age_days is already a column
        if f.kind == "attribute":
            columns[f.name] = _attribute(data, f, entity_rows)
        elif f.kind == "ratio":
            num, den = (np.asarray(columns[i], dtype="float64") for i in f.inputs)
            with np.errstate(divide="ignore", invalid="ignore"):
                columns[f.name] = np.where(den != 0, num / np.where(den == 0, 1, den), np.nan)
        elif f.kind == "difference":
            a, b = (np.asarray(columns[i], dtype="float64") for i in f.inputs)
            columns[f.name] = a - b
        else:
            columns[f.name] = _event_feature(frame, f)
    return pd.DataFrame(columns)
