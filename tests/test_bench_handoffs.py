"""The handoff benchmark keeps working, and its checks can fail.

Fast tests feed the checks of benchmarks/bench_handoffs.py made-up acknowledgements and store
contents; the slow one runs the script's smoke mode on SQLite, and on PostgreSQL when the
`pg_admin_url` fixture (tests/services.py) finds it: outside CI an unreachable server leaves the
SQLite row alone measured, in CI it fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_benchmarks import BENCHMARKS, ROOT, bench_module

SCRIPT = BENCHMARKS / "bench_handoffs.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/bench_handoffs.py, imported as a module."""
    return bench_module("bench_handoffs")


def test_agreement_check_fails_when_an_acknowledged_verdict_is_missing(
    bench: ModuleType,
) -> None:
    acked = [bench.Ack("L1", "k1", 1), bench.Ack("L2", "k2", 2), bench.Ack("L3", "k3", 3)]
    everything = {1: ("L1", "k1"), 2: ("L2", "k2"), 3: ("L3", "k3")}
    assert bench.agreement_problems("sqlite", acked, everything) == []
    lost = {1: ("L1", "k1"), 3: ("L3", "k3")}
    problems = bench.agreement_problems("sqlite", acked, lost)
    assert len(problems) == 1
    assert "acknowledged feedback 2 (lead 'L2') is not in the store" in problems[0]
    assert problems[0].startswith("sqlite: ")


def test_agreement_check_fails_on_a_record_stored_elsewhere_or_never_acknowledged(
    bench: ModuleType,
) -> None:
    acked = [bench.Ack("L1", "k1", 1), bench.Ack("L2", "k2", 2)]
    swapped = {1: ("L1", "k1"), 2: ("L9", "k2")}
    (problem,) = bench.agreement_problems("postgres", acked, swapped)
    assert "feedback 2 is stored for lead 'L9'" in problem and "lead 'L2'" in problem
    extra = {1: ("L1", "k1"), 2: ("L2", "k2"), 7: ("L7", None)}
    (problem,) = bench.agreement_problems("postgres", acked, extra)
    assert "1 stored feedback records were never acknowledged (ids [7])" in problem


def test_handoff_check_wants_exactly_one_handoff_per_routed_lead(bench: ModuleType) -> None:
    routed = {"a", "b", "c"}
    assert bench.handoff_problems("on", routed, ["c", "a", "b"]) == []
    problems = bench.handoff_problems("on", routed, ["a", "a", "c", "z"])
    assert len(problems) == 3
    missing, doubled, unexpected = problems
    assert "1 routed leads have no handoff (['b'])" in missing
    assert "1 leads have several handoffs (['a'])" in doubled
    assert "1 handoffs of leads that were not routed there (['z'])" in unexpected
    assert bench.handoff_problems("off", set(), ["a"])  # recording off: any handoff is wrong


def test_rounds_cut_the_requests_into_consecutive_nearly_equal_parts(bench: ModuleType) -> None:
    assert bench.chunks(list(range(7)), 3) == [[0, 1], [2, 3, 4], [5, 6]]
    assert bench.chunks(list(range(4)), 2) == [[0, 1], [2, 3]]


def test_verdicts_have_unique_keys_and_valid_rejections(bench: ModuleType) -> None:
    sent = bench.verdicts("sqlite", ["a", "b", "c", "d"])
    assert [v.key for v in sent] == ["sqlite-a", "sqlite-b", "sqlite-c", "sqlite-d"]
    assert sent[2].path == "/v1/leads/c/feedback"
    bodies = [json.loads(v.body) for v in sent]
    assert [b["disposition"] for b in bodies] == ["accepted", "accepted", "rejected", "accepted"]
    assert bodies[2]["reason"] == "no_budget"


@pytest.fixture
def pg_admin_or_none(request: pytest.FixtureRequest) -> str | None:
    """`pg_admin_url` when PostgreSQL is reachable; None where that fixture would skip (in CI
    it fails instead, which is not caught)."""
    try:
        url: str = request.getfixturevalue("pg_admin_url")
    except pytest.skip.Exception:
        return None
    return url


@pytest.mark.slow
def test_handoff_benchmark_smoke(tmp_path: Path, pg_admin_or_none: str | None) -> None:
    out = tmp_path / "handoffs.json"
    postgres = ["--no-postgres"] if pg_admin_or_none is None else ["--pg-url", pg_admin_or_none]
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json-out", str(out), "--work",
         str(tmp_path / "work"), *postgres],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checks pass" in run.stdout
    result = json.loads(out.read_text())
    assert result["agree"] is True and not result["problems"]
    backends = ["sqlite"]
    if pg_admin_or_none is None:
        assert result["feedback"]["postgres"] == {"skipped": "--no-postgres"}
    else:
        assert "skipped" not in result["feedback"]["postgres"], result["feedback"]["postgres"]
        backends.append("postgres")
    for name in backends:
        for measure in ("p50_c1", "p99_c1", "rps_c1", "rps_c4"):
            assert result["ratios"][f"feedback_{name}_{measure}_ours_over_reference"] > 0
        assert result["ratios"][f"feedback_{name}_p50_store_call_over_reference"] > 0
        feedback = result["feedback"][name]
        # smoke: warm-up, API at concurrency 1 and 4, in-process store calls
        assert feedback["acknowledged"] == 10 + 40 + 80 + 40
        for level in ("c1", "c4", "store_call", "reference"):
            assert feedback[level]["errors"] == 0
        assert feedback["c1"]["requests"] == feedback["reference"]["requests"] == 40
        assert feedback["store_call"]["requests"] == 40 and feedback["c4"]["requests"] == 80
    for measure in ("p50", "p99"):
        assert result["ratios"][f"score_{measure}_c1_recording_on_over_off"] > 0
    recording = result["recording"]
    assert recording["routed_leads"] == 10 + 60  # the example lead routes: warm-up and timed
    assert [r["recording"] for r in recording["runs"]] == ["on", "off", "on", "off"]
    assert recording["on"]["requests"] == recording["off"]["requests"] == 60
