"""Scaling benchmark: ``leadscore features build`` and ``leadscore score`` on each engine at
100k, 1M and 10M synthetic leads (about 20 events each), against an independent DuckDB query.

For each size a synthetic canonical Parquet directory is written once and cached
(``scale_data.py``, chunked; ``data/bench-scale/`` by default). Then, each as its own process
so that start-up counts alike:

* the reference (``reference_scale.py``): the spec's features by one hand-written DuckDB query
  from the same files, written to Parquet;
* per engine (``local``, ``duckdb``, ``spark``): ``leadscore features build --engine E`` and
  ``leadscore score --engine E`` with ``--as-of-days 30`` (Spark writes a directory: ``--out``
  ends in ``/``). ``local`` and ``spark`` run up to 1M leads unless ``--local-max`` /
  ``--spark-max`` say otherwise; Spark is skipped (a note in the table) when ``pyspark`` is not
  importable. ``--memory-limit`` goes to the DuckDB runs (and the reference), ``--chunk-rows``
  to the DuckDB and Spark runs, of the commands whose ``--help`` lists them.

Each run reports seconds, leads/s and the peak RSS of its whole process tree: the larger of the
tree's summed RSS sampled every 0.1 s (psutil; a JVM child counts) and
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a small launcher process the command runs under (the
kernel's peak of its largest reaped process). The model is trained and
registered once per run in a temporary MLflow store (a leadforge bundle) unless ``--model`` is
given.

Checks: every run writes one row per lead (features) or scores or excludes every lead (score),
as many as the reference has, and up to ``--check-max`` leads the engines' feature values equal
the reference's (counts exactly, numbers within 1e-9, missing equals missing) and their scores
equal the first engine's (probability within 1e-9, tier, MQL flag); a disagreement or a failed
command makes the exit status 1. Targets (reported, never fatal): DuckDB ``score``
throughput at least 0.5x the reference's; peak RSS of DuckDB ``score`` at 10M under 8 GiB;
Spark ``score`` within 3x of DuckDB's time at 1M.

    python benchmarks/scale.py                         # 100k, 1M, 10M: long (10M: ~1 h)
    python benchmarks/scale.py --sizes 100k,1M --engines local,duckdb
    python benchmarks/scale.py --sizes 2k --engines local,duckdb --train-leads 400   # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import duckdb
import psutil
import pyarrow.dataset as ds
import scale_data
from http_load import BIN, Workspace, tail

ROOT = Path(__file__).resolve().parent.parent
SEED = 7
AS_OF_DAYS = 30.0
ENGINES = ("local", "duckdb", "spark")
SIZES = (100_000, 1_000_000, 10_000_000)
SAMPLE_S = 0.1
GIB = 1024**3
MIB = 1024**2
TOLERANCE = 1e-9
STEPS = ("features", "score")


# ---------------------------------------------------------------------------------------------
# sizes and options


def parse_size(text: str) -> int:
    """``100k`` / ``1M`` / ``2500`` as a number of leads."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected a number like 2000, 100k or 1M")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def size_label(n: int) -> str:
    """``100k``, ``1M``, ``2.5k``, ``1234``: the short name of a size."""
    for unit, factor in (("M", 1_000_000), ("k", 1_000)):
        if n >= factor and (n * 10) % factor == 0:
            return f"{n / factor:g}{unit}"
    return str(n)


def command_flags(*command: str) -> frozenset[str]:
    """The long options a ``leadscore`` subcommand's ``--help`` lists."""
    done = subprocess.run(
        [str(BIN / "leadscore"), *command, "--help"], capture_output=True, text=True,
        env=os.environ | {"COLUMNS": "200", "NO_COLOR": "1"}, check=False,
    )  # fmt: skip
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", done.stdout))


