"""The scaling benchmark keeps working: its chunked data is a canonical directory the package
loads, its reference query computes what the snapshot builder does (and shares none of its
code), its agreement check can fail, and a tiny run reports every engine.

benchmarks/ is no package: its modules are imported from their folder, as the scripts do.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.schema import TABLES
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources.canonical import load_canonical, write_canonical
from leadscore.features.spec import build_spec
from tests.test_benchmarks import BENCHMARKS, bench_module


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 leads in 4 chunks of at most 170, 5 events each."""
    scale_data = bench_module("scale_data")
    out = tmp_path_factory.mktemp("scale") / "data"
    manifest = scale_data.ensure_scale_data(out, 600, seed=3, events_per_lead=5, chunk_leads=170)
    assert manifest["cached"] is False
    return out


def test_chunked_data_loads_as_a_canonical_directory_with_unique_ids(chunked: Path) -> None:
    crm = load_canonical(chunked, FeatureConfig())  # no DataContractError
    assert len(crm.leads) == 600 and len(crm.events) == 600 * 5
    assert pq.ParquetFile(chunked / "events.parquet").metadata.num_row_groups == 4
    for table, column in [("leads", "lead_id"), ("events", "event_id"),
                          ("accounts", "account_id"), ("contacts", "contact_id")]:  # fmt: skip
        ids = crm.table(table)[column]
        assert ids.is_unique, f"{table}.{column} repeats across chunks"
    # every reference resolves within the data: ids were rewritten alike in every table
    assert set(crm.events["lead_id"]) <= set(crm.leads["lead_id"])
    assert set(crm.leads["account_id"]) <= set(crm.accounts["account_id"])
    assert set(crm.leads["contact_id"].dropna()) <= set(crm.contacts["contact_id"])
    assert crm.observation_end > crm.leads["created_at"].max()


def test_chunked_files_have_the_columns_and_types_of_a_validated_source(
    chunked: Path, tmp_path: Path
) -> None:
    written = write_canonical(load_canonical(chunked, FeatureConfig()), tmp_path / "again")
    for table in TABLES:
        ours = pq.read_schema(chunked / f"{table}.parquet").remove_metadata()
        theirs = pq.read_schema(written / f"{table}.parquet").remove_metadata()
        assert ours == theirs, table


def test_generation_is_deterministic_and_cached(chunked: Path, tmp_path: Path) -> None:
    scale_data = bench_module("scale_data")
    again = scale_data.ensure_scale_data(chunked, 600, seed=3, events_per_lead=5, chunk_leads=170)
    assert again["cached"] is True
    other = scale_data.ensure_scale_data(tmp_path / "d", 600, seed=3, events_per_lead=5,
                                         chunk_leads=170)  # fmt: skip
    assert other["cached"] is False and not (tmp_path / "d.partial").exists()
    for table in TABLES:
        a = pq.read_table(chunked / f"{table}.parquet")
        assert a.equals(pq.read_table(tmp_path / "d" / f"{table}.parquet")), table
    reseeded = scale_data.ensure_scale_data(tmp_path / "d", 600, seed=4, events_per_lead=5,
                                            chunk_leads=170)  # fmt: skip
    assert reseeded["cached"] is False
    assert not pq.read_table(tmp_path / "d" / "events.parquet").equals(
        pq.read_table(chunked / "events.parquet")
    )


def test_the_reference_query_equals_the_snapshot_builder(chunked: Path, tmp_path: Path) -> None:
    reference = bench_module("reference_scale")
    config = load_feature_config()  # what the reference reads: the config directory's
    crm = load_canonical(chunked, config)
    ours = snapshot(crm, build_spec(config), as_of_after_creation(crm.leads, 30))
    out = tmp_path / "ref.parquet"
    assert reference.run(chunked, 30, out) == len(crm.leads)
    ref = pd.read_parquet(out).set_index("lead_id").loc[ours["lead_id"]].reset_index()
    assert list(ref.columns) == list(ours.columns)
    for col in ours.columns:
        a, b = ours[col], ref[col]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy("float64"), b.to_numpy("float64")
            assert np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True), col
        else:
            assert (a.astype("string").fillna("~") == b.astype("string").fillna("~")).all(), col


def test_the_feature_check_catches_a_difference(chunked: Path, tmp_path: Path) -> None:
    reference, scale = bench_module("reference_scale"), bench_module("scale")
    ref = tmp_path / "ref.parquet"
    reference.run(chunked, 30, ref)
    assert scale.compare_features(ref, ref, "same") == []
    frame = pd.read_parquet(ref)
    frame.loc[5, "touches"] += 1
    frame.loc[9, "days_since_last_touch"] = np.nan if frame.loc[9, "touches"] else 1.0
    frame.drop(index=11).to_parquet(tmp_path / "off.parquet", index=False)
    problems = scale.compare_features(ref, tmp_path / "off.parquet", "off")
    assert problems == [
        "off: 1 lead(s) only in the reference, 0 only in ours",
        "off: touches differs from the reference on 1 lead(s)",
        "off: days_since_last_touch differs from the reference on 1 lead(s)",
    ]


