"""Throughput of the point-in-time snapshot builder, as ratios to references timed in the same run.

Synthesises canonical CRM tables with numpy (``synthetic.py``), validates them, then times:

* ``leadscore.features.snapshot.snapshot`` at ``as_of = created_at + 30 d`` over every lead,
  for the full spec and for its event features alone;
* the same event features (count, sum, max, exists, days_since_*) over the same cutoff and
  windows in DuckDB (one GROUP BY lead with conditional aggregates) and in a plain pandas
  merge + groupby (``reference_duckdb.py``, independent of our builder); all three must agree
  value for value;
* the one-lead builder ``OnlineBuilder.row`` on lead bodies (plain dicts, 20 events, ISO-8601
  timestamps) against ``snapshot`` on a one-lead ``CrmData``, and that both give the same row.

Absolute numbers depend on the machine; the ratios are what to compare between runs. Only the
agreement of the outputs is judged: the script exits 1 when the builders disagree.

    python benchmarks/bench_snapshot.py                  # 100k leads, 1M events
    python benchmarks/bench_snapshot.py --smoke          # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import duckdb
import numpy as np
import pandas as pd
import reference_duckdb as reference
import synthetic

from leadscore.features.bodies import lead_bodies
from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.online import OnlineBuilder
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec, build_spec

SEED = 20240601
AS_OF_DAYS = 30
ONE_LEAD_EVENTS = 20
ONE_LEAD_POOL = 64
ROOT = Path(__file__).resolve().parent.parent

Case = tuple[dict[str, Any], CrmData]  # (lead body, the same lead as a one-lead CrmData)


def one_lead_cases(
    rng: np.random.Generator, crm: CrmData, config: FeatureConfig, n_cases: int
) -> list[Case]:
    """Leads of `crm` given exactly ONE_LEAD_EVENTS fresh events each, all dated before as_of
    (created + AS_OF_DAYS), as (body, one-lead CrmData). Bodies are what the API receives
    (``leadscore.features.bodies.lead_bodies``)."""
    pick = np.sort(rng.choice(len(crm.leads), size=min(n_cases, len(crm.leads)), replace=False))
    leads = crm.leads.iloc[pick].reset_index(drop=True)
    events = synthetic.synth_events(
        rng, leads["lead_id"].to_numpy(dtype=object),
        leads["created_at"].to_numpy(dtype="datetime64[ns]"),
        np.full(len(leads), ONE_LEAD_EVENTS), horizon_days=AS_OF_DAYS, id_prefix="S",
    )  # fmt: skip
    raw = {
        "accounts": crm.accounts[crm.accounts["account_id"].isin(leads["account_id"])],
        "contacts": crm.contacts[crm.contacts["contact_id"].isin(leads["contact_id"])],
        "leads": leads,
        "events": events,
        "outcomes": crm.outcomes[crm.outcomes["lead_id"].isin(leads["lead_id"])],
    }
    pool = synthetic.to_crm(raw, config)
    ids = pool.leads["lead_id"].tolist()
    bodies = lead_bodies(pool, config, ids, as_of_after_creation(pool.leads, AS_OF_DAYS).tolist())
    return [(body, _alone(pool, i)) for i, body in enumerate(bodies)]


def _alone(crm: CrmData, i: int) -> CrmData:
    """Lead `i` of `crm` as a one-lead CrmData: its account, contact, events and outcomes."""
    lead = crm.leads.iloc[[i]].reset_index(drop=True)
    keys = {"accounts": "account_id", "contacts": "contact_id", "events": "lead_id",
            "outcomes": "lead_id"}  # fmt: skip
    own = {
        table: crm.table(table)[crm.table(table)[key].isin(lead[key].dropna())]
        for table, key in keys.items()
    }
    return replace(crm, leads=lead, **{t: f.reset_index(drop=True) for t, f in own.items()})


def _same(a: Any, b: Any) -> bool:
    """Equal as feature values: missing equals missing, floats to 1e-9."""
    a_missing = a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def bench_one_lead(
    spec: FeatureSpec, cases: Sequence[Case], samples: int, batch_samples: int
) -> tuple[dict[str, Any], list[str]]:
    """Per-call latency of OnlineBuilder.row and of snapshot on one lead; their disagreements."""
    builder = OnlineBuilder(spec)

    def call(body: dict[str, Any]) -> dict[str, Any]:
        return builder.row(
            body["lead"], body["account"], body["contact"], body["events"], body["as_of"]
        )

    for i in range(min(200, samples)):  # warm-up
        call(cases[i % len(cases)][0])
    online = []
    for i in range(samples):
        body = cases[i % len(cases)][0]
        start = time.perf_counter()
        call(body)
        online.append(time.perf_counter() - start)

    problems: list[str] = []
    batch = []
    for i in range(batch_samples + 5):
        body, one = cases[i % len(cases)]
        as_of = as_of_after_creation(one.leads, AS_OF_DAYS)
        start = time.perf_counter()
        frame = snapshot(one, spec, as_of)
        elapsed = time.perf_counter() - start
        if i >= 5:  # the first few are warm-up
            batch.append(elapsed)
        if i < len(cases):
            row = call(body)
            for name in dict.fromkeys(["lead_age_days", *spec.names]):
                if not _same(row[name], frame[name].iloc[0]):
                    problems.append(
                        f"one lead {body['lead']['lead_id']}: {name} online={row[name]!r} "
                        f"snapshot={frame[name].iloc[0]!r}"
                    )
    on, ba = common.percentiles(online, "us"), common.percentiles(batch, "us")
    result = {
        "events_per_lead": ONE_LEAD_EVENTS,
        "distinct_leads": len(cases),
        "online": on | {"calls": samples},
        "snapshot_one_lead": ba | {"calls": batch_samples},
        "snapshot_over_online_p50": ba["p50_us"] / on["p50_us"],
    }
    return result, problems


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (sizes, output, smoke mode)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--one-lead-samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per batch builder (best)")
    p.add_argument(
        "--duckdb-threads",
        type=int,
        default=1,
        help="DuckDB threads (default 1: our builder and pandas are single-threaded)",
    )
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/snapshot.json")
    p.add_argument("--smoke", action="store_true", help="tiny sizes for CI; judges agreement only")
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    if args.smoke:
        args.leads, args.events, args.one_lead_samples = 2000, 20_000, 200
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON; 1 when outputs disagree."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    config = load_feature_config()
    spec = build_spec(config)
    ev_feats = reference.event_features(spec)
    ev_spec = FeatureSpec(tuple(ev_feats))
    n, ne = args.leads, args.events
    results: dict[str, Any] = {
        "smoke": args.smoke, "sizes": {"leads": n, "events": ne, "as_of_days": AS_OF_DAYS},
    } | common.environment("numpy", "pandas", "duckdb")  # fmt: skip
    memory: dict[str, float] = {}
    uncovered = synthetic.uncovered_filter_values(ev_feats)
    if uncovered:
        print(f"note: synthetic events never take {uncovered}; those features are all zero")

    # 1. synthesise and validate
    with common.stopwatch() as synth:
        raw = synthetic.synth_tables(rng, n, ne, config)
    rows_in = sum(len(t) for t in raw.values())
    with common.stopwatch() as valid:
        crm = synthetic.to_crm(raw, config)
    del raw
    memory["after_validate_mib"] = common.peak_mib()
    results["synthesis_seconds"] = synth.seconds
    results["validate"] = {"seconds": valid.seconds, "rows": rows_in,
                           "rows_per_s": common.rate(rows_in, valid.seconds),
                           "events_per_s": common.rate(ne, valid.seconds)}  # fmt: skip
    print(f"synthesised {n:,} leads, {ne:,} events in {synth.seconds:.2f} s; validate: "
          f"{valid.seconds:.2f} s ({results['validate']['rows_per_s']:,.0f} rows/s over "
          f"{rows_in:,} rows of 5 tables)")  # fmt: skip

    # 2. our batch builder and 3. the references, on the same cutoff, timed interleaved
    as_of = as_of_after_creation(crm.leads, AS_OF_DAYS)
    lq = reference.lead_cutoffs(crm.leads, as_of)
    dated = reference.dated_events(crm.events, lq)
    con = duckdb.connect(config={"threads": args.duckdb_threads})
    sql = reference.duckdb_sql(ev_feats)
    builders: dict[str, Callable[[], pd.DataFrame]] = {
        "ours_full_spec": lambda: snapshot(crm, spec, as_of),
        "ours_event_features": lambda: snapshot(crm, ev_spec, as_of),
        "duckdb": lambda: reference.run_duckdb(con, crm.events, lq, sql),
        "pandas_groupby": lambda: reference.run_pandas(crm.events, lq, ev_feats),
    }
    seconds, outputs = common.interleaved_best(
        builders, args.repeats,
        after_warmup=lambda name: memory.__setitem__(f"after_{name}_mib", common.peak_mib()),
    )  # fmt: skip
    ours = outputs["ours_event_features"]
    problems = reference.compare(ours, outputs["duckdb"], ev_feats, "duckdb")
    problems += reference.compare(ours, outputs["pandas_groupby"], ev_feats, "pandas")
    del outputs, builders
    batch: dict[str, dict[str, Any]] = {}
    for key, s in seconds.items():
        entry = batch[key] = {"seconds": s, "features": len(ev_feats)}
        if key == "ours_full_spec":
            entry["features"] = len(spec)
        if key == "duckdb":
            entry["threads"] = args.duckdb_threads
        entry |= {"rows_per_s": common.rate(n, s), "events_per_s": common.rate(ne, s)}
    ev_rps, full_rps = (batch[k]["rows_per_s"] for k in ("ours_event_features", "ours_full_spec"))
    duck_rps, pandas_rps = (batch[k]["rows_per_s"] for k in ("duckdb", "pandas_groupby"))
    ratios = {
        "ours_over_duckdb": ev_rps / duck_rps,
        "ours_over_pandas": ev_rps / pandas_rps,
        "ours_full_over_duckdb": full_rps / duck_rps,
        "ours_full_over_pandas": full_rps / pandas_rps,
    }
    results["batch"] = batch | {"ratios": ratios, "events_dated_before_as_of": dated}

    print(f"\nsnapshot at created + {AS_OF_DAYS} d: {n:,} leads, {ne:,} events ({dated:,} dated "
          f"<= as_of); best of {args.repeats}, interleaved")  # fmt: skip
    labels = {
        "ours_full_spec": f"ours, full spec ({len(spec)} features)",
        "ours_event_features": f"ours, event features ({len(ev_feats)})",
        "duckdb": f"duckdb {duckdb.__version__} ({args.duckdb_threads} thread(s))",
        "pandas_groupby": f"pandas {pd.__version__} merge+groupby",
    }
    common.print_table(
        [("builder", 38), ("seconds", 9, ".3f"), ("rows/s", 12, ",.0f"),
         ("events/s", 13, ",.0f"), ("ours/it", 9)],
        [(labels[k], e["seconds"], e["rows_per_s"], e["events_per_s"],
          f"{ev_rps / e['rows_per_s']:.2f}x" if k in ("duckdb", "pandas_groupby") else "")
         for k, e in batch.items()],
    )  # fmt: skip
    print(f"ratios (same event features): ours/duckdb = {ratios['ours_over_duckdb']:.2f}, "
          f"ours/pandas = {ratios['ours_over_pandas']:.2f}  (>1: ours is faster)")  # fmt: skip

    # 4. one lead
    cases = one_lead_cases(rng, crm, config, ONE_LEAD_POOL)
    batch_samples = max(20, args.one_lead_samples // 10)
    one, one_problems = bench_one_lead(spec, cases, args.one_lead_samples, batch_samples)
    problems += one_problems
    results["one_lead"] = one
    print(f"\none lead, {ONE_LEAD_EVENTS} events, full spec ({len(spec)} features)")
    common.print_table(
        [("builder", 38), ("calls", 7), ("p50 us", 10, ",.0f"), ("p99 us", 10, ",.0f")],
        [(label, one[k]["calls"], one[k]["p50_us"], one[k]["p99_us"]) for k, label in (
            ("online", "OnlineBuilder.row (dicts, ISO text)"),
            ("snapshot_one_lead", "snapshot on a one-lead CrmData"))],
        rule=False,
    )  # fmt: skip
    print(f"snapshot / online at p50: {one['snapshot_over_online_p50']:.1f}x")

    # 5. memory, 6. JSON
    memory["peak_mib"] = common.peak_mib()
    results |= {"memory": memory, "agree": not problems, "problems": problems}
    print(f"\npeak RSS {memory['peak_mib']:,.0f} MiB (after validate "
          f"{memory['after_validate_mib']:,.0f}, after our snapshot "
          f"{memory['after_ours_full_spec_mib']:,.0f}, after duckdb "
          f"{memory['after_duckdb_mib']:,.0f}, after pandas "
          f"{memory['after_pandas_groupby_mib']:,.0f})")  # fmt: skip
    print(f"wrote {common.write_json(args.json_out, results)}")
    return common.verdict(
        problems,
        "outputs agree: ours == duckdb == pandas on every event feature; online == snapshot",
    )


if __name__ == "__main__":
    sys.exit(main())
