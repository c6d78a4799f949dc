"""`train --exclude-feedback`: leads the reps rejected as never real prospects (duplicates,
junk data) are in no slice of the training set, and how many is reported and logged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.feedback import load_feedback, load_handoff_config, training_exclusions
from leadscore.features.sources import load_source
from leadscore.features.spec import build_spec
from leadscore.training.cli import _exclusion
from leadscore.training.config import TrainingConfig
from leadscore.training.data import SPLITS, LeadExclusion, TrainingSet, build_training_set
from tests.serving.conftest import tracking_restored

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "small_crm"
CFG = TrainingConfig(min_train_positives=5, snapshot_ages=(7,), reference_age=7)
runner = CliRunner()


@pytest.fixture(scope="module")
def crm(config: FeatureConfig) -> CrmData:
    """The committed small canonical CRM (600 leads, dated outcomes)."""
    return load_source(FIXTURE, config)


@pytest.fixture(scope="module")
def baseline(crm: CrmData, config: FeatureConfig) -> TrainingSet:
    """The training set without any verdict."""
    return build_training_set(crm, build_spec(config), CFG)


def _first_of_each_split(ts: TrainingSet) -> dict[str, str]:
    return {name: str(ts.part(name)["lead_id"].iloc[0]) for name in SPLITS}


def _feedback(tmp_path: Path, picks: dict[str, str]) -> Path:
    # train and stop: duplicates; calib: junk data; test: no budget (a real prospect, kept)
    rows = [
        f"{picks['train']},rejected,duplicate", f"{picks['stop']},rejected,duplicate",
        f"{picks['calib']},rejected,bad_data", f"{picks['test']},rejected,no_budget",
        "ghost-lead,rejected,duplicate", "another-ghost,accepted,",
    ]  # fmt: skip
    path = tmp_path / "feedback.csv"
    path.write_text("lead_id,disposition,reason\n" + "\n".join(rows) + "\n")
    return path


def test_excluded_leads_are_in_no_slice_and_counted(
    crm: CrmData, config: FeatureConfig, baseline: TrainingSet, tmp_path: Path
) -> None:
    picks = _first_of_each_split(baseline)
    taxonomy = load_handoff_config()
    verdicts = load_feedback(_feedback(tmp_path, picks), taxonomy)
    exclusion = LeadExclusion(
        training_exclusions(verdicts, taxonomy.excluded_from_training),
        taxonomy.excluded_from_training,
    )
    ts = build_training_set(crm, build_spec(config), CFG, exclude=exclusion)
    gone = {picks["train"], picks["stop"], picks["calib"]}
    for name in SPLITS:
        assert not gone & set(ts.part(name)["lead_id"]), name
    assert picks["test"] in set(ts.rows["lead_id"])  # rejected for no_budget: still a prospect
    assert ts.excluded_leads is not None
    assert ts.excluded_leads.by_reason == {"bad_data": 1, "duplicate": 2}
    assert (ts.excluded_leads.leads, ts.excluded_leads.not_in_data) == (3, 1)  # ghost-lead
    assert ts.excluded_leads.summary() == (
        "3 lead(s) left out by the reps' verdicts (bad_data: 1, duplicate: 2); 1 rejected "
        "lead(s) of the feedback are not in the data"
    )
    # one snapshot age: each lead is one row, so exactly their three rows are gone
    assert len(ts.rows) == len(baseline.rows) - 3
    assert ts.fingerprint["leads"] == len(crm.leads) - 3
    assert baseline.excluded_leads is None


def test_exclusion_of_leads_the_data_lacks_changes_nothing(
    crm: CrmData, config: FeatureConfig, baseline: TrainingSet
) -> None:
    exclusion = LeadExclusion({"x1": "duplicate", "x2": "bad_data"}, ("bad_data", "duplicate"))
    ts = build_training_set(crm, build_spec(config), CFG, exclude=exclusion)
    assert ts.excluded_leads is not None
    assert ts.excluded_leads.by_reason == {"bad_data": 0, "duplicate": 0}
    assert ts.excluded_leads.not_in_data == 2
    pd.testing.assert_frame_equal(ts.rows, baseline.rows)


def test_exclude_reason_overrides_the_taxonomy(tmp_path: Path) -> None:
    path = _feedback(tmp_path, {"train": "a", "stop": "b", "calib": "c", "test": "d"})
    default = _exclusion(path, None)
    assert default is not None
    assert set(default.reasons) == {"bad_data", "duplicate"}
    assert dict(default.leads) == {"a": "duplicate", "b": "duplicate", "c": "bad_data",
                                   "ghost-lead": "duplicate"}  # fmt: skip
    chosen = _exclusion(path, ["no_budget", "no_budget"])
    assert chosen is not None
    assert (chosen.reasons, dict(chosen.leads)) == (("no_budget",), {"d": "no_budget"})
    assert _exclusion(None, None) is None


def test_the_options_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "none"),
                                 "--exclude-reason", "duplicate"])  # fmt: skip
    assert result.exit_code == 2
    assert "--exclude-reason needs --exclude-feedback FILE" in result.output
    feedback = _feedback(tmp_path, {"train": "a", "stop": "b", "calib": "c", "test": "d"})
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "none"), "--exclude-feedback",
                                 str(feedback), "--exclude-reason", "spam"])  # fmt: skip
    assert result.exit_code == 2
    assert "--exclude-reason spam: not a rejection reason of handoff.yaml; known: " \
           "unable_to_reach, bad_data" in " ".join(result.output.split())  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("lead_id,disposition,reason\nl1,rejected,spam\n")
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "none"),
                                 "--exclude-feedback", str(bad)])  # fmt: skip
    assert result.exit_code == 1
    assert f"{bad}: column reason: 1 row(s) give a reason that is not in the taxonomy" in " ".join(
        result.output.split()
    )


@pytest.mark.slow
def test_train_reports_and_logs_the_exclusion(baseline: TrainingSet, tmp_path: Path) -> None:
    import mlflow

    feedback = _feedback(tmp_path, _first_of_each_split(baseline))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(tmp_path)
        result = runner.invoke(app, ["train", "--data", str(FIXTURE), "--as-of-days", "7",
                                     "--exclude-feedback", str(feedback)])  # fmt: skip
        assert result.exit_code == 0, result.output
        mlflow.set_tracking_uri(uri)
        run = mlflow.search_runs(experiment_names=["leadscore"], output_format="list")[0]
    assert "3 lead(s) left out by the reps' verdicts (bad_data: 1, duplicate: 2)" in " ".join(
        result.output.split()
    )
    assert run.data.params["exclude_feedback_reasons"] == "bad_data,duplicate"
    metrics = run.data.metrics
    assert metrics["excluded_feedback_leads"] == 3
    assert metrics["excluded_feedback_leads__duplicate"] == 2
    assert metrics["feedback_leads_not_in_data"] == 1
