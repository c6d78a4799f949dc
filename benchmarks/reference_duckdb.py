"""Independent references of the event features: DuckDB SQL and a plain pandas merge + groupby.

They are the check on ``leadscore.features.snapshot``, so they share none of its code: the
feature spec says only WHICH features to compute (kind, source column, filter, window); the
cutoff rule (events dated ``<= as_of``), the windows and the aggregates are written here again,
once in SQL and once in pandas. Nothing here may import the snapshot builder or any SQL the
package generates.

Kinds computed: count, sum, max, exists, days_since_last, days_since_first (attributes, ratios,
differences and `latest` are left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from leadscore.features.spec import Feature

REFERENCE_KINDS = frozenset(
    {"count", "sum", "max", "exists", "days_since_last", "days_since_first"}
)
DAY_NS = 86_400 * 10**9  # our own: not the builder's constant

_SQL_WINDOWS = {
    "all": None,
    "first_7d": "e.ts >= e.created AND e.ts <= e.created + INTERVAL 7 DAY",
    "last_7d": "e.ts > e.as_of - INTERVAL 7 DAY",
    "prev_7d": "e.ts > e.as_of - INTERVAL 14 DAY AND e.ts <= e.as_of - INTERVAL 7 DAY",
}


def event_features(spec: Iterable[Feature]) -> list[Feature]:
    """The spec's features the references compute, in spec order."""
    return [f for f in spec if f.kind in REFERENCE_KINDS]


def lead_cutoffs(leads: pd.DataFrame, as_of: pd.Series) -> pd.DataFrame:
    """pos, lead_id, created, as_of per lead (`as_of` aligned to `leads`): what the
    references join events to."""
    return pd.DataFrame(
        {
            "pos": np.arange(len(leads), dtype=np.int64),
            "lead_id": leads["lead_id"].to_numpy(),
            "created": leads["created_at"].to_numpy(dtype="datetime64[ns]"),
            "as_of": pd.Series(as_of).to_numpy(dtype="datetime64[ns]"),
        }
    )


def dated_events(events: pd.DataFrame, lq: pd.DataFrame) -> int:
    """How many events are dated at or before their lead's as_of."""
    pos = pd.Index(lq["lead_id"]).get_indexer(events["lead_id"])
    return int((events["timestamp"].to_numpy() <= lq["as_of"].to_numpy()[pos]).sum())


# ---------------------------------------------------------------------------------------------
# DuckDB


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_condition(f: Feature) -> str:
    parts = [
        f'e."{col}" IN ({", ".join(_sql_text(v) for v in allowed)})'
        for col, allowed in f.filter.conditions()
    ]
    window = _SQL_WINDOWS[f.window]
    if window:
        parts.append(window)
    return " AND ".join(parts) or "TRUE"


def duckdb_sql(features: Sequence[Feature]) -> str:
    """One query: events joined to their lead's cutoff, one GROUP BY lead, conditional aggregates.

    Reads the registered views `events` (canonical) and `lq` (pos, lead_id, created, as_of).
    """
    inner, outer = [], []
    for f in features:
        cond = _sql_condition(f)
        col = f'"{f.name}"'
        if f.kind in ("count", "exists"):
            inner.append(f"count(*) FILTER (WHERE {cond}) AS {col}")
            outer.append(
                f"coalesce(a.{col}, 0) > 0 AS {col}"
                if f.kind == "exists"
                else f"coalesce(a.{col}, 0) AS {col}"
            )
        elif f.kind == "sum":
            inner.append(f'coalesce(sum(e."{f.source}") FILTER (WHERE {cond}), 0) AS {col}')
            outer.append(f"coalesce(a.{col}, 0.0) AS {col}")
        elif f.kind == "max":
            inner.append(f'max(e."{f.source}") FILTER (WHERE {cond}) AS {col}')
            outer.append(f"a.{col}")
        else:
            agg = "max" if f.kind == "days_since_last" else "min"
            inner.append(f"{agg}(e.ts) FILTER (WHERE {cond}) AS {col}")
            outer.append(f"(epoch_ns(l.as_of) - epoch_ns(a.{col})) / {float(DAY_NS)!r} AS {col}")
    return f"""
WITH e AS (
    SELECT ev.*, ev."timestamp" AS ts, l.pos, l.created, l.as_of
    FROM events ev JOIN lq l ON ev.lead_id = l.lead_id
    WHERE ev."timestamp" <= l.as_of
), a AS (
    SELECT e.pos, {", ".join(inner)}
    FROM e GROUP BY e.pos
)
SELECT l.pos, {", ".join(outer)}
FROM lq l LEFT JOIN a ON a.pos = l.pos
"""


