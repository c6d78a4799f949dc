"""Point-in-time snapshots: nothing after as_of, nothing of another lead, no current state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.features.config import CustomField, FeatureConfig, load_feature_config
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import from_frames
from leadscore.features.spec import BUILTIN_FEATURES, Feature, FeatureSpec, SpecError, build_spec

Tables = dict[str, pd.DataFrame]
Factory = Callable[[], Tables]


def _rows(raw: Tables, config: FeatureConfig, days: float) -> pd.DataFrame:
    crm = from_frames(raw, config)
    return snapshot(crm, build_spec(config), as_of_after_creation(crm.leads, days)).set_index(
        "lead_id"
    )


def _with_event(raw: Tables, lead: str, timestamp: str, **fields: object) -> Tables:
    event = {"event_id": "probe", "lead_id": lead, "timestamp": timestamp} | fields
    raw["events"] = pd.concat([raw["events"], pd.DataFrame([event])], ignore_index=True)
    return raw


def test_one_second_past_as_of_changes_nothing(tiny: Factory, config: FeatureConfig) -> None:
    base = _rows(tiny(), config, 7)
    # l1 was created 2024-01-01 00:00, so as_of at 7 days is 2024-01-08 00:00:00
    late = _with_event(tiny(), "l1", "2024-01-08T00:00:01", type="web_session",
                       subtype="pricing_page", pricing_page_views="4")  # fmt: skip
    pd.testing.assert_frame_equal(base, _rows(late, config, 7))


def test_event_exactly_at_as_of_counts(tiny: Factory, config: FeatureConfig) -> None:
    base = _rows(tiny(), config, 7)
    at = _rows(
        _with_event(tiny(), "l1", "2024-01-08T00:00:00", type="web_session", subtype="pricing_page",
                    pricing_page_views="4"),
        config, 7,
    )  # fmt: skip
    assert at.loc["l1", "web_sessions"] == base.loc["l1", "web_sessions"] + 1
    assert at.loc["l1", "pricing_page_views"] == base.loc["l1", "pricing_page_views"] + 4
    assert at.loc["l1", "days_since_last_session"] == 0.0
    # the other leads are untouched
    pd.testing.assert_frame_equal(at.drop(index="l1"), base.drop(index="l1"))


def test_future_history_and_outcomes_change_nothing(tiny: Factory, config: FeatureConfig) -> None:
    """Leakage: rewriting everything after as_of, and every outcome, leaves features equal."""
    base = _rows(tiny(), config, 7)
    raw = tiny()
    raw["outcomes"]["won_at"] = ["2024-01-03", "2024-01-04", "2024-01-11"]
    raw["outcomes"]["sql_at"] = ["2024-01-02", "2024-01-02", "2024-01-10"]
    raw["outcomes"]["current_stage"] = ["closed_won"] * 3
    for i in range(30):
        raw = _with_event(raw, "l1", f"2024-01-{10 + i % 18:02d}", type="sales_activity",
                          subtype="demo", outcome="demo_completed")  # fmt: skip
        raw["events"].loc[len(raw["events"]) - 1, "event_id"] = f"future{i}"
    pd.testing.assert_frame_equal(base, _rows(raw, config, 7))


def test_values_are_counted_per_lead(tiny: Factory, config: FeatureConfig) -> None:
    rows = _rows(tiny(), config, 30)
    assert rows.loc["l1", "touches"] == 1
    assert rows.loc["l1", "inbound_touches"] == 1
    assert rows.loc["l1", "webinars"] == 1
    assert rows.loc["l1", "pricing_page_sessions"] == 1
    assert rows.loc["l1", "meetings_set"] == 1
    assert rows.loc["l2", "touches"] == 2
    assert rows.loc["l2", "outbound_touches"] == 2
    assert rows.loc["l2", "inbound_share"] == 0.0
    assert np.isnan(rows.loc["l3", "inbound_share"])  # no touches: unknown, not 0
    assert rows.loc["l3", "demo_page_sessions"] == 1
    assert rows.loc["l1", "employee_band"] == "200-499"
    assert rows.loc["l2", "seniority"] == "manager"
    assert rows.loc["l2", "lead_source"] == "sdr_outbound"
    assert not rows.loc["l1", "opportunity_opened"]


def test_windows(tiny: Factory, config: FeatureConfig) -> None:
    rows = _rows(tiny(), config, 30)
    # l1 as_of = 2024-01-31; touch on 01-02 is in week one, the meeting on 01-20 is not
    assert rows.loc["l1", "touches_first_7d"] == 1
    assert rows.loc["l1", "engagement_first_7d"] == 2
    assert rows.loc["l1", "touches_last_7d"] == 0
    assert rows.loc["l1", "days_since_first_touch"] == 29.0
    assert rows.loc["l1", "days_since_last_sales_activity"] == 11.0
    # l2 was created at 09:30: lead age is measured from that moment
    assert rows.loc["l2", "lead_age_days"] == 30.0
    assert rows.loc["l2", "as_of"] == pd.Timestamp("2024-02-04T09:30:00")


def test_fixed_as_of_moment(tiny: Factory, config: FeatureConfig) -> None:
    crm = from_frames(tiny(), config)
    moment = pd.Series(pd.Timestamp("2024-01-12"), index=crm.leads.index)
    rows = snapshot(crm, build_spec(config), moment).set_index("lead_id")
    assert rows["lead_age_days"].to_dict() == {"l1": 11.0, "l2": 6.0 + 14.5 / 24, "l3": 2.0}
    assert rows.loc["l1", "sales_activities"] == 0  # the meeting is on 01-20


def test_no_leads_to_build_gives_an_empty_frame(tiny: Factory, config: FeatureConfig) -> None:
    """Batch scoring with every lead closed asks for no rows while events exist."""
    crm = from_frames(tiny(), config)
    none = type(crm)(**{**crm.__dict__, "leads": crm.leads.iloc[:0]})
    rows = snapshot(none, build_spec(config), pd.Series([], dtype="datetime64[ns]"))
    assert len(rows) == 0 and "lead_age_days" in rows.columns


def test_spec_refuses_current_state_columns() -> None:
    stage = Feature("stage", "Stage", "sales", "category", "attribute", "Stage is {value}",
                    source="lead.current_stage")  # fmt: skip
    with pytest.raises(SpecError, match="encodes the outcome or current state"):
        FeatureSpec((*BUILTIN_FEATURES, stage))
    leak = Feature("is_sql", "SQL", "sales", "boolean", "attribute", "SQL {value}",
                   source="outcomes.x")  # fmt: skip
    with pytest.raises(SpecError, match="is_sql"):
        FeatureSpec((leak,))


def test_spec_refuses_snake_case_sentences() -> None:
    bad = Feature("x", "X", "fit", "category", "attribute", "Has lead_source {value}",
                  source="lead.source")  # fmt: skip
    with pytest.raises(SpecError, match="snake_case"):
        FeatureSpec((bad,))


def test_builtin_sentences_read_as_words(config: FeatureConfig) -> None:
    for f in build_spec(config):
        sentence = f.sentence("inbound_marketing" if f.dtype == "category" else 3, age_days=30)
        assert "_" not in sentence, f.name
        assert "{" not in sentence, f.name


def test_sql_target_drops_its_defining_features(config: FeatureConfig) -> None:
    spec = build_spec(config)
    kept = spec.without_target_defining("sql").names
    assert "opportunity_opened" in spec.names
    assert not {"opportunity_opened", "opportunity_value", "days_since_opportunity_opened"} & set(
        kept
    )
    assert spec.without_target_defining("won").names == spec.names


def test_spec_json_roundtrip(config: FeatureConfig) -> None:
    spec = build_spec(config)
    assert FeatureSpec.from_json(spec.to_json()) == spec


def test_custom_field_through_config_alone(
    tiny: Factory, tmp_path: Path, config: FeatureConfig
) -> None:
    """A user adds a CRM field by editing YAML: it is validated and lands in the snapshot."""
    raw_cfg = yaml.safe_load(Path("config/features.yaml").read_text())
    raw_cfg["custom_fields"].append(
        {"name": "partner_tier", "entity": "account", "type": "ordinal",
         "order": ["bronze", "silver", "gold"], "label": "Partner tier",
         "template": "Partner tier is {value}"}
    )  # fmt: skip
    raw_cfg["custom_fields"].append(
        {"name": "budget_stated", "entity": "lead", "type": "number", "dated": True,
         "group": "sales", "label": "Stated budget", "template": "Stated a budget of {value}"}
    )  # fmt: skip
    file = tmp_path / "features.yaml"
    file.write_text(yaml.safe_dump(raw_cfg))
    custom = load_feature_config(file)
    raw = tiny()
    raw["accounts"]["partner_tier"] = ["gold", "silver"]
    raw = _with_event(raw, "l2", "2024-01-06T08:00:00", type="field_update",
                      field="budget_stated", field_value="50000")  # fmt: skip
    rows = _rows(raw, custom, 30)
    assert rows.loc["l1", "partner_tier"] == "gold"
    assert rows.loc["l2", "budget_stated"] == 50000.0
    assert pd.isna(rows.loc["l1", "budget_stated"])
    spec = build_spec(custom)
    assert spec["partner_tier"].categories == ("bronze", "silver", "gold")
    assert spec["budget_stated"].kind == "latest"
    # the contract validates it like a built-in: a value outside its declared order is kept
    # and warned about, naming the column
    raw["accounts"]["partner_tier"] = ["gold", "platinum"]
    with pytest.warns(UserWarning, match="accounts.partner_tier: 1 row"):
        from_frames(raw, custom)


def test_dated_field_uses_latest_value_at_or_before_as_of(
    tiny: Factory, config: FeatureConfig
) -> None:
    custom = FeatureConfig(
        ordered=config.ordered,
        custom_fields=(
            *config.custom_fields,
            CustomField(name="timeline", entity="lead", type="category", dated=True,
                        label="Timeline", template="Buying timeline is {value}"),
        ),
    )  # fmt: skip
    raw = tiny()
    for i, (ts, value) in enumerate(
        [("2024-01-03T00:00:00", "this_year"), ("2024-01-05T00:00:00", "this_quarter"),
         ("2024-01-09T00:00:00", "now")]
    ):
        raw = _with_event(raw, "l1", ts, type="field_update", field="timeline", field_value=value)
        raw["events"].loc[len(raw["events"]) - 1, "event_id"] = f"fu{i}"
    assert _rows(raw, custom, 2)["timeline"]["l1"] == "this_year"
    assert _rows(raw, custom, 7)["timeline"]["l1"] == "this_quarter"
    assert _rows(raw, custom, 8)["timeline"]["l1"] == "now"  # 01-09 is exactly as_of
