"""Flat lead files: a mapping of column roles, drafted for a person, read into the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.features.config import FeatureConfig
from leadscore.features.schema import DataContractError
from leadscore.features.sources import load_data, load_source
from leadscore.features.sources.flat import FlatMap, draft_map, load_flat
from leadscore.features.spec import build_spec
from leadscore.features.yamlfile import ConfigError

ROWS = [
    # id, created, source, country, visits, notes, grade, converted on
    ("L-001", "2024-01-03", "Google", "US", "12", "Budget approved", "A", "2024-02-01"),
    ("L-002", "2024-01-04 09:30", "Referral", "UK", "0", "No budget", "C", ""),
    ("L-003", "2024-01-05", "Select", "N/A", "3", "-", "B", ""),
    ("L-004", "2024-01-09", "Google", "US", "7", "Call back", "B", "2024-01-20"),
]


def _file(tmp_path: Path, sep: str = ",") -> Path:
    columns = ["Lead ID", "Created", "Lead Source", "Country", "Total Visits", "Sales Notes",
               "Grade", "Converted On"]
    frame = pd.DataFrame(ROWS, columns=columns)
    frame["Free Text"] = ["a", "b", "c", "d"]
    path = tmp_path / "leads.csv"
    frame.to_csv(path, index=False, sep=sep)
    return path


def _mapping(**changes: dict[str, object]) -> FlatMap:
    columns: dict[str, dict[str, object]] = {
        "Lead ID": {"role": "id"},
        "Created": {"role": "created_at"},
        "Lead Source": {"role": "source"},
        "Country": {"role": "fit", "entity": "account", "name": "region"},
        "Total Visits": {"role": "engagement", "type": "number"},
        "Sales Notes": {"role": "sales_entered"},
        "Grade": {"role": "ignore"},
        "Converted On": {"role": "label", "dated": True},
    }
    columns.update(changes)
    return FlatMap.model_validate({"columns": columns, "observation_end": "2024-06-30"})


def test_roles_become_canonical_tables_and_the_models_own_fields(
    tmp_path: Path, config: FeatureConfig
) -> None:
    crm, flat_config = load_flat(_file(tmp_path, ";"), _mapping(), config)
    leads = crm.leads.set_index("lead_id")
    assert list(leads.index) == ["L-001", "L-002", "L-003", "L-004"]
    assert str(leads.loc["L-001", "created_at"]) == "2024-01-03 23:59:59.999999"  # a date alone
    assert str(leads.loc["L-002", "created_at"]) == "2024-01-04 09:30:00"
    assert leads.loc["L-003", "source"] is pd.NA or pd.isna(leads.loc["L-003", "source"])
    regions = crm.accounts.set_index("account_id")["region"]
    assert regions.loc["a:L-001"] == "US" and pd.isna(regions.loc["a:L-003"])  # N/A is empty
    won = crm.outcomes.set_index("lead_id")["won_at"]
    assert str(won["L-001"]) == "2024-02-01 23:59:59.999999" and pd.isna(won["L-002"])
    # the mapped columns are the model's fields; events-based built-ins are left out
    names = build_spec(flat_config).names
    assert "total_visits" in names and "sales_notes" in names and "region" in names
    assert "touches" not in names and "grade" not in names
    assert any("Free Text" in n for n in crm.notes)  # never ignored in silence
    assert any("Total Visits" in c for c in crm.caveats)  # totals as of the export


def test_label_by_positive_values_and_an_undated_file(
    tmp_path: Path, config: FeatureConfig
) -> None:
    label = {"role": "label", "positive": ["2024-02-01"]}
    mapping = _mapping(**{"Created": {"role": "ignore"}, "Converted On": label})
    crm, _ = load_flat(_file(tmp_path), mapping, config)
    created = crm.leads["created_at"].tolist()
    assert created == sorted(created)  # undated: the rows' order stands for time
    won = crm.outcomes["won_at"].notna().tolist()
    assert won == [True, False, False, False]
    assert crm.snapshot_ages == (0.0,) and not crm.outcome_moments_real
    assert any("undated" in c for c in crm.caveats)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Nope": {"role": "fit"}}, "names column(s) ['Nope'] the file does not have"),
        ({"Converted On": {"role": "label", "positive": ["yes"]}}, "no row holds a positive value"),
    ],
)
def test_bad_mappings_name_the_column(
    tmp_path: Path, config: FeatureConfig, change: dict[str, object], message: str
) -> None:
    with pytest.raises(DataContractError, match=re.escape(message)):
        load_flat(_file(tmp_path), _mapping(**change), config)


def test_a_mapping_file_is_checked_with_line_numbers(tmp_path: Path) -> None:
    from leadscore.features.sources.flat import load_map

    bad = tmp_path / "map.yaml"
    bad.write_text("columns:\n  Lead ID: {role: id}\n  Created: {role: birthday}\n")
    with pytest.raises(ConfigError) as info:
        load_map(bad)
    assert any("line 3: columns.Created.role" in line for line in info.value.lines())


def test_a_label_dated_before_creation_is_named(tmp_path: Path, config: FeatureConfig) -> None:
    path = _file(tmp_path)
    frame = pd.read_csv(path, dtype=str)
    frame.loc[0, "Converted On"] = "2023-12-01"
    frame.to_csv(path, index=False)
    with pytest.raises(DataContractError, match="1 lead\\(s\\) converted before they were created"):
        load_flat(path, _mapping(), config)


def test_draft_suggests_roles_with_reasons_and_loads(tmp_path: Path, config: FeatureConfig) -> None:
    path = _file(tmp_path)
    text = draft_map(path, "Converted On", created_at="Created")
    roles = {c: r["role"] for c, r in yaml.safe_load(text)["columns"].items()}
    assert roles["Lead ID"] == "id" and roles["Lead Source"] == "source"
    assert roles["Total Visits"] == "engagement" and roles["Sales Notes"] == "sales_entered"
    assert roles["Converted On"] == "label"
    map_file = tmp_path / "map.yaml"
    map_file.write_text(text)
    crm, _ = load_data(path, map_file, config)
    assert len(crm.leads) == 4


def test_a_single_file_without_a_mapping_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="give its column mapping with --map"):
        load_source(_file(tmp_path))
