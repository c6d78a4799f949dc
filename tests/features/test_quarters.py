"""Next-quarter and low-base-rate bundles made from a leadforge bundle (issue 15, item 3)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from leadforge.validation.bundle_checks import validate_bundle

from leadscore.features.config import FeatureConfig
from leadscore.features.errors import LeadscoreError
from leadscore.features.sources import load_source
from leadscore.features.sources.quarters import (
    BundleEditError,
    ShiftReport,
    SubsampleReport,
    shift_bundle,
    shift_dates,
    subsample_bundle,
)

slow = pytest.mark.slow  # the session's small leadforge bundle takes a few seconds to generate

DAYS = 91
SPLITS = [f"tasks/converted_within_90_days/{s}.parquet" for s in ("train", "valid", "test")]
# Every date column of a research_instructor bundle, read off the generated files by hand.
DATE_COLUMNS = {
    "tables/accounts.parquet": ["created_at"],
    "tables/contacts.parquet": ["created_at"],
    "tables/leads.parquet": ["lead_created_at", "conversion_timestamp"],
    "tables/touches.parquet": ["touch_timestamp"],
    "tables/sessions.parquet": ["session_timestamp"],
    "tables/sales_activities.parquet": ["activity_timestamp"],
    "tables/opportunities.parquet": ["created_at", "closed_at"],
    "tables/customers.parquet": ["customer_start_at"],
    "tables/subscriptions.parquet": ["subscription_start_at"],
    **{split: ["lead_created_at"] for split in SPLITS},
}
MIX = {"partner_referral": 0.5, "inbound_marketing": 0.3, "sdr_outbound": 0.2}
BANDS = {"employee_band": {"200-499": "500-999"}}
LEAD_OWNED = ["touches", "sessions", "sales_activities", "opportunities"]


@pytest.fixture(scope="module")
def shifted(ri_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ShiftReport]:
    out = tmp_path_factory.mktemp("quarters") / "next"
    return out, shift_bundle(ri_bundle, out, days=DAYS)


@pytest.fixture(scope="module")
def mixed(ri_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ShiftReport]:
    out = tmp_path_factory.mktemp("quarters") / "mixed"
    return out, shift_bundle(ri_bundle, out, days=DAYS, source_mix=MIX, band_shift=BANDS, seed=3)


@pytest.fixture(scope="module")
def thin(ri_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SubsampleReport]:
    out = tmp_path_factory.mktemp("quarters") / "thin"
    return out, subsample_bundle(ri_bundle, out, base_rate=0.05, seed=5)


def read(root: Path, name: str) -> pd.DataFrame:
    path = name if name.endswith(".parquet") else f"tables/{name}.parquet"
    return pd.read_parquet(root / path)


def as_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="ISO8601")


def assert_no_orphans(root: Path) -> None:
    leads = set(read(root, "leads")["lead_id"])
    for name in [*LEAD_OWNED, *SPLITS]:
        assert set(read(root, name)["lead_id"]) <= leads, name
    assert set(read(root, "customers")["opportunity_id"]) <= set(
        read(root, "opportunities")["opportunity_id"]
    )
    assert set(read(root, "subscriptions")["customer_id"]) <= set(
        read(root, "customers")["customer_id"]
    )
    latents = json.loads((root / "metadata" / "latent_registry.json").read_text())
    assert set(latents["lead_latents"]) == leads
    assert validate_bundle(root, include_realism=False) == []  # leadforge's own checks


def assert_rows_follow_leads(src: Path, out: Path) -> None:
    """Kept leads keep every row they had: nothing but the dropped leads' rows went."""
    kept = set(read(out, "leads")["lead_id"])
    for name in LEAD_OWNED:
        before, after = read(src, name), read(out, name)
        assert list(after.iloc[:, 0]) == list(before[before["lead_id"].isin(kept)].iloc[:, 0])


