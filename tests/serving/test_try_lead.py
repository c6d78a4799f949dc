"""`leadscore data lead` writes an API body; `leadscore try-lead` scores it over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.config import load_feature_config
from leadscore.features.payload import payload_model
from tests.serving.conftest import tracking_restored

runner = CliRunner()


@pytest.mark.slow
def test_export_a_lead_then_score_it_over_http(trained: dict[str, Any], tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    exported = runner.invoke(app, ["data", "lead", "--data", str(trained["bundle"]),
                                   "--lead-id", "lead_000042", "--as-of-days", "14",
                                   "--out", str(lead)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    body = json.loads(lead.read_text())
    assert body["lead"]["lead_id"] == "lead_000042"
    assert all(e["timestamp"] <= body["as_of"] for e in body["events"])
    payload_model(load_feature_config()).model_validate(body)  # the contract accepts it

    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained["uri"])
        mp.chdir(trained["home"])
        result = runner.invoke(app, ["try-lead", "--lead", str(lead)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["lead_id"] == "lead_000042"
    assert answer["lead_age_days"] == 14.0
    assert answer["reasons"]["positive"] or answer["reasons"]["negative"]


def test_unknown_lead_is_a_clean_error(tmp_path: Path) -> None:
    from tests.conftest import tiny_tables

    for name, frame in tiny_tables().items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    result = runner.invoke(app, ["data", "lead", "--data", str(tmp_path), "--lead-id", "nope"])
    assert result.exit_code == 2
    assert "no lead 'nope'" in result.output
