"""The serving benchmark keeps working, and its agreement checks can fail.

Fast tests run the checks (benchmarks/reference_mlflow.py) in-process on toy models; slow ones
run the script's smoke mode (both servers, batch scoring) and feed its reference server a
different booster.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leadscore.serving.runtime import Scorer
from tests.serving.leads import build_toy_model, random_body

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPT = BENCHMARKS / "bench_serving.py"


def bench_module(name: str) -> ModuleType:
    """A module of benchmarks/ (no package), imported from its folder as the scripts do."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCHMARKS))
        return importlib.import_module(name)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/reference_mlflow.py: the serving benchmark's expected outputs and checks."""
    return bench_module("reference_mlflow")


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two toy models with the same features, trained on different leads."""
    root = tmp_path_factory.mktemp("bench-toys")
    return build_toy_model(root / "a", seed=5), build_toy_model(root / "b", seed=6)


def _served_prediction(booster: Any, reference_body: bytes) -> float:
    """What MLflow's LightGBM pyfunc computes from a ``dataframe_split`` body: a float frame
    (null -> NaN) through Booster.predict."""
    split = json.loads(reference_body)["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"]).astype("float64")
    return float(booster.predict(frame)[0])


def test_reference_row_sends_missing_as_null(bench: ModuleType) -> None:
    row = bench.reference_row(np.array([1.0, math.nan, 3.5]))
    assert row == [1.0, None, 3.5]
    assert json.dumps(bench.reference_payload(["a", "b", "c"], [np.array([math.nan] * 3)])) == (
        '{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[null, null, null]]}}'
    )


def test_agreement_checks_pass_for_the_same_model_and_fail_for_another(
    bench: ModuleType, toys: tuple[Path, Path]
) -> None:
    ours, other = (Scorer.from_dir(p) for p in toys)
    rng = random.Random(3)
    expected = bench.expected_outputs(ours, [random_body(rng, i) for i in range(12)])
    same = [_served_prediction(ours.booster, e.reference_body) for e in expected]
    assert bench.reference_problems(expected, same) == []
    different = [_served_prediction(other.booster, e.reference_body) for e in expected]
    problems = bench.reference_problems(expected, different)
    assert problems and all("reference != ours" in p for p in problems)
    assert bench.reference_problems(expected, [None] * len(expected))  # no answer: disagrees


def test_api_check_compares_the_calibrated_probability(
    bench: ModuleType, toys: tuple[Path, Path]
) -> None:
    scorer = Scorer.from_dir(toys[0])
    expected = bench.expected_outputs(scorer, [random_body(random.Random(4), i) for i in range(3)])
    assert all(e.mql_probability != e.raw_probability for e in expected)  # sigmoid calibrator
    good = [
        {"lead_id": e.lead_id, "mql_probability": e.mql_probability,
         "reasons": {"positive": []}, "sql_criteria": {"criteria": [{"id": "x"}]}}
        for e in expected
    ]  # fmt: skip
    assert bench.api_problems(expected, good) == []
    raw_instead = [
        g | {"mql_probability": e.raw_probability} for g, e in zip(good, expected, strict=True)
    ]
    assert len(bench.api_problems(expected, raw_instead)) == len(expected)
    no_reasons = [g | {"reasons": None} for g in good]
    assert "lacks reasons" in bench.api_problems(expected, no_reasons)[0]
    assert bench.api_problems(expected, [None, *good[1:]])


def test_targets_are_judged_not_asserted() -> None:
    common, script = bench_module("common"), bench_module("bench_serving")
    judged = common.judge(
        {"p99_c1_ours_over_reference": 0.125, "rps_c4_ours_over_reference": 9.9,
         "batch_ours_over_raw_booster": 0.5, "rps_c8_two_workers_over_one": 0.5}, script.TARGETS,
    )  # fmt: skip
    # the bounds: p99 at most an eighth of the reference's, throughput at least 10x;
    # two workers against one is reported, never judged
    assert {k: judged[k]["met"] for k in judged} == {
        "p99_c1_ours_over_reference": True, "rps_c4_ours_over_reference": False,
        "batch_ours_over_raw_booster": True,
    }  # fmt: skip


def test_two_workers_are_compared_with_one_at_concurrency_8() -> None:
    script = bench_module("bench_serving")
    online = {
        name: {level: {"p50_ms": 2.0, "p99_ms": p99, "requests_per_s": rps}
               for level, p99, rps in (("c1", p99_1, 100.0), ("c4", 4.0, rps_4))}
        for name, p99_1, rps_4 in (("leadscore", 3.0, 400.0), ("mlflow", 30.0, 40.0))
    }  # fmt: skip
    table = {"workers_1": {"c8": {"requests_per_s": 200.0}},
             "workers_2": {"c8": {"requests_per_s": 300.0}}}  # fmt: skip
    ratios = script.ratios_of(online, None, table)
    assert ratios["p99_c1_ours_over_reference"] == pytest.approx(0.1)
    assert ratios["rps_c4_ours_over_reference"] == pytest.approx(10.0)
    assert ratios["rps_c8_two_workers_over_one"] == pytest.approx(1.5)
    assert "rps_c8_two_workers_over_one" not in script.ratios_of(online, None, {"workers_1": {}})


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
        check=False, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.slow
def test_serving_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    run = _run(["--smoke", "--json-out", str(out), "--work", str(tmp_path / "work")])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "outputs agree" in run.stdout
    result = json.loads(out.read_text())
    assert result["agree"] is True and not result["problems"]
    assert set(result["ratios"]) >= {
        "p99_c1_ours_over_reference", "rps_c4_ours_over_reference", "batch_ours_over_raw_booster",
    }  # fmt: skip
    for server in ("leadscore", "mlflow"):
        for level in ("c1", "c4"):
            summary = result["online"][server][level]
            assert summary["requests"] > 0 and summary["errors"] == 0
    table = result["load_table"]  # smoke: one worker at each concurrency, two requests each
    assert set(table) == {"workers_1"}
    for levels in table.values():
        assert list(levels) == ["c1", "c4", "c8", "c16", "c64"]
        for level, summary in levels.items():
            assert summary["requests"] >= 2 * int(level[1:]) and summary["errors"] == 0
    assert "load table" in run.stdout
    assert 18 <= result["bodies"]["events_mean"] <= 22
    assert result["batch"]["scored"] > 0


@pytest.mark.slow
def test_serving_benchmark_fails_when_the_reference_is_another_model(
    tmp_path: Path, toys: tuple[Path, Path]
) -> None:
    ours, other = toys
    out = tmp_path / "serving.json"
    run = _run(["--smoke", "--skip-batch", "--skip-table", "--model-dir", str(ours),
                "--reference-booster", str(other / "model.lgb"),
                "--json-out", str(out)])  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "OUTPUTS DISAGREE" in run.stdout and "reference != ours" in run.stdout
    result = json.loads(out.read_text())
    assert result["agree"] is False
    assert all(p.startswith("reference != ours") for p in result["problems"])
