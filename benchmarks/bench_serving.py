"""Serving speed against the references a user would otherwise deploy, timed in one run.

Trains a model on a generated leadforge bundle into a throwaway SQLite MLflow store, picks
leads with about 20 events each, then measures, with one load client (``http.client``,
keep-alive connections, the same for both servers; ``http_load.py``), warm-up first:

* (a) ``leadscore serve --workers 1``: ``POST /v1/score?explain=true`` (reasons, SQL criteria,
  routing) at concurrency 1 (p50, p99) and 4 (throughput); with ``--http-ab`` also the same app
  on uvicorn's pure-Python HTTP parser and asyncio loop (``--http h11 --loop asyncio``), so the
  gain of httptools and uvloop is measured in the same run;
* (b) the same booster logged with MLflow's standard LightGBM flavor and served by
  ``mlflow models serve --env-manager local -w 1``, fed each lead's precomputed flat feature
  row (categories as integer codes, missing as null): it does less work than (a)
  (``reference_mlflow.py``);
* the load table: (a) with one worker and with ``--workers 2``, at concurrency 1, 4, 8, 16 and
  64 (p50, p99, req/s); two workers against one at concurrency 8 is reported, not judged (the
  load client shares the cores with the servers; ``--smoke`` runs the table with one worker);
* (c) batch: what ``leadscore score`` does, in-process (load the model, load and validate the
  source, snapshot and score every open lead with ``serving.batch.score_source``, write; import
  time excluded) on synthetic canonical leads (100k, ``synthetic.py``) against raw
  ``Booster.predict`` on the same feature matrix.

Outputs must agree: (b) returns exactly our uncalibrated probability (``score_row`` in-process
on the same lead), (a)'s ``mql_probability`` is the calibrator applied to it, and (c)'s scores are
the calibrator applied to the raw booster's output. The script prints the ratios next to the
targets (p99 at concurrency 1 at most an eighth of (b)'s; throughput at concurrency 4 at least
10x (b)'s; batch at least half the raw booster's throughput) and writes them as JSON. Only the
agreement is judged: the script exits 1 when outputs disagree (or a server fails), never on a
missed target.

    python benchmarks/bench_serving.py                      # ~4 minutes on 2 cores
    python benchmarks/bench_serving.py --http-ab            # and the pure-Python HTTP stack
    python benchmarks/bench_serving.py --smoke              # a few minutes at most, for CI
    python benchmarks/bench_serving.py --reference-booster other.lgb   # must disagree
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import http_load
import numpy as np
import reference_mlflow as reference
from http_load import BIN, Server, Workspace
from serving_batch import bench_batch

from leadscore.serving.registry import (
    CHAMPION,
    DEFAULT_MODEL_NAME,
    REGISTRY_TIMEOUT_ENV,
    registry_uri,
)

SEED = 20241125
AS_OF_DAYS = 30
EVENTS_PER_LEAD = 20  # the leads posted to both servers have EVENTS_PER_LEAD +- EVENT_SLACK events
EVENT_SLACK = 2
BODIES = 64  # distinct leads cycled through by the load client
CONCURRENCY = 4
TABLE_CONCURRENCY = (1, 4, 8, 16, 64)  # the load table; 8 compares two workers with one
TABLE_WORKERS = 2  # the load table's second server (one worker is the first)
SCORE_PATH = "/v1/score?explain=true"
API_KEY = "bench-serving-key"
# A process's first MLflow call opens the SQLite store, which can take longer than the service's
# default registry timeout on a loaded machine; the benchmark measures serving, not that.
REGISTRY_TIMEOUT_S = "120"
ROOT = Path(__file__).resolve().parent.parent
TARGETS = tuple(common.Target(*t) for t in (
    ("p99_c1_ours_over_reference", "<=", 0.125, "(a) p99 at concurrency 1 / (b)'s"),
    ("rps_c4_ours_over_reference", ">=", 10.0, "(a) req/s at concurrency 4 / (b)'s"),
    ("batch_ours_over_raw_booster", ">=", 0.5, "(c) leadscore score rows/s / raw booster's"),
))  # fmt: skip


def generate_bundle(ws: Workspace, leads: int, seed: int) -> Path:
    """A leadforge bundle (`leadscore data generate`) in the workspace."""
    bundle = ws.root / "bundle"
    ws.run([str(BIN / "leadscore"), "data", "generate", "--seed", str(seed), "--leads",
            str(leads), "--out", str(bundle)], "generate.log")  # fmt: skip
    return bundle


def train_model(ws: Workspace, leads: int, seed: int) -> tuple[Path, str]:
    """Generate a bundle, train and register a model with the CLI; (bundle, model URI)."""
    bundle = generate_bundle(ws, leads, seed)
    ws.run([str(BIN / "leadscore"), "train", "--data", str(bundle)], "train.log")
    return bundle, registry_uri(DEFAULT_MODEL_NAME, CHAMPION)


def bench_online(
    ours: Server, ref: Server, expected: Sequence[reference.Expected], requests: int,
    warmup: int, rounds: int, pure_python: Server | None = None,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """Check the servers' answers, then time them: rounds alternate between the servers
    (concurrency 1, then 4), so a burst of load from elsewhere slows all alike."""
    key = {"X-API-Key": API_KEY}
    ours_bodies = [e.body for e in expected]
    ref_bodies = [e.reference_body for e in expected]

    problems: list[str] = []
    for server in (ours, pure_python) if pure_python else (ours,):
        answers, errors = http_load.ask_each(server.port, SCORE_PATH, ours_bodies, key)
        problems += errors + reference.api_problems(expected, answers)
    ref_answers, errors = http_load.ask_each(ref.port, "/invocations", ref_bodies)
    predictions = reference.reference_predictions(ref_answers)
    problems += errors + reference.reference_problems(expected, predictions)

    targets = {
        "leadscore": (ours.port, SCORE_PATH, ours_bodies, key),
        "mlflow": (ref.port, "/invocations", ref_bodies, None),
    }
    if pure_python:
        targets["leadscore_h11"] = (pure_python.port, SCORE_PATH, ours_bodies, key)
    for port, path, bodies, headers in targets.values():  # warm-up, untimed
        http_load.run_load(port, path, bodies, warmup, 1, headers)
        http_load.run_load(port, path, bodies, warmup, CONCURRENCY, headers)
    pooled = {(n, c): http_load.Load(c) for n in targets for c in (1, CONCURRENCY)}
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for concurrency in (1, CONCURRENCY):
            for name, (port, path, bodies, headers) in targets.items():
                pooled[name, concurrency].add(
                    http_load.run_load(port, path, bodies, per_round, concurrency, headers)
                )
    result: dict[str, Any] = {}
    for (name, concurrency), load in pooled.items():
        result.setdefault(name, {})[f"c{concurrency}"] = load.summary()
        problems += sorted(set(load.errors))
    return result, problems


def bench_load_table(
    servers: Mapping[int, Server], bodies: Sequence[bytes], requests: int, warmup: int,
    rounds: int,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """(a) with each number of workers at each concurrency of the table: p50, p99, req/s. Rounds
    alternate between the servers at each concurrency, as in :func:`bench_online`; every level
    gets at least two requests per connection."""
    key = {"X-API-Key": API_KEY}
    for server in servers.values():  # warm-up, untimed, with enough connections for each worker
        http_load.run_load(server.port, SCORE_PATH, bodies, warmup, 8, key)
    pooled = {(w, c): http_load.Load(c) for w in servers for c in TABLE_CONCURRENCY}
    for _ in range(rounds):
        for concurrency in TABLE_CONCURRENCY:
            total = max(requests // rounds, 2 * concurrency)
            for workers, server in servers.items():
                load = http_load.run_load(server.port, SCORE_PATH, bodies, total, concurrency, key)
                pooled[workers, concurrency].add(load)
    table: dict[str, Any] = {}
    problems: list[str] = []
    for (workers, concurrency), load in pooled.items():
        table.setdefault(f"workers_{workers}", {})[f"c{concurrency}"] = load.summary()
        problems += sorted(set(load.errors))
    return table, problems


def ratios_of(
    online: Mapping[str, Any], batch: Mapping[str, Any] | None,
    table: Mapping[str, Any] | None = None,
) -> dict[str, float]:  # fmt: skip
    """The ratios the targets are stated in, and the reported ones."""
    ours, ref = online["leadscore"], online["mlflow"]
    c4 = f"c{CONCURRENCY}"
    out = {
        "p99_c1_ours_over_reference": ours["c1"]["p99_ms"] / ref["c1"]["p99_ms"],
        "p50_c1_ours_over_reference": ours["c1"]["p50_ms"] / ref["c1"]["p50_ms"],
        "rps_c4_ours_over_reference": ours[c4]["requests_per_s"] / ref[c4]["requests_per_s"],
    }
    if "leadscore_h11" in online:
        h11 = online["leadscore_h11"]
        out["p99_c1_ours_over_pure_python_http"] = ours["c1"]["p99_ms"] / h11["c1"]["p99_ms"]
        out["rps_c4_ours_over_pure_python_http"] = (
            ours[c4]["requests_per_s"] / h11[c4]["requests_per_s"]
        )
    if table and f"workers_{TABLE_WORKERS}" in table:
        one, two = table["workers_1"]["c8"], table[f"workers_{TABLE_WORKERS}"]["c8"]
        out["rps_c8_two_workers_over_one"] = two["requests_per_s"] / one["requests_per_s"]
    if batch:
        raw = batch["raw_booster"]["rows_per_s"]
        out["batch_ours_over_raw_booster"] = batch["leadscore_score"]["rows_per_s"] / raw
        phases = batch["phases_once"]
        features_and_score = batch["scored"] / (phases["snapshot_s"] + phases["score_frame_s"])
        out["batch_snapshot_and_score_over_raw_booster"] = features_and_score / raw
    return out


def print_report(result: Mapping[str, Any]) -> None:
    """The tables: latency and throughput of (a) and (b), batch (c), ratios against targets."""
    online, b = result["online"], result["bodies"]
    c4 = f"c{CONCURRENCY}"
    print(f"\nonline: {b['count']} distinct leads, {b['events_mean']:.1f} events each on "
          f"average ({b['events_min']}-{b['events_max']}); one worker each")  # fmt: skip
    labels = {"leadscore": f"(a) leadscore serve ({result['load']['http']})",
              "leadscore_h11": "(a') same app, uvicorn h11 + asyncio",
              "mlflow": "(b) mlflow models serve (lightgbm flavor)"}  # fmt: skip
    common.print_table(
        [("server", 44), ("p50 ms", 8, ".2f"), ("p99 ms", 8, ".2f"), ("req/s c1", 10, ".0f"),
         ("p50 ms c4", 11, ".2f"), ("req/s c4", 10, ".0f")],
        [(label, online[k]["c1"]["p50_ms"], online[k]["c1"]["p99_ms"],
          online[k]["c1"]["requests_per_s"], online[k][c4]["p50_ms"],
          online[k][c4]["requests_per_s"]) for k, label in labels.items() if k in online],
    )  # fmt: skip
    table = result.get("load_table")
    if table:
        print("\nload table: (a) POST /v1/score?explain=true, one load client on the same machine")
        common.print_table(
            [("workers", 10), ("concurrency", 12), ("p50 ms", 9, ".2f"), ("p99 ms", 9, ".2f"),
             ("req/s", 8, ".0f")],
            [(w.removeprefix("workers_"), s["concurrency"], s["p50_ms"], s["p99_ms"],
              s["requests_per_s"]) for w, levels in table.items() for s in levels.values()],
        )  # fmt: skip
    batch = result.get("batch")
    if batch:
        print(f"\nbatch: {batch['scored']:,} leads, {batch['events']:,} events, "
              f"{batch['features']} features, {batch['trees']} trees; "
              f"best of {batch['repeats']}")  # fmt: skip
        for label, key in (
            ("(c) leadscore score in-process (features incl.)", "leadscore_score"),
            ("    raw Booster.predict on the feature matrix", "raw_booster"),
        ):
            print(f"{label:<52}{batch[key]['seconds']:>8.2f} s"
                  f"{batch[key]['rows_per_s']:>12,.0f} rows/s")  # fmt: skip
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s"
                           for k, v in batch["phases_once"].items())  # fmt: skip
        print(f"    phases of ours (timed once, separately): {phases}")
    common.print_ratios(result["ratios"], result["targets"])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes for CI; judges agreement")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/serving.json")
    p.add_argument("--requests", type=int, default=2000,
                   help="timed requests per server and concurrency")  # fmt: skip
    p.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    p.add_argument("--rounds", type=int, default=2, help="alternations between the servers")
    p.add_argument("--work", type=Path, help="scratch directory (kept; default: a temp dir)")
    p.add_argument("--train-leads", type=int, default=3000, help="leads of the training bundle")
    p.add_argument("--batch-leads", type=int, default=100_000)
    p.add_argument("--batch-events", type=int, default=None,
                   help=f"default: {EVENTS_PER_LEAD} per lead")  # fmt: skip
    p.add_argument("--batch-repeats", type=int, default=3)
    p.add_argument("--skip-batch", action="store_true", help="measure (a) and (b) only")
    p.add_argument("--skip-table", action="store_true", help="no load table (one server less)")
    p.add_argument("--one-worker-table", action="store_true",
                   help=f"the load table without the --workers {TABLE_WORKERS} server")  # fmt: skip
    p.add_argument("--table-requests", type=int, default=1000,
                   help="timed requests per server and concurrency of the load table")  # fmt: skip
    p.add_argument("--http-ab", action="store_true",
                   help="also time (a) on uvicorn's pure-Python HTTP parser and asyncio "
                        "loop")  # fmt: skip
    p.add_argument("--model-dir", type=Path,
                   help="serve this leadscore model directory instead of training one")  # fmt: skip
    p.add_argument("--reference-booster", type=Path,
                   help="LightGBM model file to serve as (b) instead of ours (the agreement "
                        "check must then fail)")  # fmt: skip
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    if args.smoke:
        args.train_leads, args.batch_leads = 400, 3000
        args.requests, args.warmup, args.rounds, args.batch_repeats = 40, 10, 1, 1
        # one worker only: starting a second server costs CI more than the whole table
        args.table_requests, args.one_worker_table = 16, True
    if args.batch_events is None:
        args.batch_events = EVENTS_PER_LEAD * args.batch_leads
    return args


def http_stack() -> str:
    """What uvicorn's "auto" picks in the servers: httptools and uvloop when installed."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http} + {loop}"


