"""Training on what real teams have: a flat export (audited, not point in time) and a config
without the demo's own fields, trained, registered and served."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.configdir import packaged_config_dir
from leadscore.features.sources import load_source
from leadscore.features.sources.flat import draft_map, write_flat
from tests.conftest import _generate
from tests.serving.conftest import SCORE_KEY, ClientFactory, tracking_restored
from tests.serving.conftest import make_client as make_client  # the fixture, shared

runner = CliRunner()
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "small_crm"


def _train(home: Path, args: list[str], **env: str) -> Any:
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(home)
        return runner.invoke(app, ["train", *args])


@pytest.mark.slow
def test_a_flat_export_trains_without_its_planted_leak(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    import mlflow

    bundle = _generate(tmp_path / "world", "research_instructor", seed=23, leads=1500)
    flat = write_flat(load_source(bundle), tmp_path / "leads.csv")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(draft_map(flat, "Converted", ["Yes"], "Created On"))
    result = _train(tmp_path, ["--data", str(flat), "--map", str(mapping)])
    assert result.exit_code == 0, result.output
    assert "refused by the leakage audit, left out: Sales Notes" in result.output
    assert "SQL-criteria baseline skipped" in result.output  # the demo criteria name events
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        scored = runner.invoke(app, ["score", "--data", str(flat), "--map", str(mapping),
                                     "--out", str(tmp_path / "scores.parquet")])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    excluded = pd.read_parquet(tmp_path / "scores.excluded.parquet")
    assert len(scores) + len(excluded) == 1500 and len(scores) > 0
    assert set(excluded["reason"]) <= {"won_before_as_of"}  # converted leads are not open
    assert "caveat" in result.output and "optimistic" in result.output
    with tracking_restored():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
        run = mlflow.search_runs(experiment_names=["leadscore"], output_format="list")[0]
        assert run.data.tags["leadscore.point_in_time"] == "false"
        assert set(run.data.tags["leadscore.audit.refused"].split(",")) == {
            "sales_notes", "lead_quality"
        }
        criteria = tmp_path / "criteria.yaml"  # criteria in the flat file's own fields
        criteria.write_text("version: '1'\nowner: ops\ncriteria:\n  - {id: size, description: "
                            "Target size, group: fit, field: account.employee_band, operator: in,"
                            " values: [500-999, 1000-1999], required: true}\n")  # fmt: skip
        client = make_client(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                             criteria_file=criteria)  # fmt: skip
        client.headers["X-API-Key"] = SCORE_KEY
        info = client.get("/v1/model").json()
    names = {f["name"] for f in info["features"]}
    assert "sales_notes" not in names and "total_visits" in names
    assert info["point_in_time"] is False and info["caveats"]


@pytest.mark.slow
def test_a_config_without_the_demo_fields_trains_and_serves(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    config = tmp_path / "config"
    shutil.copytree(packaged_config_dir(), config, ignore=shutil.ignore_patterns("*.py"))
    demo = (config / "features.yaml").read_text()
    (config / "features.yaml").write_text(demo[: demo.index("custom_fields:")])  # bands only
    result = _train(tmp_path, ["--data", str(FIXTURE)], LEADSCORE_CONFIG_DIR=str(config))
    assert result.exit_code == 0, result.output
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEADSCORE_CONFIG_DIR", str(config))
        client = make_client(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        client.headers["X-API-Key"] = SCORE_KEY
        ready = client.get("/readyz").json()
        assert ready["ready"], ready
        body = client.get("/openapi.json").json()["paths"]["/v1/score"]["post"]["requestBody"]
        example = body["content"]["application/json"]["example"]
        assert "process_maturity_band" not in example["account"]
        scored = client.post("/v1/score", json=example)
    assert scored.status_code == 200, scored.text
    assert 0 <= scored.json()["mql_probability"] <= 1


@pytest.mark.slow
def test_a_salesforce_export_trains_as_its_canonical_form(tmp_path: Path) -> None:
    """The same world, once as canonical tables and once as a Salesforce export (traps and
    all): the same model quality, to within 0.005 ROC AUC."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources.canonical import write_canonical
    from leadscore.features.sources.salesforce import write_salesforce
    from leadscore.features.spec import build_spec
    from leadscore.training.config import load_training_config
    from leadscore.training.data import build_training_set
    from leadscore.training.train import evaluate_test, fit_scorer

    config, cfg = load_feature_config(), load_training_config()
    world = load_source(_generate(tmp_path / "world", "research_instructor", seed=29,
                                  leads=2000))  # fmt: skip
    write_canonical(world, tmp_path / "canonical")
    write_salesforce(world, tmp_path / "salesforce", config)
    aucs = {}
    for form in ("canonical", "salesforce"):
        crm = load_source(tmp_path / form, config)
        ts = build_training_set(crm, build_spec(config), cfg)
        fitted = fit_scorer(ts, config, cfg, progress=lambda _: None)
        metrics, _ = evaluate_test(fitted.scorer, ts.part("test"), fitted.logreg,
                                   fitted.reference_age)  # fmt: skip
        aucs[form] = metrics["test_roc_auc"]
    assert abs(aucs["salesforce"] - aucs["canonical"]) <= 0.005, aucs