def absolute_tracking_uri(uri: str) -> str:
    """A relative ``sqlite:///file`` URI made absolute (runs happen in the workspace)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


# ---------------------------------------------------------------------------------------------
# measuring one process tree


@dataclass
class Measured:
    """One command's wall time, exit status and peak memory (bytes)."""

    seconds: float
    returncode: int
    sampled_rss: int  # the tree's summed RSS, sampled every SAMPLE_S
    rusage_rss: int  # the launcher's RUSAGE_CHILDREN ru_maxrss: its largest reaped process
    timed_out: bool = False

    @property
    def peak_rss(self) -> int:
        """The larger of the two peak measures."""
        return max(self.sampled_rss, self.rusage_rss)


# The measured command runs under this launcher (started from the big benchmark process), not
# directly: a child's ru_maxrss starts from its parent's RSS at fork (Linux keeps the high-water
# mark across exec), so only a small parent reports a child's own peak. The launcher times the
# command and reports getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest reaped descendant.
LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - started
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "maxrss": maxrss}, out)
sys.exit(rc if rc >= 0 else 128 - rc)
"""


def tree_rss(root: psutil.Process) -> int:
    """Summed RSS of a process's descendants now (the launcher itself left out; 0 once gone)."""
    try:
        procs = root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def measure(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, timeout: float
) -> Measured:
    """Run a command in its own session under the launcher, its output to `log`; its time
    (the launcher's clock around it) and peak memory.

    A thread samples the summed RSS of the launcher's descendants every SAMPLE_S meanwhile.
    After `timeout` seconds the session is killed.
    """
    report = log.with_suffix(".rusage.json")
    report.unlink(missing_ok=True)
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", LAUNCHER, str(report), *args], cwd=cwd, env=dict(env),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    peak = [0]
    done = threading.Event()
    timed_out = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while True:
            peak[0] = max(peak[0], tree_rss(root))
            if done.wait(SAMPLE_S):
                return

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        returncode = proc.wait()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        timer.cancel()
    sampler.join()
    try:
        launched = json.loads(report.read_text())
        report.unlink()
    except (OSError, ValueError):  # killed: no report
        launched = {"seconds": seconds, "maxrss": 0}
    # Linux reports ru_maxrss in KiB, macOS in bytes
    rusage = int(launched["maxrss"]) * (1 if sys.platform == "darwin" else 1024)
    return Measured(float(launched["seconds"]), returncode, peak[0], rusage, timed_out.is_set())


# ---------------------------------------------------------------------------------------------
# outputs


def parquet_rows(path: Path, excluded: bool = False) -> int:
    """Rows of a Parquet file, or of the Parquet files under a directory (files whose path
    names ``excluded`` are counted only when `excluded`)."""
    if path.is_file():
        return int(ds.dataset(path, format="parquet").count_rows())
    if not path.is_dir():
        return 0
    files = [p for p in sorted(path.rglob("*.parquet"))
             if ("excluded" in str(p.relative_to(path))) == excluded]  # fmt: skip
    return int(ds.dataset([str(p) for p in files], format="parquet").count_rows()) if files else 0


def excluded_rows(out: Path) -> int:
    """Rows of a score output's excluded leads: ``FILE.excluded.parquet`` next to a file,
    ``DIR.excluded.parquet`` or ``DIR.excluded/`` next to a directory, or ``excluded`` files
    inside it."""
    if out.is_file():
        return parquet_rows(out.with_suffix(".excluded.parquet"))
    base = out.parent / out.name
    return (parquet_rows(Path(f"{base}.excluded.parquet"))
            + parquet_rows(Path(f"{base}.excluded"))
            + parquet_rows(out, excluded=True))  # fmt: skip


def _parquet_glob(path: Path) -> str:
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)