def run(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    """Every measurement; the result document and the disagreements."""
    import lightgbm as lgb
    import mlflow

    from leadscore.serving.loader import load_scorer

    os.environ[REGISTRY_TIMEOUT_ENV] = REGISTRY_TIMEOUT_S
    started = time.perf_counter()
    if args.model_dir:
        bundle = generate_bundle(ws, args.train_leads, args.seed)
        model_uri = str(args.model_dir.resolve())
    else:
        bundle, model_uri = train_model(ws, args.train_leads, args.seed)
    print(f"model ready in {time.perf_counter() - started:.1f} s: {model_uri} ({ws.root})")
    mlflow.set_tracking_uri(ws.tracking_uri)
    scorer = load_scorer(model_uri)
    bodies = reference.pick_bodies(bundle, BODIES, args.seed, AS_OF_DAYS, EVENTS_PER_LEAD,
                                   EVENT_SLACK)  # fmt: skip
    expected = reference.expected_outputs(scorer, bodies)
    booster = scorer.booster
    if args.reference_booster:
        booster = lgb.Booster(model_file=str(args.reference_booster))
    reference_uri = reference.log_reference(ws.tracking_uri, ws.root, booster,
                                            scorer.encoding.names)  # fmt: skip
    events = [e.events for e in expected]
    result: dict[str, Any] = {
        "smoke": args.smoke,
        "model": {
            "uri": model_uri, "version": scorer.meta.get("version"),
            "trees": scorer.booster.num_trees(), "features": len(scorer.encoding.names),
            "calibrator": scorer.calibrator.method, "train_leads": args.train_leads,
        },
        "reference": {"uri": reference_uri, "flavor": "mlflow.lightgbm",
                      "booster": str(args.reference_booster or "the served model's")},
        "bodies": {"count": len(expected), "events_mean": float(np.mean(events)),
                   "events_min": int(min(events)), "events_max": int(max(events)),
                   "as_of_days": AS_OF_DAYS},
        "load": {"requests": args.requests, "warmup": args.warmup, "rounds": args.rounds,
                 "concurrency": [1, CONCURRENCY], "client": "http.client keep-alive, threads",
                 "http": http_stack(), "table_requests": args.table_requests,
                 "table_concurrency": list(TABLE_CONCURRENCY)},
    }  # fmt: skip
    env = ws.env | {"LEADSCORE_MODEL_URI": model_uri, "LEADSCORE_API_KEYS": f"{API_KEY}:score",
                    REGISTRY_TIMEOUT_ENV: REGISTRY_TIMEOUT_S}  # fmt: skip
    ours_cmd = [str(BIN / "leadscore"), "serve", "--host", "127.0.0.1", "--port", "{port}",
                "--workers"]  # fmt: skip
    ref_cmd = [str(BIN / "mlflow"), "models", "serve", "-m", reference_uri, "--env-manager",
               "local", "-h", "127.0.0.1", "-p", "{port}", "-w", "1"]  # fmt: skip
    h11_cmd = [str(BIN / "python"), "-m", "uvicorn", "leadscore.serving.api:create_app",
               "--factory", "--host", "127.0.0.1", "--port", "{port}", "--http", "h11", "--loop",
               "asyncio"]  # fmt: skip
    servers = [("leadscore-serve", [*ours_cmd, "1"], env, "/readyz"),
               ("mlflow-serve", ref_cmd, ws.env, "/ping")]  # fmt: skip
    two_workers = not args.skip_table and not args.one_worker_table
    if two_workers:
        servers.append(("leadscore-serve-2", [*ours_cmd, str(TABLE_WORKERS)], env, "/readyz"))
    if args.http_ab:
        servers.append(("leadscore-h11", h11_cmd, env, "/readyz"))
    with http_load.running(ws, *servers) as started:
        named = {s.name: s for s in started}
        ours, ref = named["leadscore-serve"], named["mlflow-serve"]
        print(f"servers ready: {', '.join(f'{s.name} :{s.port}' for s in started)}; measuring ...")
        online, problems = bench_online(
            ours, ref, expected, args.requests, args.warmup, args.rounds, named.get("leadscore-h11")
        )
        table = None
        if not args.skip_table:
            print("load table ...")
            by_workers = {1: ours} | ({TABLE_WORKERS: named["leadscore-serve-2"]}
                                      if two_workers else {})  # fmt: skip
            table, table_problems = bench_load_table(
                by_workers, [e.body for e in expected], args.table_requests, args.warmup,
                args.rounds,
            )  # fmt: skip
            problems += table_problems
            result["load_table"] = table
    result["online"] = online
    batch = None
    if not args.skip_batch:
        print(f"batch: {args.batch_leads:,} synthetic leads, {args.batch_events:,} events ...")
        batch, batch_problems = bench_batch(
            ws, model_uri, args.batch_leads, args.batch_events, args.batch_repeats, args.seed,
            AS_OF_DAYS,
        )  # fmt: skip
        problems += batch_problems
        result["batch"] = batch
    result["ratios"] = ratios_of(online, batch, table)
    result["targets"] = common.judge(result["ratios"], TARGETS)
    return result, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON; 1 when outputs disagree."""
    args = parse_args(argv)
    outcome = Workspace.run_in(args.work, "bench_serving-", lambda ws: run(args, ws))
    if outcome is None:
        return 1
    result, problems = outcome
    return common.conclude(
        result, problems,
        ("mlflow", "lightgbm", "fastapi", "uvicorn", "httptools", "uvloop", "numpy", "pandas"),
        args.json_out, print_report,
        "outputs agree: mlflow == leadscore uncalibrated; API == calibrator(raw); "
        "batch == calibrator(raw booster)",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
