"""The data contract: every class of bad input gets one clear error; nothing is dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import validate
from leadscore.features.schema import DataContractError, UnseenCategoryWarning
from leadscore.features.sources import from_frames, load_source

Tables = dict[str, pd.DataFrame]
Factory = Callable[[], Tables]


def _error(raw: Tables, config: FeatureConfig) -> str:
    return "\n".join(_problems(raw, config))


def _problems(raw: Tables, config: FeatureConfig) -> list[str]:
    with pytest.raises(DataContractError) as info:
        validate(raw, config)
    return info.value.problems


def test_valid_tables_keep_every_row_and_type_columns(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    typed = validate(raw, config)
    assert {name: len(frame) for name, frame in typed.items()} == {
        name: len(frame) for name, frame in raw.items()
    }
    assert str(typed["events"]["timestamp"].dtype) == "datetime64[ns]"
    assert typed["events"]["pricing_page_views"].tolist()[1] == 3.0
    # optional columns absent from the source arrive as nulls, not errors
    assert typed["events"]["duration_seconds"].isna().all()
    assert typed["leads"]["budget_confirmed"].isna().all()


def test_missing_column_names_table_and_column(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["leads"] = raw["leads"].drop(columns=["created_at"])
    message = _error(raw, config)
    assert "leads: missing column(s) ['created_at']" in message


def test_only_leads_are_required(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    assert "no leads table" in _error({k: v for k, v in raw.items() if k != "leads"}, config)
    leads = raw["leads"].drop(columns=["account_id", "contact_id"])
    typed = validate({"leads": leads}, config)
    assert len(typed["leads"]) == 3 and typed["leads"]["account_id"].isna().all()
    for name in ("accounts", "contacts", "events", "outcomes"):
        assert typed[name].empty and "lead_id" in typed["leads"].columns


def test_references_into_an_absent_table_are_not_checked(
    tiny: Factory, config: FeatureConfig
) -> None:
    raw = tiny()
    del raw["accounts"], raw["contacts"]
    typed = validate(raw, config)  # leads name accounts no table describes: empty fit fields
    assert typed["leads"]["account_id"].tolist() == ["a1", "a2", "a2"]


def test_a_date_alone_is_the_end_of_that_day(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["leads"].loc[0, "created_at"] = "2024-01-01"
    typed = validate(raw, config)
    created = typed["leads"]["created_at"]
    assert str(created.iloc[0]) == "2024-01-01 23:59:59.999999"  # given as 2024-01-01
    assert str(created.iloc[1]) == "2024-01-05 09:30:00"  # a time of day is kept


def test_an_unparseable_date_is_reported_once_with_the_fix(
    tiny: Factory, config: FeatureConfig
) -> None:
    raw = tiny()
    raw["leads"]["created_at"] = ["2/1/2018", "2024-01-05", "2024-01-10"]
    (problem,) = _problems(raw, config)
    assert "leads.created_at: 1 row(s) have an unparseable timestamp" in problem
    assert "'2/1/2018'" in problem and 'date_format: "%m/%d/%Y"' in problem
    fixed = config.model_copy(update={"date_format": "%m/%d/%Y"})
    typed = validate(raw, fixed)
    assert str(typed["leads"]["created_at"].iloc[0]) == "2018-02-01 23:59:59.999999"


def test_wrong_type_names_rows_and_example(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"]["page_views"] = [None, "five", None, None, None, "2"]
    message = _error(raw, config)
    assert "events.page_views: 1 row(s) are not numbers (e.g. data row 2: 'five')" in message
    assert "expected a number" in message


def test_unparseable_timestamp(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"].loc[3, "timestamp"] = "yesterday"
    raw["events"].loc[4, "timestamp"] = "2024-13-45"
    message = _error(raw, config)
    assert "events.timestamp: 2 row(s) have an unparseable timestamp" in message
    assert "data row 4: 'yesterday'" in message
    assert "expected an ISO-8601 date or date-time" in message


def test_duplicate_id(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"].loc[5, "event_id"] = "e1"
    message = _error(raw, config)
    assert (
        "events.event_id: 2 row(s) repeat an id (e.g. data row 1: 'e1'); expected each id once"
        in message
    )


def test_event_of_unknown_lead(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"].loc[2, "lead_id"] = "l99"
    message = _error(raw, config)
    assert (
        "events.lead_id: 1 row(s) reference an unknown lead_id (e.g. data row 3: 'l99')" in message
    )
    assert "expected an id present in leads.lead_id" in message


def test_lead_of_unknown_account(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["leads"].loc[0, "account_id"] = "a404"
    assert "leads.account_id: 1 row(s) reference an unknown account_id" in _error(raw, config)


def test_negative_and_fractional_counts(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"]["pricing_page_views"] = [None, "-3", None, None, None, "1.5"]
    message = _error(raw, config)
    assert "events.pricing_page_views: 1 row(s) are negative (e.g. data row 2: '-3')" in message
    assert "expected a count >= 0" in message
    assert "events.pricing_page_views: 1 row(s) are not whole" in message


def test_infinite_number(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"]["value"] = [None, None, None, None, "inf", None]
    assert "events.value: 1 row(s) are infinite" in _error(raw, config)


def test_empty_required_value(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["leads"].loc[1, "created_at"] = None
    message = _error(raw, config)
    assert "leads.created_at: 1 row(s) are empty (e.g. data row 2: empty)" in message


def test_all_problems_reported_at_once(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"].loc[0, "timestamp"] = "nope"
    raw["accounts"].loc[1, "account_id"] = "a1"
    message = _error(raw, config)
    assert "events.timestamp" in message
    assert "accounts.account_id" in message


def test_unknown_category_is_kept_and_warned(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["accounts"].loc[0, "employee_band"] = "10000+"
    with pytest.warns(UnseenCategoryWarning, match=r"accounts.employee_band: 1 row\(s\) outside"):
        typed = validate(raw, config)
    assert typed["accounts"]["employee_band"].tolist()[0] == "10000+"


def test_timezones_and_dates_normalise_to_utc(tiny: Factory, config: FeatureConfig) -> None:
    raw = tiny()
    raw["events"].loc[0, "timestamp"] = "2024-01-02T05:00:00+05:00"
    raw["leads"].loc[0, "created_at"] = "2024-01-01"
    typed = validate(raw, config)
    assert typed["events"]["timestamp"].iloc[0] == pd.Timestamp("2024-01-02T00:00:00")
    # a date alone is the end of that day
    assert typed["leads"]["created_at"].iloc[0] == pd.Timestamp("2024-01-01T23:59:59.999999")


def test_csv_directory_error_names_the_file(tiny: Factory, tmp_path: Path) -> None:
    raw = tiny()
    raw["events"].loc[3, "timestamp"] = "soon"
    for name, frame in raw.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(DataContractError, match=r"events \(.*events\.csv\)\.timestamp: 1 row"):
        load_source(tmp_path)


def test_csv_directory_roundtrip(tiny: Factory, tmp_path: Path) -> None:
    for name, frame in tiny().items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "source.yaml").write_text("observation_end: 2024-06-30\n")
    crm = load_source(tmp_path)
    assert len(crm.events) == 6
    assert crm.observation_end == pd.Timestamp("2024-06-30")


def test_observation_end_defaults_to_latest_timestamp(tiny: Factory, config: FeatureConfig) -> None:
    crm = from_frames(tiny(), config)
    assert crm.observation_end == pd.Timestamp("2024-02-20")
    assert any("latest timestamp" in note for note in crm.notes)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="no leads file"):
        load_source(tmp_path)


def test_header_only_and_empty_files(tiny: Factory, tmp_path: Path) -> None:
    raw = tiny()
    for name, frame in raw.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "events.csv").write_text("event_id,lead_id,timestamp,type\n")
    crm = load_source(tmp_path)  # an optional table with no rows: no events, said so
    assert crm.events.empty
    assert any("events.csv has no data rows" in n for n in crm.notes)
    (tmp_path / "leads.csv").write_text("")
    with pytest.raises(DataContractError) as info:
        load_source(tmp_path)
    assert info.value.problems == [f"{tmp_path / 'leads.csv'}: the file is empty (0 bytes); "
                                   "expected a header and rows"]  # fmt: skip


def test_columns_the_contract_does_not_name_are_listed(
    tiny: Factory, config: FeatureConfig
) -> None:
    raw = tiny()
    raw["leads"]["hubspot_score"] = "12"
    crm = from_frames(raw, config)
    assert "leads: column(s) the contract does not name, read by no feature: hubspot_score" in (
        crm.notes
    )