def compare_features(reference: Path, ours: Path, name: str) -> list[str]:
    """Disagreements of a snapshot with the reference's, one line per column: leads missing on
    either side, counts and flags exactly, numbers within 1e-9, text equal, missing equals
    missing (NaN counts as missing). Joined on lead_id in DuckDB, so any size fits."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    ref = f"read_parquet('{reference}')"
    mine = f"read_parquet('{_parquet_glob(ours)}', union_by_name = true)"
    describe = "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {})"
    ref_types = dict(con.execute(describe.format(ref)).fetchall())
    our_types = dict(con.execute(describe.format(mine)).fetchall())
    problems = [f"{name}: column {c} missing (the reference has it)"
                for c in ref_types if c not in our_types]  # fmt: skip
    checks = {}
    for col, kind in ref_types.items():
        if col == "lead_id" or col not in our_types:
            continue
        r, o = f'r."{col}"', f'o."{col}"'
        if kind in ("DOUBLE", "FLOAT") or our_types[col] in ("DOUBLE", "FLOAT"):
            r, o = f"CAST({r} AS DOUBLE)", f"CAST({o} AS DOUBLE)"
            missing_r, missing_o = f"({r} IS NULL OR isnan({r}))", f"({o} IS NULL OR isnan({o}))"
            same = (f"(({missing_r} AND {missing_o}) OR (NOT {missing_r} AND NOT {missing_o} AND "
                    f"abs({r} - {o}) <= {TOLERANCE} * greatest(1.0, abs({r}))))")  # fmt: skip
        elif kind.startswith("TIMESTAMP"):
            same = f"epoch_ns({r}) IS NOT DISTINCT FROM epoch_ns({o})"
        elif kind in ("BIGINT", "INTEGER", "BOOLEAN", "HUGEINT"):
            same = f"CAST({r} AS BIGINT) IS NOT DISTINCT FROM CAST({o} AS BIGINT)"
        else:
            same = f"CAST({r} AS VARCHAR) IS NOT DISTINCT FROM CAST({o} AS VARCHAR)"
        checks[col] = f"count(*) FILTER (WHERE r.lead_id IS NOT NULL AND o.lead_id IS NOT NULL " \
                      f"AND NOT ({same}))"  # fmt: skip
    select = ", ".join(
        ["count(*) FILTER (WHERE o.lead_id IS NULL)", "count(*) FILTER (WHERE r.lead_id IS NULL)",
         *checks.values()]
    )  # fmt: skip
    row = con.execute(
        f"SELECT {select} FROM {ref} r FULL OUTER JOIN {mine} o ON r.lead_id = o.lead_id"
    ).fetchone()
    assert row is not None
    only_ref, only_ours, *bad = row
    if only_ref or only_ours:
        problems.append(f"{name}: {only_ref:,} lead(s) only in the reference, {only_ours:,} only "
                        "in ours")  # fmt: skip
    problems += [f"{name}: {col} differs from the reference on {n:,} lead(s)"
                 for col, n in zip(checks, bad, strict=True) if n]  # fmt: skip
    return problems


def compare_scores(first: Path, ours: Path, name: str) -> list[str]:
    """Disagreements of two engines' scores of the same leads: leads missing on either side,
    probabilities beyond 1e-9, other tiers or MQL flags."""
    con = duckdb.connect()
    a = f"read_parquet('{_parquet_glob(first)}', union_by_name = true)"
    b = f"read_parquet('{_parquet_glob(ours)}', union_by_name = true)"
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE b.lead_id IS NULL), count(*) FILTER (WHERE a.lead_id IS NULL),
               count(*) FILTER (WHERE a.lead_id IS NOT NULL AND b.lead_id IS NOT NULL AND NOT (
                   abs(a.mql_probability - b.mql_probability) <= {TOLERANCE}
                   AND a.tier IS NOT DISTINCT FROM b.tier
                   AND a.is_mql IS NOT DISTINCT FROM b.is_mql))
        FROM {a} a FULL OUTER JOIN {b} b ON a.lead_id = b.lead_id""").fetchone()  # fmt: skip
    assert row is not None
    only_first, only_ours, differ = row
    problems = []
    if only_first or only_ours:
        problems.append(f"{name}: {only_first:,} scored lead(s) missing, {only_ours:,} extra")
    if differ:
        problems.append(f"{name}: {differ:,} lead(s) with another probability, tier or MQL flag")
    return problems


