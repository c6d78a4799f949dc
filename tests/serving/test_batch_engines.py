"""`leadscore score --engine duckdb`: the same scores and exclusions as the local path,
streamed chunk by chunk into a file or `DIR/`, with bounded memory; clear one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app

RUN = ["score", "--as-of-days", "20"]


def _score(model: Path, data: Path, out: str, *extra: str) -> str:
    result = CliRunner().invoke(app, [*RUN, "--data", str(data), "--model", str(model),
                                      "--out", out, *extra])  # fmt: skip
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_duckdb_scores_and_excludes_as_the_local_path(
    toy_model_dir: Path, ri_bundle: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local.parquet"
    _score(toy_model_dir, ri_bundle, str(local), "--engine", "local")
    # the bundle is not canonical Parquet: converted first, then streamed 50 leads at a time
    printed = _score(toy_model_dir, ri_bundle, str(tmp_path / "duck") + "/", "--engine",
                     "duckdb", "--chunk-rows", "50")  # fmt: skip
    assert "on duckdb" in printed
    want = pd.read_parquet(local)
    parts = sorted((tmp_path / "duck").glob("part-*.parquet"))
    assert len(parts) == -(-len(want) // 50)  # one part per chunk: written as they came
    got = pd.read_parquet(tmp_path / "duck")
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=0, atol=1e-9)
    excluded = pd.read_parquet(tmp_path / "local.excluded.parquet")
    assert len(excluded) > 0 and excluded["reason"].nunique() > 1  # closed leads, won and lost
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "duck.excluded"), excluded)
    for reason, n in excluded["reason"].value_counts().items():
        assert f"{reason}: {n}" in printed


def test_engine_misuse_is_one_line(toy_model_dir: Path, ri_bundle: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = [*RUN, "--data", str(ri_bundle), "--model", str(toy_model_dir),
            "--out", str(tmp_path / "s.parquet")]  # fmt: skip
    cases = {
        ("--engine", "bigquery"): "--engine 'bigquery': expected one of auto, local, duckdb",
        ("--engine", "duckdb", "--next-steps"): "--next-steps runs on the local engine",
        ("--engine", "duckdb", "--memory-limit", "lots"): "--memory-limit 'lots'",
    }
    for extra, words in cases.items():
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code != 0
        assert words in result.output and "Traceback" not in result.output, result.output


def test_broken_parquet_is_named_row_by_row_on_duckdb(
    toy_model_dir: Path, ri_bundle: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    canonical = tmp_path / "canonical"
    assert runner.invoke(app, ["data", "convert", "--data", str(ri_bundle),
                               "--out", str(canonical)]).exit_code == 0  # fmt: skip
    events = pd.read_parquet(canonical / "events.parquet")
    events.loc[7, "lead_id"] = "nobody"
    events.to_parquet(canonical / "events.parquet", index=False)
    result = runner.invoke(app, [*RUN, "--data", str(canonical), "--model", str(toy_model_dir),
                                 "--out", str(tmp_path / "s.parquet"), "--engine", "duckdb"])
    assert result.exit_code != 0
    assert (f"events ({canonical / 'events.parquet'}).lead_id: 1 row(s) reference an unknown "
            "lead_id (e.g. data row 8: 'nobody')") in result.output  # fmt: skip
    assert not (tmp_path / "s.parquet").exists()  # nothing half-written


# The child scores with the CLI and reports its own peak RSS: VmHWM, not ru_maxrss, which Linux
# carries over from the forking parent (pytest's own, often larger, footprint).
_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from typer.testing import CliRunner
    from leadscore.cli import app
    result = CliRunner().invoke(app, sys.argv[1:])
    assert result.exit_code == 0, result.output
    status = Path("/proc/self/status").read_text().splitlines()
    kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"peak_mib": kib / 1024}))
""")


def _peak_mib(args: list[str]) -> float:
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])


def _synthetic(out: Path, leads: int, events_per_lead: int, seed: int) -> Path:
    """A canonical Parquet directory of `leads` leads with a few text-heavy events each."""
    rng = np.random.default_rng(seed)
    created = np.datetime64("2024-03-01", "ns") + rng.integers(0, 30 * 86_400, leads) * 10**9
    lead_ids = np.char.add("lead_", np.arange(leads).astype("U"))
    n = leads * events_per_lead
    owner = np.repeat(np.arange(leads), events_per_lead)
    out.mkdir(parents=True)
    pd.DataFrame({"lead_id": lead_ids, "created_at": created,
                  "source": rng.choice(["inbound_marketing", "event"], leads)}).to_parquet(
        out / "leads.parquet", index=False)  # fmt: skip
    pd.DataFrame({
        "event_id": np.char.add("event_with_a_long_identifier_", np.arange(n).astype("U")),
        "lead_id": lead_ids[owner],
        "timestamp": created[owner] + rng.integers(0, 40 * 86_400, n) * 10**9,
        "type": rng.choice(["touch", "web_session", "sales_activity"], n),
        "subtype": rng.choice(["email", "pricing_page", "demo_page", "meeting"], n),
        "page_views": rng.integers(0, 9, n).astype("float64"),
    }).to_parquet(out / "events.parquet", index=False)  # fmt: skip
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_streamed_scoring_memory_is_bounded_by_the_chunk_not_the_data(
    toy_model_dir: Path, tmp_path: Path
) -> None:
    """The same chunk over 4x the leads: the local path's peak grows with the data, DuckDB's
    streamed scoring stays within a small margin of its peak on the small input."""
    small = _synthetic(tmp_path / "small", 20_000, 20, seed=1)
    large = _synthetic(tmp_path / "large", 80_000, 20, seed=2)

    def peak(data: Path, engine: str) -> float:
        return _peak_mib([*RUN, "--data", str(data), "--model", str(toy_model_dir), "--out",
                          str(tmp_path / f"{engine}-{data.name}.parquet"), "--engine", engine,
                          "--chunk-rows", "5000", "--memory-limit", "300MB"])  # fmt: skip

    local_small, local_large = peak(small, "local"), peak(large, "local")
    duck_small, duck_large = peak(small, "duckdb"), peak(large, "duckdb")
    peaks = {"local": (local_small, local_large), "duckdb": (duck_small, duck_large)}
    # 60k more leads (1.2M events) cost the in-memory path hundreds of MiB ...
    assert local_large - local_small > 250, peaks
    # ... and the streamed path at most a quarter of that (DuckDB's own memory is capped)
    assert duck_large - duck_small < 0.25 * (local_large - local_small), peaks
    assert len(pd.read_parquet(tmp_path / "duckdb-large.parquet")) == 80_000
