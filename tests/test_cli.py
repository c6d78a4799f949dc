"""The console script end to end: generate a world, build a snapshot, fail cleanly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_generate_then_build(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    result = runner.invoke(app, ["data", "generate", "--leads", "150", "--seed", "3",
                                 "--out", str(bundle)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (bundle / "manifest.json").is_file()
    out = tmp_path / "snap.parquet"
    result = runner.invoke(app, ["features", "build", "--data", str(bundle), "--as-of-days", "14",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(out)
    assert len(rows) == 150
    assert (rows["lead_age_days"] == 14.0).all()
    assert "positives" in result.output
    assert "scoring cases (won within 90 d)" in result.output


def test_fixed_moment_leaves_out_leads_not_yet_created(tmp_path: Path) -> None:
    from tests.conftest import tiny_tables

    for name, frame in tiny_tables().items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "snap.parquet"
    result = runner.invoke(app, ["features", "build", "--data", str(tmp_path),
                                 "--as-of", "2024-01-06", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    # a date alone is the end of that day
    assert "1 lead(s) created after 2024-01-06 23:59:59.999999 left out" in result.output
    assert pd.read_parquet(out)["lead_id"].tolist() == ["l1", "l2"]


def test_bad_input_exits_with_the_contract_message(tmp_path: Path) -> None:
    from tests.conftest import tiny_tables

    tables = tiny_tables()
    tables["events"].loc[0, "timestamp"] = "someday"
    for name, frame in tables.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "x.parquet"
    args = ["features", "build", "--data", str(tmp_path), "--as-of-days", "7", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "error: events (" in result.output and "unparseable timestamp" in result.output
    assert not out.exists()


def test_as_of_options_are_exclusive(tmp_path: Path) -> None:
    result = runner.invoke(app, ["features", "build", "--data", str(tmp_path),
                                 "--out", str(tmp_path / "x.parquet")])  # fmt: skip
    assert result.exit_code == 2
    assert "exactly one of --as-of-days" in result.output