def remove(path: Path) -> None:
    """Delete an output (file, directory and its excluded sibling), to keep the disk free."""
    for p in (
        path,
        Path(f"{path.parent / path.name}.excluded.parquet"),
        path.with_suffix(".excluded.parquet"),
        Path(f"{path.parent / path.name}.excluded"),
    ):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


# ---------------------------------------------------------------------------------------------
# the runs


@dataclass
class Row:
    """One line of the table."""

    leads: int
    engine: str
    step: str
    seconds: float = math.nan
    leads_per_s: float = math.nan
    peak_rss_mib: float = math.nan
    sampled_rss_mib: float = math.nan
    rusage_rss_mib: float = math.nan
    rows: int | None = None
    note: str = ""


def train_model(ws: Workspace, leads: int, seed: int) -> str:
    """Generate a leadforge bundle, train and register a model with the CLI; its URI."""
    from leadscore.serving.registry import CHAMPION, DEFAULT_MODEL_NAME, registry_uri

    bundle = ws.root / "bundle"
    ws.run([str(BIN / "leadscore"), "data", "generate", "--seed", str(seed), "--leads",
            str(leads), "--out", str(bundle)], "generate.log")  # fmt: skip
    ws.run([str(BIN / "leadscore"), "train", "--data", str(bundle)], "train.log")
    return registry_uri(DEFAULT_MODEL_NAME, CHAMPION)