def test_shift_dates_keeps_each_type() -> None:
    table = pa.table({
        "stamp": pa.array([dt.datetime(2024, 1, 31, 10, 30), None], pa.timestamp("ns", tz="UTC")),
        "day": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
        "text": pa.array(["2024-11-30", "2024-01-31T10:30:00+02:00"], pa.large_string()),
        "mixed": ["2024-01-31", "soon"],
        "n": [1, 2],
    })  # fmt: skip
    moved, names = shift_dates(table, DAYS)
    assert names == ["stamp", "day", "text"]
    assert moved.schema == table.schema
    # 2024 is a leap year: Jan 31 + 29 + 31 + 30 + 1 = May 1; Feb 29 + 91 = May 30
    assert moved.column("stamp").to_pylist()[0] == pd.Timestamp("2024-05-01 10:30", tz="UTC")
    assert moved.column("day").to_pylist() == [dt.date(2024, 5, 30), None]
    assert moved.column("text").to_pylist() == ["2025-03-01", "2024-05-01T10:30:00+02:00"]
    assert moved.column("mixed").to_pylist() == ["2024-01-31", "soon"]


@slow
def test_every_date_moves_by_exactly_the_days(
    ri_bundle: Path, shifted: tuple[Path, ShiftReport]
) -> None:
    out, report = shifted
    assert report.shifted_columns == DATE_COLUMNS
    assert report.rows["tables/leads.parquet"] == (300, 300)
    for path, columns in DATE_COLUMNS.items():
        before, after = read(ri_bundle, path), read(out, path)
        assert list(after.columns) == list(before.columns)
        assert after.dtypes.equals(before.dtypes), path
        for column in before.columns:
            if column in columns:
                expected = as_time(before[column]) + pd.Timedelta(days=DAYS)
                pd.testing.assert_series_equal(as_time(after[column]), expected)
            else:
                pd.testing.assert_series_equal(after[column], before[column])
    assert validate_bundle(out, include_realism=False) == []


@slow
def test_shifted_bundle_reads_as_the_next_quarter(
    ri_bundle: Path, shifted: tuple[Path, ShiftReport], config: FeatureConfig
) -> None:
    before, after = load_source(ri_bundle, config), load_source(shifted[0], config)
    day = pd.Timedelta(days=DAYS)
    assert list(after.leads["lead_id"]) == list(before.leads["lead_id"])
    pd.testing.assert_series_equal(after.leads["created_at"], before.leads["created_at"] + day)
    a, b = (d.events.sort_values("event_id").reset_index(drop=True) for d in (after, before))
    pd.testing.assert_series_equal(a["timestamp"], b["timestamp"] + day)
    for column in ("sql_at", "won_at", "lost_at"):
        pd.testing.assert_series_equal(after.outcomes[column], before.outcomes[column] + day)
    assert after.outcomes["won_at"].notna().sum() > 0
    assert after.observation_end == before.observation_end + day
    for split in SPLITS:
        pd.testing.assert_series_equal(
            read(shifted[0], split)["converted_within_90_days"],
            read(ri_bundle, split)["converted_within_90_days"],
        )


@slow
def test_source_mix_is_honoured_and_leaves_no_orphans(
    ri_bundle: Path, mixed: tuple[Path, ShiftReport]
) -> None:
    out, report = mixed
    leads, original = read(out, "leads"), read(ri_bundle, "leads")
    counts = leads["lead_source"].value_counts()
    for source, share in MIX.items():
        assert abs(counts[source] - share * len(leads)) <= 1, source
    # the largest such sample: the scarcest source for its share keeps every lead it had
    available = original["lead_source"].value_counts()
    binding = min(MIX, key=lambda s: available[s] / MIX[s])
    assert counts[binding] == available[binding]
    assert len(leads) == int(available[binding] / MIX[binding])
    assert report.source_mix_after == pytest.approx({s: counts[s] / len(leads) for s in MIX})
    assert report.rows["tables/leads.parquet"] == (len(original), len(leads))
    assert_no_orphans(out)
    assert_rows_follow_leads(ri_bundle, out)
    # the world stays: accounts and contacts name no lead
    assert len(read(out, "contacts")) == len(read(ri_bundle, "contacts"))