def run_duckdb(
    con: duckdb.DuckDBPyConnection, events: pd.DataFrame, lq: pd.DataFrame, sql: str
) -> pd.DataFrame:
    """The DuckDB reference: features per lead, rows in lead order."""
    con.register("events", events)
    con.register("lq", lq)
    out = con.execute(sql).df()
    return out.sort_values("pos", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# pandas


def run_pandas(events: pd.DataFrame, lq: pd.DataFrame, features: Sequence[Feature]) -> pd.DataFrame:
    """The pandas reference: merge events onto cutoffs, masked columns, one groupby lead."""
    ev = events.merge(lq, on="lead_id", how="inner")
    ev = ev[ev["timestamp"] <= ev["as_of"]]
    ts = ev["timestamp"]
    windows = {
        "all": None,
        "first_7d": (ts >= ev["created"]) & (ts <= ev["created"] + pd.Timedelta(days=7)),
        "last_7d": ts > ev["as_of"] - pd.Timedelta(days=7),
        "prev_7d": (ts > ev["as_of"] - pd.Timedelta(days=14))
        & (ts <= ev["as_of"] - pd.Timedelta(days=7)),
    }
    masks: dict[Any, pd.Series] = {}
    cols: dict[str, pd.Series] = {}
    aggs: dict[str, str] = {}
    for f in features:
        key = (f.filter, f.window)
        if key not in masks:
            m = pd.Series(True, index=ev.index)
            for col, allowed in f.filter.conditions():
                m &= ev[col].isin(allowed).fillna(False).astype(bool)
            window = windows[f.window]
            if window is not None:
                m &= window
            masks[key] = m
        m = masks[key]
        if f.kind in ("count", "exists"):
            cols[f.name], aggs[f.name] = m.astype(np.int64), "sum"
        elif f.kind == "sum":
            cols[f.name], aggs[f.name] = ev[str(f.source)].where(m, 0.0).fillna(0.0), "sum"
        elif f.kind == "max":
            cols[f.name], aggs[f.name] = ev[str(f.source)].where(m), "max"
        else:
            agg = "max" if f.kind == "days_since_last" else "min"
            cols[f.name], aggs[f.name] = ts.where(m), agg
    grouped = pd.DataFrame(cols).groupby(ev["pos"].to_numpy()).agg(aggs)
    grouped = grouped.reindex(np.arange(len(lq)))
    out = {"pos": lq["pos"]}
    for f in features:
        g = grouped[f.name]
        if f.kind == "count":
            out[f.name] = g.fillna(0).astype(np.int64)
        elif f.kind == "exists":
            out[f.name] = g.fillna(0) > 0
        elif f.kind == "sum":
            out[f.name] = g.fillna(0.0)
        elif f.kind == "max":
            out[f.name] = g
        else:
            gap = np.asarray(lq["as_of"] - g, dtype="timedelta64[ns]")
            out[f.name] = pd.Series(gap / np.timedelta64(1, "D"))
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# the check


def compare(
    ours: pd.DataFrame, ref: pd.DataFrame, features: Sequence[Feature], name: str
) -> list[str]:
    """Disagreements between our snapshot and a reference (rows in the same lead order), one
    line per feature: counts and flags exactly, numbers to 1e-9, missing equals missing."""
    problems = []
    for f in features:
        a = ours[f.name].to_numpy()
        b = ref[f.name].to_numpy()
        if f.kind in ("count", "exists"):
            a, b = a.astype(np.int64), pd.Series(b).fillna(0).astype(np.int64).to_numpy()
            bad = np.flatnonzero(a != b)
        else:
            a = np.asarray(a, dtype="float64")
            b = pd.to_numeric(pd.Series(b), errors="coerce").to_numpy(dtype="float64")
            close = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
            bad = np.flatnonzero(~close)
        if len(bad):
            i = bad[0]
            lead = ours["lead_id"].iloc[i]
            problems.append(
                f"{name}: {f.name} ({f.kind}, {f.window}) differs on {len(bad)} lead(s), "
                f"e.g. {lead}: ours={a[i]!r} {name}={b[i]!r}"
            )
    return problems
