"""Reading exported tables: CSV with any common delimiter, Parquet, Excel told apart by content;
placeholders as empty; empty files named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import validate
from leadscore.features.readers import EmptyFileError, kind_of, read_table

FRAME = pd.DataFrame({"lead_id": ["007", "008"], "source": ["web", "N/A"], "n": ["1e3", "2"]})


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed_and_text_stays_text(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "leads.csv"
    FRAME.to_csv(path, sep=sep, index=False)
    frame = read_table(path)
    assert frame["lead_id"].tolist() == ["007", "008"]  # leading zeros kept
    assert frame["n"].tolist() == ["1e3", "2"]  # no type guessed


def test_excel_and_parquet_are_known_by_their_bytes(tmp_path: Path) -> None:
    xlsx = tmp_path / "leads.csv"  # the name lies; the content decides
    FRAME.to_excel(xlsx, index=False, engine="openpyxl")
    assert kind_of(xlsx) == "excel"
    assert read_table(xlsx)["lead_id"].tolist() == ["007", "008"]
    parquet = tmp_path / "leads.data"
    FRAME.to_parquet(parquet)
    assert kind_of(parquet) == "parquet"
    assert read_table(parquet).equals(FRAME)


def test_empty_and_header_only_files_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "leads.csv"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError) as info:
        read_table(empty)
    assert info.value.problems == [f"{empty}: the file is empty (0 bytes); expected a header "
                                   "and rows"]  # fmt: skip
    empty.write_text("lead_id,created_at\n")
    with pytest.raises(EmptyFileError, match=r"leads\.csv: no data rows"):
        read_table(empty)


def test_placeholders_are_empty_unless_declared(config: FeatureConfig) -> None:
    leads = pd.DataFrame({"lead_id": ["l1", "l2", "l3"],
                          "created_at": ["2024-01-01T00:00:00", "-", "2024-01-03T00:00:00"],
                          "source": ["Select", "web", "n/a"]})  # fmt: skip
    contacts = pd.DataFrame({"contact_id": ["c1"], "account_id": [None],
                             "email_domain_type": ["unknown"], "seniority": ["unknown"]})
    with pytest.raises(ValueError, match=r"leads\.created_at: 1 row\(s\) are empty"):
        validate({"leads": leads}, config)  # a placeholder is no date: empty, named once
    leads["created_at"] = "2024-01-01T00:00:00"
    typed = validate({"leads": leads, "contacts": contacts}, config)
    assert typed["leads"]["source"].isna().tolist() == [True, False, True]
    # "unknown" is a declared value of email_domain_type (features.yaml), a placeholder elsewhere
    assert typed["contacts"]["email_domain_type"].tolist() == ["unknown"]
    assert typed["contacts"]["seniority"].isna().all()


def test_a_field_updates_value_keeps_what_its_field_declares(config: FeatureConfig) -> None:
    from leadscore.features.config import CustomField

    dated = config.model_copy(update={"custom_fields": (
        CustomField(name="tier", entity="lead", type="category", dated=True, label="Tier",
                    template="Tier {value}", values=("gold", "unknown")),
    )})  # fmt: skip
    leads = pd.DataFrame({"lead_id": ["l1"], "created_at": ["2024-01-01T00:00:00"],
                          "source": ["web"]})  # fmt: skip
    events = pd.DataFrame({
        "event_id": ["e1", "e2", "e3"], "lead_id": ["l1"] * 3,
        "timestamp": ["2024-01-02T00:00:00"] * 3, "type": ["field_update"] * 3,
        "field": ["tier", "tier", "other"], "field_value": ["unknown", "Select", "unknown"],
    })  # fmt: skip
    typed = validate({"leads": leads, "events": events}, dated)
    values = typed["events"]["field_value"]
    assert values.iloc[0] == "unknown" and pd.isna(values.iloc[1]) and pd.isna(values.iloc[2])