@slow
def test_band_remap_changes_exactly_the_mapped_values(
    ri_bundle: Path, mixed: tuple[Path, ShiftReport]
) -> None:
    out, report = mixed
    before, after = read(ri_bundle, "accounts"), read(out, "accounts")
    n_mapped = int((before["employee_band"] == "200-499").sum())
    assert n_mapped > 0
    expected = before["employee_band"].replace({"200-499": "500-999"})
    pd.testing.assert_series_equal(after["employee_band"], expected)
    assert report.remapped["employee_band"]["tables/accounts.parquet"] == n_mapped
    for column in ("industry", "region", "estimated_revenue_band"):
        pd.testing.assert_series_equal(after[column], before[column])
    # the splits carry a copy of the account's band: it follows
    split = read(out, SPLITS[0]).merge(after, on="account_id", suffixes=("", "_account"))
    assert (split["employee_band"] == split["employee_band_account"]).all()


@slow
def test_same_seed_same_sample_other_seed_other(
    ri_bundle: Path, mixed: tuple[Path, ShiftReport], tmp_path: Path
) -> None:
    again = shift_bundle(ri_bundle, tmp_path / "a", days=DAYS, source_mix=MIX, seed=3)
    other = shift_bundle(ri_bundle, tmp_path / "b", days=DAYS, source_mix=MIX, seed=4)
    ids = {p: list(read(p, "leads")["lead_id"]) for p in (mixed[0], tmp_path / "a", tmp_path / "b")}
    assert ids[tmp_path / "a"] == ids[mixed[0]]
    assert ids[tmp_path / "b"] != ids[mixed[0]]
    assert again.source_mix_after == other.source_mix_after


@slow
def test_subsample_hits_the_base_rate_and_keeps_every_non_converter(
    ri_bundle: Path, thin: tuple[Path, SubsampleReport], config: FeatureConfig
) -> None:
    out, report = thin
    label = "converted_within_90_days"
    before = pd.concat([read(ri_bundle, s) for s in SPLITS])
    after = pd.concat([read(out, s) for s in SPLITS])
    assert set(after.loc[~after[label], "lead_id"]) == set(before.loc[~before[label], "lead_id"])
    converted = int(after[label].sum())
    assert 0 < converted < int(before[label].sum())
    # k = round(r * others / (1 - r)) converters miss the rate by at most (1 - r) / 2 leads
    assert abs(converted - 0.05 * len(after)) <= 0.5
    assert (report.converted_after, report.leads_after) == (converted, len(after))
    assert set(read(out, "leads")["lead_id"]) == set(after["lead_id"])
    assert_no_orphans(out)
    assert_rows_follow_leads(ri_bundle, out)
    data = load_source(out, config)  # the reader agrees: its won leads are the kept converters
    won = data.outcomes.set_index("lead_id")["won_at"].notna()
    assert won[won].index.isin(after.loc[after[label], "lead_id"]).all()


def one_line(error: pytest.ExceptionInfo[BundleEditError]) -> str:
    assert isinstance(error.value, LeadscoreError)
    assert len(str(error.value).splitlines()) == 1
    return str(error.value)


def test_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "manifest.json").write_text('{"tables": {}}')
    with pytest.raises(BundleEditError) as error:
        shift_bundle(tmp_path / "src", tmp_path / "out", days=DAYS)
    assert "not a leadforge bundle" in one_line(error)
    with pytest.raises(BundleEditError) as error:
        subsample_bundle(tmp_path / "nowhere", tmp_path / "out", base_rate=0.1)
    assert "nowhere: not a leadforge bundle" in one_line(error)
    assert not (tmp_path / "out").exists()