def test_the_score_check_catches_a_difference(tmp_path: Path) -> None:
    scale = bench_module("scale")
    scores = pd.DataFrame({"lead_id": ["a", "b", "c"], "mql_probability": [0.1, 0.5, 0.9],
                           "tier": ["D", "B", "A"], "is_mql": [False, False, True]})  # fmt: skip
    scores.to_parquet(tmp_path / "first.parquet", index=False)
    assert scale.compare_scores(tmp_path / "first.parquet", tmp_path / "first.parquet", "x") == []
    other = scores.iloc[1:].copy()
    other.loc[1, "mql_probability"] += 1e-6
    other.to_parquet(tmp_path / "other.parquet", index=False)
    assert scale.compare_scores(tmp_path / "first.parquet", tmp_path / "other.parquet", "x") == [
        "x: 1 scored lead(s) missing, 0 extra",
        "x: 1 lead(s) with another probability, tier or MQL flag",
    ]


def test_the_reference_is_independent_of_our_builders() -> None:
    found: set[str] = set()
    tree = ast.parse((BENCHMARKS / "reference_scale.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    ours = {n for n in found if n.startswith("leadscore")}
    assert ours == {"leadscore.features.config", "leadscore.features.spec"}


def test_sizes_read_and_print_alike() -> None:
    scale = bench_module("scale")
    assert [scale.parse_size(s) for s in ("2000", "100k", "1M", "10M", "2.5k")] == [
        2000, 100_000, 1_000_000, 10_000_000, 2500]  # fmt: skip
    assert [scale.size_label(n) for n in (2000, 100_000, 10_000_000, 2500, 1234)] == [
        "2k", "100k", "10M", "2.5k", "1234"]  # fmt: skip


def test_a_measured_process_tree_counts_its_children(tmp_path: Path) -> None:
    scale = bench_module("scale")
    # the child holds ~200 MiB while its parent holds little: the tree's peak must show it
    child = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(0.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    m = scale.measure([sys.executable, "-c", parent], {}, tmp_path, tmp_path / "log", 60)
    assert m.returncode == 0 and m.seconds > 0.5
    assert m.sampled_rss > 200 * 1024**2 and m.rusage_rss > 200 * 1024**2
    assert m.peak_rss == max(m.sampled_rss, m.rusage_rss)


def test_a_small_command_of_a_big_benchmark_process_measures_small(tmp_path: Path) -> None:
    scale = bench_module("scale")
    ballast = bytearray(b"\x01") * (400 * 1024**2)  # pages touched: this process is big now
    m = scale.measure([sys.executable, "-c", "pass"], {}, tmp_path, tmp_path / "log", 60)
    assert m.returncode == 0 and 0 < m.rusage_rss < 100 * 1024**2 and len(ballast)


@pytest.mark.slow
def test_scaling_benchmark_smoke(tmp_path: Path) -> None:
    scale = bench_module("scale")
    for step in (("features", "build"), ("score",)):
        if "--engine" not in scale.command_flags(*step):
            pytest.skip(f"leadscore {' '.join(step)} has no --engine yet")
    from tests.serving.leads import build_toy_model

    out = tmp_path / "scale.json"
    model = build_toy_model(tmp_path / "model")  # a model directory: no training, no registry
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scale.py"), "--sizes", "2k", "--engines",
         "local,duckdb", "--model", str(model), "--data-root", str(tmp_path / "data"),
         "--work", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = {(r["engine"], r["step"]): r for r in result["rows"]}
    assert set(rows) == {("reference", "features"), ("local", "features"), ("local", "score"),
                         ("duckdb", "features"), ("duckdb", "score")}  # fmt: skip
    for key, row in rows.items():
        assert row["leads"] == 2000, key
        assert row["seconds"] > 0 and row["leads_per_s"] > 0 and row["peak_rss_mib"] > 0, key
        assert row["rows"] == rows["reference", "features"]["rows"] == 2000, key
        assert "FAILED" not in row["note"], key
    assert rows["local", "features"]["note"] == rows["duckdb", "features"]["note"]
    assert rows["duckdb", "features"]["note"] == "values = reference"
    assert rows["duckdb", "score"]["note"] == "scores = local"
    assert result["ratios"]["duckdb_score_over_reference_throughput_2k"] > 0
    assert result["agree"] is True
    for engine in ("reference", "local", "duckdb"):
        assert f"| 2k | {engine} |" in result["markdown"] and f"| 2k | {engine} |" in run.stdout
