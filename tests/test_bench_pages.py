"""The lead-card benchmark keeps working, and its checks can fail.

Fast tests feed the card check of benchmarks/bench_pages.py made-up responses; the slow one runs
the script's smoke mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.test_benchmarks import BENCHMARKS, ROOT, bench_module

SCRIPT = BENCHMARKS / "bench_pages.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/bench_pages.py, imported as a module."""
    return bench_module("bench_pages")


def _page(status: int, text: str) -> httpx.Response:
    return httpx.Response(status, text=text)


def test_card_check_wants_the_lead_and_its_top_reason(bench: ModuleType) -> None:
    sentence = "Viewed the pricing page 4 times & booked a demo"
    good = f"<h1>{bench.LEAD_ID}</h1><li class='reason'>Viewed the pricing page 4 times &amp; "
    good += "booked a demo</li>"  # the sentence as Jinja2 escapes it
    assert bench.card_problems(_page(200, good), sentence) == []
    (missing,) = bench.card_problems(_page(200, good), "Agreed to 2 meetings")
    assert "top reason 'Agreed to 2 meetings' is not on the page" in missing
    (unnamed,) = bench.card_problems(_page(200, good.replace(bench.LEAD_ID, "x")), sentence)
    assert f"does not name the lead {bench.LEAD_ID!r}" in unnamed
    (status,) = bench.card_problems(_page(404, "no such lead"), sentence)
    assert status.startswith("card: HTTP 404")


def test_top_reason_is_the_first_positive_else_the_first_negative(bench: ModuleType) -> None:
    score = {"reasons": {"positive": [{"sentence": "up"}, {"sentence": "up 2"}],
                         "negative": [{"sentence": "down"}]}}  # fmt: skip
    assert bench.top_reason(score) == "up"
    score["reasons"]["positive"] = []
    assert bench.top_reason(score) == "down"


def test_ratios_are_the_card_over_each_reference(bench: ModuleType) -> None:
    result = {"card": {"p50_ms": 3.0, "p99_ms": 9.0},
              "score_explain": {"p50_ms": 2.0, "p99_ms": 3.0},
              "score_next_steps": {"p50_ms": 6.0, "p99_ms": 18.0}}  # fmt: skip
    assert bench.ratios_of(result) == {
        "card_p50_over_score_explain": 1.5, "card_p99_over_score_explain": 3.0,
        "card_p50_over_score_next_steps": 0.5, "card_p99_over_score_next_steps": 0.5,
    }  # fmt: skip


@pytest.mark.slow
def test_pages_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "pages.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json-out", str(out), "--work",
         str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checks pass" in run.stdout
    result = json.loads(out.read_text())
    assert result["agree"] is True and result["problems"] == []
    assert result["lead"]["events"] >= 15  # the synthetic example: about 20 events
    for name in ("card", "score_explain", "score_next_steps"):
        assert result[name]["requests"] == 30  # smoke: 30 timed after 5 warm-up
        assert 0 < result[name]["p50_ms"] <= result[name]["p99_ms"]
    for measure in ("p50", "p99"):
        for reference in ("score_explain", "score_next_steps"):
            assert result["ratios"][f"card_{measure}_over_{reference}"] > 0
    assert result["target"]["card_p99_ms"] == 50
    assert result["target"]["met"] == (result["card"]["p99_ms"] < 50)