@slow
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source_mix": {"partner_referral": 0.5, "sdr_outbound": 0.4}}, "shares sum to 0.9"),
        ({"source_mix": {"partner_referral": 0.5, "fax": 0.5}}, "unknown lead_source 'fax'"),
        ({"band_shift": {"company_size": {"a": "b"}}}, "no category column 'company_size'"),
        ({"band_shift": {"employee_band": {"50-199": "200-499"}}}, "'50-199' never occurs"),
    ],
)  # fmt: skip
def test_bad_shift_arguments(
    ri_bundle: Path, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(BundleEditError) as error:
        shift_bundle(ri_bundle, tmp_path / "out", days=DAYS, **kwargs)  # type: ignore[arg-type]
    assert message in one_line(error)
    assert not (tmp_path / "out").exists()


@slow
def test_out_must_be_new_or_empty(ri_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(BundleEditError) as error:
        shift_bundle(ri_bundle, tmp_path / "out", days=DAYS)
    assert "exists and is not an empty folder" in one_line(error)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    with pytest.raises(BundleEditError) as error:
        subsample_bundle(ri_bundle, ri_bundle / "thin", base_rate=0.1)
    assert "inside the bundle" in one_line(error)
    with pytest.raises(BundleEditError) as error:
        shift_bundle(ri_bundle, tmp_path / "new", days=91.5)  # type: ignore[arg-type]
    assert "days 91.5: expected a whole number" in one_line(error)
    (tmp_path / "empty").mkdir()
    shift_bundle(ri_bundle, tmp_path / "empty", days=1)
    assert (tmp_path / "empty" / "manifest.json").is_file()


@slow
def test_base_rate_above_the_bundles_own(ri_bundle: Path, tmp_path: Path) -> None:
    labels = pd.concat([read(ri_bundle, s) for s in SPLITS])["converted_within_90_days"]
    own = labels.mean()
    with pytest.raises(BundleEditError) as error:
        subsample_bundle(ri_bundle, tmp_path / "out", base_rate=0.6)
    text = one_line(error)
    assert f"base_rate 0.6 is above the bundle's own {own:.4f}" in text
    assert f"({int(labels.sum())} of {len(labels)} leads converted" in text


@slow
def test_cli_shift_and_subsample_write_what_the_functions_write(
    ri_bundle: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from leadscore.cli import app

    runner = CliRunner()
    args = ["data", "shift", "--data", str(ri_bundle), "--out", str(tmp_path / "q"), "--days",
            "91", "--seed", "3", "--band", "employee_band:200-499=500-999"]  # fmt: skip
    for name, share in MIX.items():
        args += ["--source-mix", f"{name}={share}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = shift_bundle(ri_bundle, tmp_path / "f", days=DAYS, source_mix=MIX,
                            band_shift=BANDS, seed=3)  # fmt: skip
    assert list(read(tmp_path / "q", "leads")["lead_id"]) == list(
        read(tmp_path / "f", "leads")["lead_id"]
    )
    assert all(line in result.output for line in expected.lines())
    result = runner.invoke(app, ["data", "subsample", "--data", str(ri_bundle), "--out",
                                 str(tmp_path / "s"), "--base-rate", "0.05"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote the subsampled bundle" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--source-mix", "sdr_outbound"], "--source-mix 'sdr_outbound': expected SOURCE=SHARE"),
        (["--source-mix", "sdr_outbound=half"], "the share must be a number"),
        (["--band", "employee_band=500-999"], "expected COLUMN:OLD=NEW"),
    ],
)
def test_cli_shift_option_errors_are_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    from typer.testing import CliRunner

    from leadscore.cli import app

    result = CliRunner().invoke(app, ["data", "shift", "--data", str(tmp_path), "--out",
                                      str(tmp_path / "o"), *args])  # fmt: skip
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output
