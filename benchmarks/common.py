"""Measurement and report helpers shared by the benchmark scripts.

Timing (interleaved best-of, a stopwatch), per-call percentiles, peak RSS, a free loopback port,
the environment a result was measured in, the JSON result file, fixed-width tables, ratios
judged against targets, and the closing verdict: only the agreement of outputs decides the exit
status (1 when they disagree); a missed target is reported, never fatal.

The scripts are run by path (``python benchmarks/bench_snapshot.py``) and put their own folder
first on ``sys.path`` to import this module (benchmarks/ is no package).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


def interleaved_best(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int,
    after_warmup: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over `repeats` interleaved rounds, and its output.

    Each function runs once untimed first (its output is returned; `after_warmup(name)` is
    called then). The timed rounds alternate between the functions, so a burst of load from
    other processes slows them alike instead of skewing one ratio.
    """
    outputs: dict[str, Any] = {}
    for name, fn in fns.items():
        outputs[name] = fn()
        if after_warmup is not None:
            after_warmup(name)
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


class Stopwatch:
    """Seconds of a ``with stopwatch() as sw:`` block, in ``sw.seconds`` once it ends."""

    seconds: float = math.nan


@contextlib.contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time a block with ``time.perf_counter``."""
    sw = Stopwatch()
    start = time.perf_counter()
    try:
        yield sw
    finally:
        sw.seconds = time.perf_counter() - start


def rate(n: int, seconds: float) -> float:
    """Items per second (infinite for a zero time)."""
    return n / seconds if seconds > 0 else math.inf


_UNITS = {"us": 1e6, "ms": 1e3, "s": 1.0}


def percentiles(seconds: Sequence[float], unit: str = "us") -> dict[str, float]:
    """p50 / p99 / mean of per-call times in `unit` (us, ms or s): ``{"p50_us": ...}``;
    NaN when there are none."""
    arr = np.asarray(seconds, dtype="float64") * _UNITS[unit]
    if not len(arr):
        arr = np.array([math.nan])
    return {
        f"p50_{unit}": float(np.percentile(arr, 50)),
        f"p99_{unit}": float(np.percentile(arr, 99)),
        f"mean_{unit}": float(arr.mean()),
    }


def peak_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(*distributions: str) -> dict[str, Any]:
    """``versions`` (Python and each installed distribution) and ``machine`` of a result."""
    versions = {"python": platform.python_version()}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    machine = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }
    return {"versions": versions, "machine": machine}


def write_json(path: Path, document: Mapping[str, Any], indent: int = 2) -> Path:
    """Write a result document (parent folders created; values JSON cannot hold as text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=indent, default=str) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# report


def print_table(
    columns: Sequence[tuple[str, int] | tuple[str, int, str]],
    rows: Iterable[Sequence[Any]],
    rule: bool = True,
) -> None:
    """A fixed-width table; `columns` are (title, width[, format spec of the values]). The first
    column is left-aligned, the others right-aligned; a dashed rule under the header when `rule`.
    """
    widths = [c[1] for c in columns]
    specs = [c[2] if len(c) > 2 else "" for c in columns]

    def line(cells: Sequence[str]) -> str:
        return f"{cells[0]:<{widths[0]}}" + "".join(
            f"{cell:>{w}}" for cell, w in zip(cells[1:], widths[1:], strict=True)
        )

    header = line([c[0] for c in columns])
    print(header)
    if rule:
        print("-" * len(header))
    for row in rows:
        print(line([format(v, spec) for v, spec in zip(row, specs, strict=True)]))


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Text cells as a table: each column as wide as its widest cell, right-aligned, two
    spaces apart, a dashed rule under the header."""
    cells = [list(header), *(list(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Target(NamedTuple):
    """A target stated as a ratio: ``ratios[key] <op> bound``."""

    key: str
    op: str  # "<=" or ">="
    bound: float
    label: str


def judge(ratios: Mapping[str, float], targets: Iterable[Target]) -> dict[str, dict[str, Any]]:
    """Each target with its measured ratio and whether it is met (reported, never asserted)."""
    out = {}
    for key, op, bound, label in targets:
        if key in ratios:
            value = ratios[key]
            met = value <= bound if op == "<=" else value >= bound
            out[key] = {"label": label, "value": value, "target": f"{op} {bound:g}", "met": met}
    return out


def print_ratios(ratios: Mapping[str, float], judged: Mapping[str, Mapping[str, Any]]) -> None:
    """One line per ratio: its value, and its target with PASS or MISS when it has one."""
    print(f"\n{'ratio':<46}{'value':>8}  {'target':<8}")
    for key, value in ratios.items():
        verdict = ""
        if key in judged:
            j = judged[key]
            verdict = f"{j['target']:<8}  {'PASS' if j['met'] else 'MISS'}"
        print(f"{key:<46}{value:>8.3f}  {verdict}")


def verdict(problems: Sequence[str], agreed: str, limit: int | None = None) -> int:
    """Print the disagreements (at most `limit`) and return 1, or print `agreed` and return 0."""
    if problems:
        shown = problems if limit is None else problems[:limit]
        print("\nOUTPUTS DISAGREE:", *shown, sep="\n  ")
        if len(problems) > len(shown):
            print(f"  ... and {len(problems) - len(shown)} more")
        return 1
    print(agreed)
    return 0


def conclude(
    result: dict[str, Any],
    problems: list[str],
    packages: Sequence[str],
    json_out: Path,
    show: Callable[[dict[str, Any]], None],
    agreed: str,
    versions: Mapping[str, str] | None = None,
) -> int:
    """The end of every benchmark: versions, the agreement, the printed report, the JSON file
    and the exit code (1 when a check failed)."""
    result |= environment(*packages)
    result["versions"].update(versions or {})
    result |= {"agree": not problems, "problems": problems}
    show(result)
    print(f"wrote {write_json(json_out, result)}")
    return verdict(problems, agreed, limit=20)
