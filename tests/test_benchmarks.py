"""The benchmarks keep working: their shared modules hold, their smoke runs pass and their
agreement checks can fail.

benchmarks/ is no package: its scripts put their own folder first on ``sys.path``, and so do
these tests (for the duration of an import) to load the shared modules by name.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import load_feature_config
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.spec import FeatureSpec, build_spec

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def bench_module(name: str) -> ModuleType:
    """A module of benchmarks/, imported from its folder as the scripts import it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCHMARKS))
        return importlib.import_module(name)


def test_synthetic_data_is_deterministic_and_reads_back_from_parquet_and_csv(
    tmp_path: Path,
) -> None:
    synthetic = bench_module("synthetic")
    config = load_feature_config()
    raw = synthetic.synth_tables(np.random.default_rng(5), 300, 3000, config)
    again = synthetic.synth_tables(np.random.default_rng(5), 300, 3000, config)
    for name, frame in raw.items():
        pd.testing.assert_frame_equal(frame, again[name])
    assert len(raw["leads"]) == 300 and len(raw["events"]) == 3000
    in_memory = synthetic.to_crm(raw, config)
    for fmt in ("parquet", "csv"):
        written = synthetic.write_canonical(tmp_path / fmt, 300, 3000, seed=5, fmt=fmt)
        assert (written / f"events.{fmt}").is_file() and (written / "source.yaml").is_file()
        loaded = load_source(written, config)
        for name in ("accounts", "contacts", "leads", "events", "outcomes"):
            pd.testing.assert_frame_equal(loaded.table(name), in_memory.table(name))
        assert loaded.observation_end == in_memory.observation_end


def test_references_agree_with_the_snapshot_builder_and_catch_a_difference() -> None:
    synthetic, reference = bench_module("synthetic"), bench_module("reference_duckdb")
    import duckdb

    config = load_feature_config()
    crm = synthetic.to_crm(
        synthetic.synth_tables(np.random.default_rng(9), 400, 6000, config), config
    )
    features = reference.event_features(build_spec(config))
    assert features and {f.kind for f in features} <= reference.REFERENCE_KINDS
    as_of = as_of_after_creation(crm.leads, 30)
    ours = snapshot(crm, FeatureSpec(tuple(features)), as_of)
    lq = reference.lead_cutoffs(crm.leads, as_of)
    assert 0 < reference.dated_events(crm.events, lq) < len(crm.events)
    con = duckdb.connect(config={"threads": 1})
    duck = reference.run_duckdb(con, crm.events, lq, reference.duckdb_sql(features))
    plain = reference.run_pandas(crm.events, lq, features)
    assert reference.compare(ours, duck, features, "duckdb") == []
    assert reference.compare(ours, plain, features, "pandas") == []

    count = next(f for f in features if f.kind == "count")
    off = plain.copy()
    off.loc[7, count.name] += 1
    problems = reference.compare(ours, off, features, "pandas")
    assert len(problems) == 1 and problems[0].startswith(f"pandas: {count.name} (count")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_reference_sql_is_independent_of_our_builder() -> None:
    # it may read the spec (which features); never the snapshot builder or SQL we generate
    ours = {n for n in _imports(BENCHMARKS / "reference_duckdb.py") if n.startswith("leadscore")}
    assert ours == {"leadscore.features.spec"}


def test_benchmarks_name_no_path_outside_the_repository() -> None:
    for path in sorted(BENCHMARKS.glob("*.py")):
        text = path.read_text()
        # spelled in parts, so that this file does not name them itself
        for outside in ("/".join(("..", "shared")), "/work/", "/".join(("shared", "tools"))):
            assert outside not in text, f"{path.name} names {outside}"


def test_report_helpers_judge_targets_and_exit_on_disagreement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = bench_module("common")
    targets = [common.Target("low", "<=", 1.0, "low"), common.Target("high", ">=", 2.0, "high")]
    judged = common.judge({"low": 0.5, "high": 1.5, "other": 3.0}, targets)
    assert {k: v["met"] for k, v in judged.items()} == {"low": True, "high": False}
    common.print_ratios({"low": 0.5, "high": 1.5, "other": 3.0}, judged)
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert lines["low"].endswith("PASS") and lines["high"].endswith("MISS")
    assert lines["other"].rstrip().endswith("3.000")
    assert common.verdict([], "outputs agree") == 0
    assert common.verdict([f"p{i}" for i in range(5)], "outputs agree", limit=2) == 1
    out = capsys.readouterr().out
    assert "OUTPUTS DISAGREE" in out and "... and 3 more" in out
    best, outputs = common.interleaved_best({"a": lambda: 1, "b": lambda: 2}, repeats=2)
    assert outputs == {"a": 1, "b": 2} and all(s >= 0 for s in best.values())
    assert common.percentiles([0.001, 0.002], "ms")["p50_ms"] == pytest.approx(1.5)


def _script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.slow
def test_snapshot_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "snapshot.json"
    run = _script("bench_snapshot.py", "--smoke", "--json-out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert "outputs agree" in run.stdout
    assert result["agree"] is True and not result["problems"]
    assert set(result["batch"]["ratios"]) >= {"ours_over_duckdb", "ours_over_pandas"}
    assert result["one_lead"]["distinct_leads"] == 64


@pytest.mark.slow
def test_quality_smoke(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    run = _script("quality.py", "--smoke", "--fast", "--work", str(tmp_path / "work"), "--out",
                  str(out), timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["n_eval"] > 0 and 0.0 < row["ours_auc"] < 1.0 and 0.0 < row["flat_auc"] < 1.0
    assert row["eval_exclusions"]["unseen"] == 400


@pytest.mark.slow
def test_sources_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "sources.json"
    run = _script("bench_sources.py", "--smoke", "--json-out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert "every lead read" in run.stdout and not result["problems"]
    assert result["ours"]["leads"] == result["leads"] == 2000
    assert result["reference"]["rows"] > result["leads"]  # every object file was parsed