class Runner:
    """Runs and measures the commands of one benchmark in a workspace."""

    def __init__(self, args: argparse.Namespace, ws: Workspace, model: str, env: dict[str, str]):
        self.args, self.ws, self.model, self.env = args, ws, model, env
        self.flags = {step: command_flags(*cmd) for step, cmd in
                      (("features", ("features", "build")), ("score", ("score",)))}  # fmt: skip
        self.problems: list[str] = []
        self.first_score: tuple[str, Path] | None = None  # the size's first scores (engine, out)

    def has_engines(self, step: str) -> bool:
        """Whether the command takes ``--engine`` yet."""
        return "--engine" in self.flags[step]

    def engine_note(self, engine: str, leads: int) -> str | None:
        """Why an engine is not run at a size (None: it is)."""
        if engine == "spark" and importlib.util.find_spec("pyspark") is None:
            return "skipped: pyspark not installed"
        limit = {"local": self.args.local_max, "spark": self.args.spark_max}.get(engine)
        if limit is not None and leads > limit:
            return f"skipped: above --{engine}-max {size_label(limit)}"
        return None

    def measured_row(
        self, leads: int, engine: str, step: str, cmd: list[str], log: Path
    ) -> tuple[Row, Measured]:
        """Run one command; its row (rows counted by the caller)."""
        m = measure(cmd, self.env, self.ws.root, log, self.args.timeout)
        row = Row(leads, engine, step, m.seconds, common.rate(leads, m.seconds),
                  m.peak_rss / MIB, m.sampled_rss / MIB, m.rusage_rss / MIB)  # fmt: skip
        if m.returncode != 0:
            why = "timed out" if m.timed_out else f"exit {m.returncode}"
            row.note = f"FAILED ({why}, {log.name})"
            self.problems.append(f"{size_label(leads)} {engine} {step}: {why}:\n{tail(log, 15)}")
        return row, m

    def reference(self, leads: int, data: Path, out: Path) -> Row:
        """The independent DuckDB query, as its own process."""
        cmd = [
            sys.executable,
            str(Path(__file__).resolve().parent / "reference_scale.py"),
            "--data",
            str(data),
            "--as-of-days",
            str(self.args.as_of_days),
            "--out",
            str(out),
        ]
        if self.args.memory_limit:
            cmd += ["--memory-limit", self.args.memory_limit]
        row, m = self.measured_row(
            leads, "reference", "features", cmd, self.ws.root / f"reference-{size_label(leads)}.log"
        )
        if m.returncode == 0:
            row.rows = parquet_rows(out)
            row.note = "DuckDB SQL by hand (reference_scale.py)"
        return row

    def command(self, engine: str, step: str, data: Path, out: Path) -> list[str]:
        """The ``leadscore`` command line of one step on one engine."""
        flags = self.flags[step]
        sub = ["features", "build"] if step == "features" else ["score", "--model", self.model]
        cmd = [
            str(BIN / "leadscore"),
            *sub,
            "--data",
            str(data),
            "--as-of-days",
            str(self.args.as_of_days),
            "--out",
            str(out) + ("/" if engine == "spark" else ""),
        ]
        if "--engine" in flags:
            cmd += ["--engine", engine]
        if engine == "duckdb" and self.args.memory_limit and "--memory-limit" in flags:
            cmd += ["--memory-limit", self.args.memory_limit]
        if engine != "local" and self.args.chunk_rows and "--chunk-rows" in flags:
            cmd += ["--chunk-rows", str(self.args.chunk_rows)]
        return cmd

    def engine_step(
        self, leads: int, engine: str, step: str, data: Path, outs: Path, ref_out: Path,
        ref_rows: int | None,
    ) -> Row:  # fmt: skip
        """One engine's run of one step, its output counted (and checked) and removed."""
        label = size_label(leads)
        if not self.has_engines(step) and engine != "local":
            return Row(leads, engine, step, note=f"skipped: leadscore {step} has no --engine yet")
        suffix = "" if engine == "spark" else ".parquet"
        out = outs / f"{engine}-{step}{suffix}"
        remove(out)
        cmd = self.command(engine, step, data, out)
        row, m = self.measured_row(leads, engine, step, cmd,
                                   self.ws.root / f"{engine}-{step}-{label}.log")  # fmt: skip
        if not self.has_engines(step):
            row.note = (row.note + " " if row.note else "") + "(no --engine flag yet)"
        if m.returncode != 0:
            return row
        name = f"{label} {engine} {step}"
        if step == "features":
            row.rows = parquet_rows(out)
            if ref_rows is not None and row.rows != ref_rows:
                self.problems.append(f"{name}: {row.rows:,} rows, the reference {ref_rows:,}")
            elif ref_rows is not None and leads <= self.args.check_max:
                problems = compare_features(ref_out, out, name)
                self.problems += problems
                row.note = (row.note + " " if row.note else "") + (
                    "values differ" if problems else "values = reference"
                )
        else:
            row.rows = parquet_rows(out)
            excluded = excluded_rows(out)
            if self.first_score is None:
                self.first_score = (engine, out)
            elif leads <= self.args.check_max:
                problems = compare_scores(self.first_score[1], out, name)
                self.problems += problems
                row.note = (row.note + " " if row.note else "") + (
                    f"scores differ from {self.first_score[0]}" if problems
                    else f"scores = {self.first_score[0]}"
                )  # fmt: skip
            if ref_rows is not None and row.rows + excluded != ref_rows:
                self.problems.append(f"{name}: {row.rows:,} scored + {excluded:,} excluded, "
                                     f"the reference has {ref_rows:,} leads")  # fmt: skip
            if excluded:
                row.note = (row.note + " " if row.note else "") + f"{excluded:,} excluded"
        if not self.args.keep_outputs and (self.first_score is None or out != self.first_score[1]):
            remove(out)
        return row

    def size(self, leads: int) -> tuple[dict[str, Any], list[Row]]:
        """Data, reference and every engine at one size."""
        label = size_label(leads)
        data = self.args.data_root / f"leads-{label}-seed-{self.args.seed}"
        print(f"\n== {label} leads: data {data} ...", flush=True)
        manifest = scale_data.ensure_scale_data(
            data, leads, self.args.seed, self.args.events_per_lead, self.args.chunk_leads,
            progress=leads >= 1_000_000,
        )  # fmt: skip
        gen = {"dir": str(data), "cached": manifest["cached"], "seconds": manifest["seconds"],
               "bytes": manifest["bytes"], "events": manifest["spec"]["events"]}  # fmt: skip
        print(
            f"   {'cached' if gen['cached'] else 'written'}: {gen['events']:,} events, "
            f"{gen['bytes'] / GIB:.2f} GiB, drawn in {gen['seconds']:.1f} s",
            flush=True,
        )
        outs = self.ws.root / f"out-{label}"
        outs.mkdir(parents=True, exist_ok=True)
        ref_out = outs / "reference.parquet"
        rows = []
        ref = self.reference(leads, data, ref_out)
        rows.append(ref)
        print(f"   reference: {ref.seconds:.1f} s, {ref.peak_rss_mib:,.0f} MiB", flush=True)
        for engine in self.args.engines:
            skip = self.engine_note(engine, leads)
            for step in STEPS:
                if skip:
                    rows.append(Row(leads, engine, step, note=skip))
                    continue
                row = self.engine_step(leads, engine, step, data, outs, ref_out, ref.rows)
                rows.append(row)
                print(f"   {engine} {step}: {row.seconds:.1f} s, {row.peak_rss_mib:,.0f} MiB "
                      f"{row.note}", flush=True)  # fmt: skip
        if not self.args.keep_outputs:
            remove(ref_out)
            if self.first_score is not None:
                remove(self.first_score[1])
        self.first_score = None
        return gen, rows


