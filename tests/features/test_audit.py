"""The leakage audit: each blocking rule catches what it names and lets honest columns through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.features.audit import audit_columns, audit_source
from leadscore.features.config import load_feature_config
from leadscore.features.sources import load_data, load_source
from leadscore.features.sources.flat import (
    ColumnRole,
    FlatMap,
    draft_map,
    load_flat,
    write_flat,
)
from tests.conftest import _generate

N = 2000


def _population(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=N) < 0.25
    noisy = np.where(rng.uniform(size=N) < 0.05, ~y, y)  # a rep's grade: the outcome, 5% wrong
    won = pd.Series(pd.Timestamp("2024-03-01"), index=range(N)).where(y)
    frame = pd.DataFrame({
        "honest": rng.normal(size=N) + 0.3 * y,  # a real, weak signal
        "grade": np.where(noisy, "A", "C"),
        "region": rng.choice(["US", "UK"], N),
        "closed_reason": np.where(y, "signed", rng.choice(["price", "timing", "none"], N)),
        "budget": np.where(y | (rng.uniform(size=N) < 0.2), rng.normal(50, 5, N), np.nan),
        "last_activity": np.where(y, "2024-03-05", "2024-02-01"),  # after the outcome
    })  # fmt: skip
    return frame, y, won


def _audit(allow: tuple[str, ...] = ()) -> dict[str, object]:
    frame, y, won = _population()
    columns = [
        ("honest", "Honest", "number"), ("grade", "Grade", "category"),
        ("region", "Region", "category"), ("closed_reason", "Closed Reason", "category"),
        ("budget", "Budget", "number"), ("last_activity", "Last Activity", "category"),
    ]  # fmt: skip
    report = audit_columns(frame, y, columns, won, allow)
    return {c.column: c for c in report.columns}


def test_each_rule_blocks_what_it_names() -> None:
    audits = _audit()
    assert audits["Honest"].verdict == "ok" and audits["Region"].verdict == "ok"
    grade = audits["Grade"]
    assert grade.verdict == "blocked" and grade.auc >= 0.85
    assert any("CV ROC AUC" in b for b in grade.blocked)
    reason = audits["Closed Reason"]
    assert any("near-pure value 'signed'" in b for b in reason.blocked)
    assert "its name suggests a field filled in after the fact" in reason.warnings
    assert any("whether it is missing predicts the label" in b for b in audits["Budget"].blocked)
    assert any("dated after the outcome" in b for b in audits["Last Activity"].blocked)


def test_a_person_may_keep_a_blocked_column_but_never_current_state() -> None:
    audits = _audit(allow=("Grade",))
    assert audits["Grade"].verdict == "kept"
    frame, y, won = _population()
    frame["stage"] = np.where(y, "closed_won", "open")
    (stage,) = audit_columns(frame, y, [("stage", "stage", "category")], won, ("stage",)).columns
    assert stage.verdict == "blocked" and "current state by name" in stage.blocked[0]


@pytest.mark.slow
def test_the_planted_sales_columns_of_a_flat_export_are_blocked(tmp_path: Path) -> None:
    bundle = _generate(tmp_path / "world", "research_instructor", seed=21, leads=1500)
    flat = write_flat(load_source(bundle), tmp_path / "leads.csv")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(draft_map(flat, "Converted", ["Yes"], "Created On"))
    crm, config = load_data(flat, mapping)
    report = audit_source(crm, config)
    blocked = {c.column for c in report.refused()}
    assert blocked == {"Sales Notes", "Lead Quality"}, report.rows()


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "difficulty"), [(31, "intro"), (32, "intermediate"),
                                                  (33, "advanced")])  # fmt: skip
def test_leadforge_leakage_risk_columns_and_no_others(
    tmp_path: Path, seed: int, difficulty: str
) -> None:
    from leadforge.api import Generator

    bundle = tmp_path / "world"
    Generator.from_recipe("b2b_saas_procurement_v1", seed=seed,
                          exposure_mode="research_instructor").generate(
        n_leads=1500, difficulty=difficulty).save(str(bundle))  # fmt: skip
    task = bundle / "tasks" / "converted_within_90_days"
    table = pd.concat([pd.read_parquet(task / f"{s}.parquet") for s in ("train", "valid", "test")])
    flat = tmp_path / "task.csv"
    table.to_csv(flat, index=False)
    dictionary = pd.read_csv(bundle / "feature_dictionary.csv")
    label = "converted_within_90_days"
    columns: dict[str, ColumnRole] = {
        "lead_id": ColumnRole(role="id"), label: ColumnRole(role="label", positive=("True",)),
    }  # fmt: skip
    for column in table.columns:
        if column not in columns:
            ignore = column.endswith("_id") or column.endswith("_at")
            columns[column] = ColumnRole(role="ignore" if ignore else "fit")
    crm, config = load_flat(flat, FlatMap(columns=columns), load_feature_config())
    report = audit_source(crm, config)
    audited = {c.column for c in report.columns}
    blocked = {c.column for c in report.refused()}
    risky = set(dictionary.loc[dictionary["leakage_risk"], "name"]) & audited
    safe = set(dictionary.loc[~dictionary["leakage_risk"], "name"]) & audited
    assert risky and risky <= blocked, report.rows()
    assert not blocked & safe, report.rows()
