"""The scaling benchmark's yardstick: the default spec's features computed by one hand-written
DuckDB query straight from a canonical Parquet directory, written to Parquet.

Independent of the package's builders: nothing here imports the snapshot builder or the SQL
the package compiles (``features/sql.py``, ``features/engines.py``). The spec says only WHICH
features there are (kind, source column, filter, window, inputs); the point-in-time rule
(events of the lead dated ``<= as_of``, ``as_of = created_at + N days``), the windows, the
aggregates, the joins to accounts and contacts and the derived kinds are written here again.
Times are compared as integer epoch nanoseconds, so no precision is lost.

Kinds: age, attribute, count, sum, max, exists, days_since_last, days_since_first, ratio,
difference (a spec holding any other kind, e.g. ``latest``, is refused: the yardstick would
then do less work than the engines).

Run as its own process (``python benchmarks/reference_scale.py --data DIR --as-of-days 30
--out FILE``) so that its start-up is timed like the command's; it prints one JSON line
(rows written, seconds of the query).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from leadscore.features.config import load_feature_config
from leadscore.features.spec import Feature, FeatureSpec, build_spec

DAY_NS = 86_400 * 10**9
KINDS = frozenset({"age", "attribute", "count", "sum", "max", "exists", "days_since_last",
                   "days_since_first", "ratio", "difference"})  # fmt: skip
# windows as conditions on integer epoch ns: t (event), c (creation), a (as_of)
WINDOWS = {
    "all": None,
    "first_7d": f"e.t >= e.c AND e.t <= e.c + {7 * DAY_NS}",
    "last_7d": f"e.t > e.a - {7 * DAY_NS}",
    "prev_7d": f"e.t > e.a - {14 * DAY_NS} AND e.t <= e.a - {7 * DAY_NS}",
}
ENTITY = {"account": "ac", "contact": "co", "lead": "l"}  # attribute source table -> alias


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _condition(f: Feature) -> str:
    parts = [
        f"e.{_quote(col)} IN ({', '.join(_text(v) for v in allowed)})"
        for col, allowed in f.filter.conditions()
    ]
    window = WINDOWS[f.window]
    if window:
        parts.append(window)
    return " AND ".join(parts) or "TRUE"


def _aggregate(f: Feature) -> tuple[str, str]:
    """(the aggregate over the lead's events, the output expression over it as `g.name`)."""
    cond, col = _condition(f), _quote(f.name)
    if f.kind in ("count", "exists"):
        outer = f"coalesce(g.{col}, 0)"
        return f"count(*) FILTER (WHERE {cond})", outer + (" > 0" if f.kind == "exists" else "")
    if f.kind == "sum":
        return f"sum(e.{_quote(str(f.source))}) FILTER (WHERE {cond})", f"coalesce(g.{col}, 0.0)"
    if f.kind == "max":
        return f"max(e.{_quote(str(f.source))}) FILTER (WHERE {cond})", f"g.{col}"
    agg = "max" if f.kind == "days_since_last" else "min"
    return f"{agg}(e.t) FILTER (WHERE {cond})", f"(l.a - g.{col}) / {float(DAY_NS)!r}"


def reference_sql(spec: FeatureSpec | Sequence[Feature], data: Path, as_of_days: float) -> str:
    """The query: leads with their cutoff, their events up to it grouped once per lead with
    conditional aggregates, joined with accounts and contacts; rows of every lead."""
    features = list(spec)
    unknown = sorted({f.kind for f in features} - KINDS)
    if unknown:
        raise ValueError(f"the reference does not compute feature kind(s) {unknown}")
    files = {t: _text(str(data / f"{t}.parquet")) for t in ("leads", "events", "accounts",
                                                             "contacts")}  # fmt: skip
    events = [f for f in features if f.kind not in ("age", "attribute", "ratio", "difference")]
    inner = [f"{_aggregate(f)[0]} AS {_quote(f.name)}" for f in events]
    exprs: dict[str, str] = {}
    for f in features:
        if f.kind == "age":
            exprs[f.name] = f"(l.a - l.c) / {float(DAY_NS)!r}"
        elif f.kind == "attribute":
            table, column = str(f.source).split(".")
            exprs[f.name] = f"{ENTITY[table]}.{_quote(column)}"
        elif f.kind in ("ratio", "difference"):
            a, b = (f"CAST(({exprs[i]}) AS DOUBLE)" for i in f.inputs)
            exprs[f.name] = f"{a} / nullif({b}, 0)" if f.kind == "ratio" else f"{a} - {b}"
        else:
            exprs[f.name] = _aggregate(f)[1]
        exprs[f.name] = f"({exprs[f.name]})"
    select = ",\n       ".join(f"{expr} AS {_quote(name)}" for name, expr in exprs.items())
    offset = round(as_of_days * DAY_NS)
    return f"""
WITH l AS (
    SELECT *, epoch_ns(created_at) AS c, epoch_ns(created_at) + {offset} AS a
    FROM read_parquet({files["leads"]})
), e AS (
    SELECT ev.*, epoch_ns(ev."timestamp") AS t, l.c, l.a
    FROM read_parquet({files["events"]}) ev JOIN l ON ev.lead_id = l.lead_id
    WHERE epoch_ns(ev."timestamp") <= l.a
), g AS (
    SELECT e.lead_id, {", ".join(inner)}
    FROM e GROUP BY e.lead_id
)
SELECT l.lead_id, make_timestamp_ns(l.a) AS as_of,
       {select}
FROM l
LEFT JOIN g ON g.lead_id = l.lead_id
LEFT JOIN read_parquet({files["accounts"]}) ac ON ac.account_id = l.account_id
LEFT JOIN read_parquet({files["contacts"]}) co ON co.contact_id = l.contact_id
"""


def run(
    data: Path, as_of_days: float, out: Path, memory_limit: str | None = None,
    threads: int | None = None,
) -> int:  # fmt: skip
    """Compute the features of every lead of `data` into the Parquet file `out`; rows written."""
    spec = build_spec(load_feature_config())
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # lets COPY stream without reordering
    con.execute(f"SET temp_directory = {_text(str(out.parent / '.reference-spill'))}")
    if memory_limit:
        con.execute(f"SET memory_limit = {_text(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    sql = reference_sql(spec, data, as_of_days)
    row = con.execute(f"COPY ({sql}) TO {_text(str(out))} (FORMAT parquet)").fetchone()
    return int(row[0]) if row else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference once and print ``{"rows": ..., "seconds": ...}``."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="canonical Parquet directory")
    p.add_argument("--as-of-days", type=float, required=True)
    p.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    p.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 4GB (default: DuckDB's)")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    p.add_argument("--print-sql", action="store_true", help="print the query and exit")
    args = p.parse_args(argv)
    if args.print_sql:
        print(reference_sql(build_spec(load_feature_config()), args.data, args.as_of_days))
        return 0
    started = time.perf_counter()
    rows = run(args.data, args.as_of_days, args.out, args.memory_limit, args.threads)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