def ratios_of(rows: Sequence[Row]) -> tuple[dict[str, float], list[common.Target]]:
    """The target ratios per size, and the targets that apply to them."""
    by = {(r.leads, r.engine, r.step): r for r in rows if not math.isnan(r.seconds)
          and "FAILED" not in r.note}  # fmt: skip
    ratios: dict[str, float] = {}
    targets: list[common.Target] = []
    for leads in sorted({r.leads for r in rows}):
        label = size_label(leads)
        ref, duck = by.get((leads, "reference", "features")), by.get((leads, "duckdb", "score"))
        spark = by.get((leads, "spark", "score"))
        if ref and duck:
            key = f"duckdb_score_over_reference_throughput_{label}"
            ratios[key] = ref.seconds / duck.seconds
            targets.append(
                common.Target(key, ">=", 0.5, f"{label}: DuckDB score leads/s / the reference's")
            )
        if duck:
            key = f"duckdb_score_peak_rss_gib_{label}"
            ratios[key] = duck.peak_rss_mib * MIB / GIB
            if leads >= 10_000_000:
                targets.append(common.Target(key, "<=", 8.0, f"{label}: peak RSS GiB (< 8)"))
        if spark and duck:
            key = f"spark_over_duckdb_score_time_{label}"
            ratios[key] = spark.seconds / duck.seconds
            if leads == 1_000_000:
                targets.append(common.Target(key, "<=", 3.0, f"{label}: Spark / DuckDB time"))
        feats = by.get((leads, "spark", "features")), by.get((leads, "duckdb", "features"))
        if feats[0] and feats[1]:
            ratios[f"spark_over_duckdb_features_time_{label}"] = feats[0].seconds / feats[1].seconds
    return ratios, targets


