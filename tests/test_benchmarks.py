"""The benchmarks keep working: their smoke runs pass and their agreement checks hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_snapshot_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "snapshot.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_snapshot.py"), "--smoke",
         "--json-out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert "outputs agree" in run.stdout
    assert result["agree"] is True and not result["problems"]
