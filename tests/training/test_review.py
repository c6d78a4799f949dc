"""`leadscore review` (issue 15, must show): the pieces on constructed numbers, then the review
end to end on quarters made from one leadforge world.

The end-to-end world: a champion trained on 1,500 leads (seed 11); the next quarter is the new
leads of a 3,000-lead draw of the same world moved 91 days on. Unshifted, no feature passes PSI
0.1. Shifted on purpose (`shift_bundle`: 70% SDR outbound, every 200-499 company moved to
1000-1999) and then converting at half the rate (`subsample_bundle` to 10%: what made a good
lead no longer converts as often), the shifted features come first and the champion's
probabilities no longer mean what they did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from leadscore.features.console import CommandGroup
from leadscore.features.contract import CrmData
from leadscore.features.drift import STABLE, feature_drift
from leadscore.training.lifecycle import Comparison
from leadscore.training.review import (
    KEEP,
    PROMOTE,
    RETHRESHOLD,
    REVISE,
    DriftRow,
    Findings,
    ReviewError,
    backtest,
    check_cohort,
    criteria_shifts,
    periods,
    recommend,
)
from leadscore.training.review_cli import review as review_command
from leadscore.training.review_report import (
    ChallengerSection,
    CriteriaSection,
    Review,
    assemble,
    render_html,
)

# ---------------------------------------------------------------------------------------------
# the recommendation, branch by branch

CALM = Findings(
    champion_auc=0.74, champion_auc_trained=0.75, champion_ece=0.03, champion_ece_trained=0.03,
    broken_tiers=(), judged_tiers=4, shifted_top_features=(), changed_criteria=(),
)  # fmt: skip


def with_(base: Findings, **changes: Any) -> Findings:
    return Findings(**(base.__dict__ | changes))


def gate(passed: bool, challenger: float, champion: float, ece: float = 0.03) -> dict[str, Any]:
    return {"gate_passed": passed, "challenger_auc": challenger, "gate_champion_auc": champion,
            "challenger_ece": 0.03, "gate_champion_ece": ece}  # fmt: skip


def test_nothing_moved_keeps_the_champion() -> None:
    result = recommend(CALM)
    assert result.action == KEEP
    assert "0.740 (0.750 when trained)" in result.paragraph


def test_a_challenger_that_passes_and_ranks_better_is_promoted() -> None:
    result = recommend(with_(CALM, **gate(True, 0.78, 0.74)))
    assert result.action == PROMOTE
    assert "+0.040 ROC AUC" in result.paragraph and "the gate passes it" in result.paragraph


def test_a_challenger_better_calibrated_where_the_champion_is_not_is_promoted() -> None:
    # the same ranking (gain 0.002 < 0.01), but the champion's ECE 0.09 on the gate's rows
    assert recommend(with_(CALM, **gate(True, 0.742, 0.74, ece=0.09))).action == PROMOTE


def test_no_promotion_when_the_gate_refuses_or_the_gain_is_noise() -> None:
    assert recommend(with_(CALM, **gate(False, 0.80, 0.74))).action == KEEP
    assert recommend(with_(CALM, **gate(True, 0.745, 0.74))).action == KEEP  # +0.005 < 0.01


def test_probabilities_that_no_longer_hold_re_threshold() -> None:
    worse = with_(CALM, champion_ece=0.09, champion_ece_trained=0.03)
    assert recommend(worse).action == RETHRESHOLD
    # past the limit but no worse than when trained (0.06 + 0.02 > 0.07): not a change
    assert recommend(with_(CALM, champion_ece=0.07, champion_ece_trained=0.06)).action == KEEP
    broken = with_(CALM, broken_tiers=("A", "B", "C"), judged_tiers=4)
    assert recommend(broken).action == RETHRESHOLD
    assert "tier(s) A, B, C" in recommend(broken).paragraph
    assert recommend(with_(CALM, broken_tiers=("D",))).action == KEEP  # one tier of four


def test_criteria_whose_separation_changed_are_revised() -> None:
    result = recommend(with_(CALM, changed_criteria=("budget",)))
    assert result.action == REVISE and "budget" in result.paragraph
    # a broken model comes first
    both = with_(CALM, changed_criteria=("budget",), champion_ece=0.2)
    assert recommend(both).action == RETHRESHOLD


# ---------------------------------------------------------------------------------------------
# the pieces


def crm_of(created: list[str], observation_end: str) -> CrmData:
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(len(created))],
                          "created_at": pd.to_datetime(created)})  # fmt: skip
    empty = pd.DataFrame()
    return CrmData(empty, empty, leads, empty, empty, pd.Timestamp(observation_end), True, "t")


WINDOW = {"created_from": "2024-01-01", "created_to": "2024-01-31 23:00"}


def test_periods_split_window_newest_quarter_and_final_cohort() -> None:
    jan = ["2024-01-05", "2024-01-20"]
    later = ["2024-02-10", "2024-04-01", "2024-04-20", "2024-05-20"]
    data = crm_of(jan + later, "2024-06-30")
    split = periods(data, data, WINDOW, horizon_days=60, age_days=30)
    assert list(split.reference) == ["L0", "L1"]
    # seen at 30 days by 06-30: created by 05-31; the newest quarter: after 05-20 - 91 days
    assert list(split.current) == ["L3", "L4", "L5"]
    # final labels: created by 05-01 (06-30 - 60 days); the newest quarter of those
    assert list(split.cohort) == ["L2", "L3", "L4"]
    check_cohort(split, data, 60)


def test_a_review_without_final_labels_or_the_window_says_what_is_missing() -> None:
    data = crm_of(["2024-01-05", "2024-04-01"], "2024-05-15")
    split = periods(data, data, WINDOW, horizon_days=90, age_days=30)
    missing = r"no lead created after the champion's training window has a final label"
    with pytest.raises(ReviewError, match=missing + r".*90 days.*2024-05-15"):
        check_cohort(split, data, 90)
    newer = crm_of(["2024-04-01"], "2024-08-01")
    with pytest.raises(ReviewError, match=r"training window \(2024-01-01..2024-01-31\).*"
                                          "--reference PATH"):  # fmt: skip
        periods(newer, newer, WINDOW, horizon_days=90, age_days=30)
    # the same leads moved a quarter on (a shift of the training bundle) are not new leads
    before = crm_of(["2024-01-05", "2024-01-20"], "2024-04-30")
    moved = crm_of(["2024-04-05", "2024-04-20"], "2024-07-30")
    with pytest.raises(ReviewError, match="the window's own leads moved in time"):
        periods(before, moved, WINDOW, horizon_days=90, age_days=30)


class _StubScorer:
    """Scores each row with its own `p`: A above 0.45 (the MQLs), D below."""

    def score_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        p = rows["p"].to_numpy()
        return pd.DataFrame({"mql_probability": p, "is_mql": p > 0.45,
                             "tier": np.where(p > 0.45, "A", "D")})  # fmt: skip


def test_backtest_holds_each_tier_to_its_promise() -> None:
    # A: 40 leads promised 50%, 20 convert (kept); D: 60 leads promised 30%, 6 convert (10%,
    # Wilson 95% interval 4.7%-20.1%: missed)
    rows = pd.DataFrame({"p": [0.5] * 40 + [0.3] * 60,
                         "label": [1] * 20 + [0] * 20 + [1] * 6 + [0] * 54})  # fmt: skip
    bt = backtest(_StubScorer(), rows)  # type: ignore[arg-type]
    a, d = bt.tiers
    assert (a.tier, a.leads, a.promised, a.observed, a.kept) == ("A", 40, 0.5, 0.5, True)
    assert (d.tier, d.leads, d.kept) == ("D", 60, False)
    assert (d.promised, d.observed) == (pytest.approx(0.3), pytest.approx(0.1))
    assert d.ci_low == pytest.approx(0.0466, abs=1e-3) and d.ci_high == pytest.approx(0.201, 1e-2)
    assert [t.tier for t in bt.broken_tiers] == ["D"]
    assert bt.metrics["positive_rate"] == pytest.approx(0.26)
    assert sum(n for _, _, n in bt.curve) == 100


def _report(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"item": i, "status": s, "leads": n, "converted": k} for i, s, n, k in rows]
    )


def test_a_criterion_whose_separation_moved_beyond_noise_is_changed() -> None:
    before = _report([("fit", "pass", 100, 50), ("fit", "fail", 100, 10),
                      ("size", "pass", 100, 30), ("size", "fail", 100, 20),
                      ("verdict", "sql_ready", 100, 40)])  # fmt: skip
    after = _report([("fit", "pass", 100, 20), ("fit", "fail", 100, 10),
                     ("size", "pass", 100, 30), ("size", "fail", 100, 20),
                     ("verdict", "sql_ready", 100, 40)])  # fmt: skip
    fit, size = criteria_shifts(before, after)
    # separation 0.4 -> 0.1; variances .25/100 + .09/100 and .16/100 + .09/100
    assert (fit.criterion, fit.before, fit.after) == ("fit", pytest.approx(0.4), pytest.approx(0.1))
    assert fit.z == pytest.approx(-0.3 / math.sqrt(0.0059)) and fit.changed
    assert (size.z, size.changed) == (0.0, False)


# ---------------------------------------------------------------------------------------------
# the page and the JSON, from constructed sections (no model)


def constructed_review() -> Review:
    """A review with every section, built from fixed numbers (the browser test reuses it)."""
    from tests.serving.test_report import OUTCOMES, SCENARIO, report_of

    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    drift = [
        DriftRow(feature_drift("employee_band", ref, pd.Series(["a"] * 10 + ["c"] * 90),
                               "category"), None),
        DriftRow(feature_drift("lead_source", ref, pd.Series(["a"] * 90 + ["b"] * 10),
                               "category"), 2),
        DriftRow(feature_drift("page_views", pd.Series(np.arange(100.0)),
                               pd.Series(np.arange(100.0)), "number"), 1),
    ]  # fmt: skip
    rows = pd.DataFrame({"p": [0.5] * 40 + [0.3] * 60,
                         "label": [1] * 20 + [0] * 20 + [1] * 6 + [0] * 54})  # fmt: skip
    challenger = {"roc_auc": 0.71, "brier": 0.15, "ece": 0.03, "pr_auc": 0.4, "n": 300.0}
    champion = {"roc_auc": 0.66, "brier": 0.17, "ece": 0.09, "pr_auc": 0.3, "n": 300.0}
    comparison = Comparison("2", "1", "the newest 20% of leads", challenger, champion, True, [])
    return assemble(
        champion={"uri": "models:/lead-scoring@champion", "model_name": "lead-scoring",
                  "version": "1", "trained_at": "2024-02-01T00:00:00+00:00",
                  "data_window": WINDOW, "reference_age": 30.0, "target": "won",
                  "horizon_days": 90.0},
        data={"reference_source": "q1", "source": "q2", "reference_window": ["2024-01-01",
              "2024-01-31"], "reference_leads": 100, "current_window": ["2024-04-01",
              "2024-04-30"], "current_leads": 100, "cohort_window": ["2024-04-01",
              "2024-04-30"], "cohort_leads": 100},
        drift=drift, backtest=backtest(_StubScorer(), rows),  # type: ignore[arg-type]
        trained_metrics={"test_roc_auc": 0.75, "test_ece": 0.03, "test_brier": 0.16},
        criteria=CriteriaSection("sql_criteria.yaml", "2024.1", [{"item": "fit", "status": "pass",
                                 "leads": 100, "converted": 20, "rate": 0.2, "lift": 1.3}],
                                 criteria_shifts(_report([("fit", "pass", 100, 50),
                                                          ("fit", "fail", 100, 10)]),
                                                 _report([("fit", "pass", 100, 20),
                                                          ("fit", "fail", 100, 10)]))),
        handoff=report_of(SCENARIO, OUTCOMES),
        challenger=ChallengerSection("2", "run-2", {"test_roc_auc": 0.71}, comparison),
        notes=["a note <b>escaped</b>"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def made() -> Review:
    return constructed_review()


def test_the_constructed_review_recommends_from_its_sections(made: Review) -> None:
    # the challenger passed the gate and ranks +0.05: promote
    assert made.recommendation.action == PROMOTE
    found = made.findings()
    assert found.shifted_top_features == ("lead_source",)  # employee_band is not a top feature
    assert found.changed_criteria == ("fit",) and found.broken_tiers == ("D",)


def test_the_json_is_strict_and_says_what_the_page_says(made: Review) -> None:
    data = json.loads(json.dumps(made.to_dict(), allow_nan=False))
    assert data["headline"]["action"] == PROMOTE
    assert [d["feature"] for d in data["drift"]] == ["employee_band", "lead_source", "page_views"]
    assert data["drift"][0]["new_values"] == ["c"] and data["drift"][0]["vanished_values"] == ["b"]
    assert data["challenger"]["gate"]["passed"] is True
    assert data["handoff"]["handoffs"] == 12  # the scenario of tests/serving/test_report.py
    html = render_html(made)
    assert f'<div class="action" id="action">{PROMOTE}</div>' in html
    assert "a note &lt;b&gt;escaped&lt;/b&gt;" in html
    # self-contained: nothing but inline images is referenced
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count('src="data:image/png;base64,') == 3


# ---------------------------------------------------------------------------------------------
# the command's errors: one line naming what is missing

app = typer.Typer(cls=CommandGroup)
app.command("review")(review_command)
app.command("noop")(lambda: None)  # two commands: `review` stays a sub-command
runner = CliRunner()


def test_an_unreadable_path_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["review", "--data", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "nope: no such file or directory" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# end to end on one world's quarters (slow: two bundles, two trainings)

SEED, FIRST, BOTH = 11, 1500, 3000  # leadforge repeats the first leads of a seed at a larger size
SOURCE_MIX = {"sdr_outbound": 0.7, "inbound_marketing": 0.2, "partner_referral": 0.1}
BANDS = {"employee_band": {"200-499": "1000-1999"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The quarters, a tracking store and a champion trained on the first quarter."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source
    from leadscore.features.sources.quarters import shift_bundle, subsample_bundle
    from leadscore.training.config import load_training_config
    from leadscore.training.train import train_model
    from tests.conftest import _generate

    root = tmp_path_factory.mktemp("quarters")
    first = _generate(root / "first", "research_instructor", SEED, FIRST)
    both = _generate(root / "both", "research_instructor", SEED, BOTH)
    shift_bundle(both, root / "next", days=91, seed=2)
    shift_bundle(both, root / "shifted", days=91, seed=2, source_mix=SOURCE_MIX,
                 band_shift=BANDS)  # fmt: skip
    subsample_bundle(root / "shifted", root / "drifted", base_rate=0.10, seed=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)  # no handoff store here: the handoff section is skipped
        config = load_feature_config()
        result = train_model(load_source(first, config), config, load_training_config(),
                             experiment="review", progress=lambda _: None)  # fmt: skip
        yield {"root": root, "first": first, "next": root / "next", "drifted": root / "drifted",
               "champion": result}  # fmt: skip


def _review(world: dict[str, Any], name: str, *extra: str) -> dict[str, Any]:
    out = world["root"] / f"{name}.json"
    html = world["root"] / f"{name}.html"
    result = runner.invoke(app, ["review", "--data", str(world[name]), "--reference",
                                 str(world["first"]), "--json", str(out), "--html", str(html),
                                 *extra])  # fmt: skip
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["headline"]["action"] in html.read_text()
    return data


@pytest.fixture(scope="module")
def unshifted(world: dict[str, Any]) -> dict[str, Any]:
    return _review(world, "next", "--no-challenger")


@pytest.fixture(scope="module")
def drifted(world: dict[str, Any]) -> dict[str, Any]:
    return _review(world, "drifted")


@pytest.mark.slow
def test_an_unshifted_next_quarter_passes_no_feature_over_0_1(unshifted: dict[str, Any]) -> None:
    assert unshifted["data"]["current_leads"] == BOTH - FIRST  # only the new leads
    assert unshifted["data"]["reference_leads"] == FIRST
    assert max(d["psi"] for d in unshifted["drift"]) < STABLE, unshifted["drift"][:3]
    assert unshifted["findings"]["shifted_top_features"] == []
    assert unshifted["challenger"] is None


@pytest.mark.slow
def test_a_shifted_quarter_ranks_the_shifted_features_first_and_breaks_calibration(
    drifted: dict[str, Any], unshifted: dict[str, Any]
) -> None:
    assert {d["feature"] for d in drifted["drift"][:2]} == {"lead_source", "employee_band"}
    assert all(d["verdict"] == "shifted" for d in drifted["drift"][:2])
    band = next(d for d in drifted["drift"] if d["feature"] == "employee_band")
    assert band["vanished_values"] == ["200-499"]
    # the leads convert at 10% while the champion still promises its first quarter's rates
    now, before = drifted["backtest"]["metrics"], unshifted["backtest"]["metrics"]
    assert now["positive_rate"] < 0.12 < before["positive_rate"]
    assert now["ece"] > before["ece"] + 0.04, (now["ece"], before["ece"])
    curve = drifted["backtest"]["calibration_curve"]
    assert sum(b["predicted"] > b["observed"] for b in curve) >= 8  # over-promised nearly
    assert any(not t["kept"] for t in drifted["backtest"]["tiers"])
    assert drifted["headline"]["action"] in (PROMOTE, RETHRESHOLD)


@pytest.mark.slow
def test_the_challenger_is_registered_gated_and_carries_the_review(
    world: dict[str, Any], drifted: dict[str, Any]
) -> None:
    import mlflow
    from mlflow import MlflowClient

    challenger = drifted["challenger"]
    gate = challenger["gate"]
    assert (gate["candidate"], gate["champion"]) == (challenger["version"], "1")
    assert gate["candidate_metrics"]["n"] == gate["champion_metrics"]["n"]  # the same rows
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{world['root'] / 'mlflow.db'}")
        mlflow.set_tracking_uri(f"sqlite:///{world['root'] / 'mlflow.db'}")
        client = MlflowClient()
        champion = client.get_model_version_by_alias("lead-scoring", "champion")
        assert str(champion.version) == "1"  # reviewed, not promoted
        run = client.get_run(challenger["run_id"])
        listed = {f.path for f in client.list_artifacts(run.info.run_id, "review")}
        logged = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/review/"
                                                       "review.json"))  # fmt: skip
    assert listed == {"review/review.html", "review/review.json"}
    assert run.data.tags["leadscore.review.action"] == drifted["headline"]["action"]
    assert logged["headline"] == drifted["headline"]


@pytest.mark.slow
def test_no_champion_is_one_line(world: dict[str, Any]) -> None:
    result = runner.invoke(app, ["review", "--data", str(world["next"]), "--champion",
                                 "models:/no-such-model@champion"])  # fmt: skip
    assert result.exit_code != 0
    last = result.output.strip().splitlines()[-1]  # after the progress lines
    assert "no model at models:/no-such-model@champion" in last
    assert "Traceback" not in result.output