def markdown_table(rows: Iterable[Row]) -> str:
    """The results as a Markdown table."""

    def num(x: float, spec: str) -> str:
        return "" if math.isnan(x) else format(x, spec)

    lines = ["| leads | engine | step | seconds | leads/s | peak RSS MiB | rows | note |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for r in rows:
        rows_text = "" if r.rows is None else f"{r.rows:,}"
        lines.append(f"| {size_label(r.leads)} | {r.engine} | {r.step} | {num(r.seconds, '.2f')} "
                     f"| {num(r.leads_per_s, ',.0f')} | {num(r.peak_rss_mib, ',.0f')} "
                     f"| {rows_text} | {r.note} |")  # fmt: skip
    return "\n".join(lines)


def print_report(result: Mapping[str, Any]) -> None:
    """The data sizes, the Markdown table and the ratios against their targets."""
    print("\ndata:")
    for label, gen in result["data"].items():
        print(
            f"  {label}: {gen['events']:,} events, {gen['bytes'] / GIB:.2f} GiB on disk, "
            f"drawn in {gen['seconds']:.1f} s{' (cached)' if gen['cached'] else ''}"
        )
    print(f"model: {result['model']}; engines' flags: {result['flags']}\n")
    print(markdown_table(Row(**r) for r in result["rows"]))
    common.print_ratios(result["ratios"], result["targets"])


def run(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    """Every size; the result document and the problems (failures and disagreements)."""
    env = dict(ws.env)
    if args.model:
        model = args.model
        if args.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = absolute_tracking_uri(args.tracking_uri)
    else:
        started = time.perf_counter()
        print(f"training a model on a {args.train_leads:,}-lead leadforge bundle ({ws.root}) ...")
        model = train_model(ws, args.train_leads, args.seed)
        print(f"model ready in {time.perf_counter() - started:.1f} s: {model}")
    runner = Runner(args, ws, model, env)
    data: dict[str, Any] = {}
    rows: list[Row] = []
    for leads in args.sizes:
        gen, size_rows = runner.size(leads)
        data[size_label(leads)] = gen
        rows += size_rows
    ratios, targets = ratios_of(rows)
    result = {
        "sizes": list(args.sizes), "engines": list(args.engines), "as_of_days": args.as_of_days,
        "events_per_lead": args.events_per_lead, "seed": args.seed, "model": model,
        "memory_limit": args.memory_limit, "chunk_rows": args.chunk_rows,
        "flags": {step: sorted(f for f in flags if f in ("--engine", "--memory-limit",
                                                         "--chunk-rows"))
                  for step, flags in runner.flags.items()},
        "data": data, "rows": [asdict(r) for r in rows], "markdown": markdown_table(rows),
        "ratios": ratios, "targets": common.judge(ratios, targets),
    }  # fmt: skip
    return result, runner.problems


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", default=",".join(size_label(s) for s in SIZES),
                   help="comma-separated lead counts, e.g. 100k,1M,10M")  # fmt: skip
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    p.add_argument("--local-max", type=parse_size, default=1_000_000,
                   help="largest size the local engine runs at")  # fmt: skip
    p.add_argument("--spark-max", type=parse_size, default=1_000_000,
                   help="largest size the spark engine runs at")  # fmt: skip
    p.add_argument("--check-max", type=parse_size, default=1_000_000,
                   help="largest size whose features are compared with the reference")  # fmt: skip
    p.add_argument("--model", help="model URI to score with (default: train one)")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow store of --model (default: $MLFLOW_TRACKING_URI)")  # fmt: skip
    p.add_argument("--train-leads", type=int, default=3000, help="leads of the training bundle")
    p.add_argument("--memory-limit", default="4GB",
                   help="DuckDB memory_limit of reference and duckdb runs ('' none)")  # fmt: skip
    p.add_argument("--chunk-rows", type=int, help="--chunk-rows of the duckdb and spark runs")
    p.add_argument("--as-of-days", type=float, default=AS_OF_DAYS)
    p.add_argument("--events-per-lead", type=int, default=scale_data.EVENTS_PER_LEAD)
    p.add_argument("--chunk-leads", type=int, default=scale_data.CHUNK_LEADS,
                   help="leads per generated chunk")  # fmt: skip
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench-scale",
                   help="where the generated data is cached")  # fmt: skip
    p.add_argument("--work", type=Path, help="scratch directory (kept; default: a temp dir)")
    p.add_argument("--keep-outputs", action="store_true", help="keep the commands' outputs")
    p.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds per command")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/scale.json")
    args = p.parse_args(argv)
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        p.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    args.memory_limit = args.memory_limit or None
    args.data_root = args.data_root.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 when a run failed or disagreed."""
    args = parse_args(argv)
    outcome = Workspace.run_in(args.work, "bench_scale-", lambda ws: run(args, ws))
    if outcome is None:
        return 1
    result, problems = outcome
    return common.conclude(
        result, problems, ("duckdb", "pyarrow", "pyspark", "lightgbm", "pandas", "psutil"),
        args.json, print_report,
        "every engine wrote every lead, and their features equal the reference's",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
