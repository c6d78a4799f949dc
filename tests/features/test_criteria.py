"""SQL criteria: the file, every operator on pass / fail / unknown, the verdicts, and one
definition of the operators shared by the one-lead check and the frame evaluation."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from leadscore.features.config import FeatureConfig
from leadscore.features.criteria.check import check, criterion_status, lead_row, verdict_of
from leadscore.features.criteria.evidence import criteria_frame, evaluate_frame, sql_ready
from leadscore.features.criteria.rules import (
    BoundCriterion,
    Criteria,
    CriteriaError,
    load_criteria,
    parse_criteria,
)
from leadscore.features.online import OnlineBuilder
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import from_frames
from leadscore.features.spec import build_spec
from tests.conftest import examples

Factory = Callable[[], dict[str, pd.DataFrame]]
HEAD = "version: '1'\nowner: revops\nreviewed_on: 2024-06-30\ncriteria:\n"


def _yaml(*criteria: str) -> str:
    return HEAD + "".join(criteria)


def _crit(
    cid: str = "c",
    field: str = "account.industry",
    operator: str = "in",
    extra: str = "    values: [logistics]\n",
    required: bool = True,
    group: str = "fit",
) -> str:
    return (
        f"  - id: {cid}\n    description: test criterion\n    group: {group}\n"
        f"    field: {field}\n    operator: {json.dumps(operator)}\n{extra}"
        f"    required: {str(required).lower()}\n"
    )


def _one(config: FeatureConfig, field: str, operator: str, extra: str = "") -> BoundCriterion:
    (bc,) = parse_criteria(_yaml(_crit(field=field, operator=operator, extra=extra)), config)
    return bc


def _status(bc: BoundCriterion, value: Any) -> str:
    return criterion_status(bc, value)[0]


# ---------------------------------------------------------------------------------------------
# every operator: pass, fail, unknown


def test_in(config: FeatureConfig) -> None:
    bc = _one(config, "account.industry", "in", "    values: [logistics, manufacturing]\n")
    assert _status(bc, "logistics") == "pass"
    assert _status(bc, "retail") == "fail"
    assert _status(bc, None) == "unknown"
    assert _status(bc, float("nan")) == "unknown"
    assert _status(bc, pd.NA) == "unknown"


def test_not_in(config: FeatureConfig) -> None:
    bc = _one(config, "lead.source", "not_in", "    values: [partner_referral]\n")
    assert _status(bc, "inbound_marketing") == "pass"
    assert _status(bc, "partner_referral") == "fail"
    assert _status(bc, None) == "unknown"  # never a silent pass


def test_in_on_numbers(config: FeatureConfig) -> None:
    bc = _one(config, "meetings_set", "in", "    values: [1, 2]\n")
    assert _status(bc, 2) == "pass"
    assert _status(bc, 2.0) == "pass"
    assert _status(bc, 0) == "fail"
    assert _status(bc, math.nan) == "unknown"


def test_equals_category_number_boolean(config: FeatureConfig) -> None:
    role = _one(config, "contact.buyer_role", "equals", "    value: economic_buyer\n")
    assert [_status(role, v) for v in ("economic_buyer", "champion", None)] == [
        "pass", "fail", "unknown"
    ]  # fmt: skip
    amount = _one(config, "lead.budget_amount", "equals", "    value: 50000\n")
    assert [_status(amount, v) for v in (50000.0, 1.0, None)] == ["pass", "fail", "unknown"]
    flag = _one(config, "lead.budget_confirmed", "equals", "    value: false\n")
    assert [_status(flag, v) for v in (False, True, None)] == ["pass", "fail", "unknown"]


def test_at_least_on_numbers(config: FeatureConfig) -> None:
    bc = _one(config, "pricing_page_views", ">=", "    value: 1\n")
    assert _status(bc, 3.0) == "pass"
    assert _status(bc, 1) == "pass"
    assert _status(bc, 0.0) == "fail"
    assert _status(bc, float("nan")) == "unknown"
    assert _status(bc, "lots") == "unknown"  # unreadable: unknown, never a crash


def test_at_least_on_ordered_bands(config: FeatureConfig) -> None:
    bc = _one(config, "account.employee_band", ">=", "    value: 200-499\n")
    assert _status(bc, "200-499") == "pass"  # "200-499" >= "200-499"
    assert _status(bc, "2000+") == "pass"
    assert _status(bc, "50-199") == "fail"
    assert _status(bc, None) == "unknown"
    assert _status(bc, "5000-9999") == "unknown"  # not a declared band: cannot be ranked


def test_at_most_on_numbers_and_bands(config: FeatureConfig) -> None:
    days = _one(config, "lead.timeline_days", "<=", "    value: 90\n")
    assert [_status(days, v) for v in (30.0, 90, 120.0, None)] == [
        "pass", "pass", "fail", "unknown"
    ]  # fmt: skip
    seniority = _one(config, "contact.seniority", "<=", "    value: manager\n")
    assert [_status(seniority, v) for v in ("individual_contributor", "vp", None)] == [
        "pass", "fail", "unknown"
    ]  # fmt: skip


def test_between_on_bands_and_numbers(config: FeatureConfig) -> None:
    band = _one(config, "account.employee_band", "between", "    values: [200-499, 1000-1999]\n")
    assert _status(band, "500-999") == "pass"
    assert _status(band, "1000-1999") == "pass"
    assert _status(band, "2000+") == "fail"
    assert _status(band, "1-49") == "fail"
    assert _status(band, None) == "unknown"
    amount = _one(config, "lead.budget_amount", "between", "    values: [10000, 50000]\n")
    assert [_status(amount, v) for v in (10000, 25000.5, 50001, None)] == [
        "pass", "pass", "fail", "unknown"
    ]  # fmt: skip


def test_between_on_a_spec_ordinal_feature(config: FeatureConfig) -> None:
    bc = _one(config, "employee_band", "between", "    values: [200-499, 1000-1999]\n")
    assert [_status(bc, v) for v in ("200-499", "2000+", None)] == ["pass", "fail", "unknown"]


def test_is_true(config: FeatureConfig) -> None:
    bc = _one(config, "lead.budget_confirmed", "is_true")
    assert _status(bc, True) == "pass"
    assert _status(bc, np.bool_(True)) == "pass"
    assert _status(bc, "yes") == "pass"
    assert _status(bc, False) == "fail"
    assert _status(bc, None) == "unknown"
    assert _status(bc, pd.NA) == "unknown"
    assert _status(bc, "maybe") == "unknown"


def test_is_true_on_a_boolean_feature(config: FeatureConfig) -> None:
    bc = _one(config, "opportunity_opened", "is_true")
    assert [_status(bc, v) for v in (True, False, None)] == ["pass", "fail", "unknown"]


def test_present_fails_on_a_missing_field(config: FeatureConfig) -> None:
    bc = _one(config, "lead.pain_point", "present")
    assert _status(bc, "manual invoice matching") == "pass"
    assert _status(bc, None) == "fail"
    assert _status(bc, "  ") == "fail"
    assert _status(bc, float("nan")) == "fail"
    assert _status(bc, pd.NA) == "fail"


def test_field_absent_from_the_row_is_unknown_or_fail_for_present(config: FeatureConfig) -> None:
    text = _yaml(
        _crit("size", "account.employee_band", ">=", "    value: 200-499\n"),
        _crit("pain", "lead.pain_point", "present", "", group="need"),
    )
    result = check(parse_criteria(text, config), {})
    assert [r.status for r in result.results] == ["unknown", "fail"]
    assert result.verdict == "not_sql"


def test_observed_value_and_sentences(config: FeatureConfig) -> None:
    band = _one(config, "account.employee_band", "between", "    values: [200-499, 1000-1999]\n")
    assert criterion_status(band, "200-499") == (
        "pass",
        "200-499",
        "Company size 200-499 is in the target range 200-1999",
    )
    assert criterion_status(band, "2000+")[2] == (
        "Company size 2000+ is outside the target range 200-1999"
    )
    assert criterion_status(band, None)[2] == "Company size is unknown (expected 200-1999)"
    views = _one(config, "pricing_page_views", ">=", "    value: 1\n")
    assert criterion_status(views, 0.0)[1:] == (0.0, "Pricing page views 0 is below 1")
    pain = _one(config, "lead.pain_point", "present")
    assert criterion_status(pain, None)[2] == "Pain point is not recorded"


# ---------------------------------------------------------------------------------------------
# verdicts


def _three(config: FeatureConfig) -> Criteria:
    return parse_criteria(
        _yaml(
            _crit("size", "account.employee_band", ">=", "    value: 200-499\n"),
            _crit("budget", "lead.budget_confirmed", "is_true", "", group="budget"),
            _crit("pricing", "pricing_page_views", ">=", "    value: 1\n", False, "need"),
        ),
        config,
    )


def test_sql_ready_when_every_required_criterion_passes(config: FeatureConfig) -> None:
    row = {"account.employee_band": "500-999", "lead.budget_confirmed": True}
    result = check(_three(config), row)  # pricing unknown, but not required
    assert result.verdict == "sql_ready"
    assert result.summary == "2 of 2 required criteria met"


def test_not_sql_when_a_required_criterion_fails(config: FeatureConfig) -> None:
    row = {"account.employee_band": "50-199", "lead.budget_confirmed": None}
    result = check(_three(config), row)
    assert result.verdict == "not_sql"
    assert result.summary == "0 of 2 required criteria met; not met: size; unknown: budget"


def test_needs_qualification_when_a_required_criterion_is_unknown(config: FeatureConfig) -> None:
    row = {"account.employee_band": "500-999", "pricing_page_views": 4.0}
    result = check(_three(config), row)
    assert result.verdict == "needs_qualification"
    assert result.summary == "1 of 2 required criteria met; unknown: budget"
    assert result.to_dict()["criteria"][1] == {
        "id": "budget", "group": "budget", "required": True, "status": "unknown",
        "observed": None, "sentence": "Budget confirmed is unknown (expected yes)",
        "description": "test criterion",
    }  # fmt: skip


def test_verdict_of() -> None:
    assert verdict_of([]) == "sql_ready"
    assert verdict_of(["pass", "unknown"]) == "needs_qualification"
    assert verdict_of(["unknown", "fail"]) == "not_sql"


# ---------------------------------------------------------------------------------------------
# the file: every bad-file error names the criterion id and its line


def _error(config: FeatureConfig, text: str) -> str:
    with pytest.raises(CriteriaError) as info:
        parse_criteria(text, config, origin="sql.yaml")
    return str(info.value)


def test_unknown_field(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("size", "account.employee_bnd", ">=", "    value: x\n")))
    assert "criterion 'size' (line 5): unknown field 'account.employee_bnd'" in msg
    assert "did you mean 'account.employee_band'?" in msg


def test_unknown_operator(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("first"), _crit("size", operator=">>")))
    assert "criterion 'size' (line 12): unknown operator '>>'; expected one of ['in'," in msg


def test_value_of_the_wrong_type(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("views", "pricing_page_views", ">=", "    value: many\n")))
    assert (
        "criterion 'views' (line 5): value 'many' has the wrong type; pricing_page_views is a "
        "number"
    ) in msg
    msg = _error(config, _yaml(_crit("flag", "lead.budget_confirmed", "equals",
                                     "    value: 1\n")))  # fmt: skip
    assert "criterion 'flag' (line 5): value 1 has the wrong type" in msg
    msg = _error(config, _yaml(_crit("ind", extra="    values: [{a: 1}]\n")))
    assert "criterion 'ind' (line 5): values" in msg and "has the wrong type" in msg


def test_unknown_category_of_a_declared_vocabulary(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("size", "account.employee_band", ">=",
                                     "    value: 200-500\n")))  # fmt: skip
    assert (
        "criterion 'size' (line 5): value '200-500' is not a known category of "
        "account.employee_band; expected one of ['1-49', '50-199'"
    ) in msg


def test_any_category_is_allowed_without_a_declared_vocabulary(config: FeatureConfig) -> None:
    (bc,) = parse_criteria(_yaml(_crit(extra="    values: [space_mining]\n")), config)
    assert bc.bounds == ("space_mining",)


def test_between_needs_two_bounds(config: FeatureConfig) -> None:
    for extra in ("    values: [200-499]\n", "    value: 200-499\n", ""):
        msg = _error(config, _yaml(_crit("size", "account.employee_band", "between", extra)))
        assert "criterion 'size' (line 5): operator 'between' needs two bounds" in msg
    msg = _error(config, _yaml(_crit("size", "account.employee_band", "between",
                                     "    values: [2000+, 1-49]\n")))  # fmt: skip
    assert "between bounds are reversed" in msg


def test_duplicate_id(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("size"), _crit("size")))
    assert "criterion 'size' (line 12): duplicate id 'size' (first used on line 5)" in msg


def test_empty_file(config: FeatureConfig) -> None:
    for text in ("", "   \n", "# only a comment\n"):
        assert "the file is empty" in _error(config, text)
    assert "no criteria" in _error(config, HEAD)
    assert "no criteria" in _error(config, HEAD + "  []\n")


def test_operator_that_does_not_apply_to_the_field(config: FeatureConfig) -> None:
    msg = _error(config, _yaml(_crit("ind", "account.industry", ">=", "    value: retail\n")))
    assert (
        "criterion 'ind' (line 5): operator '>=' does not apply to account.industry "
        "(an unordered category)"
    ) in msg
    msg = _error(config, _yaml(_crit("views", "pricing_page_views", "is_true", "")))
    assert "operator 'is_true' does not apply to pricing_page_views (number)" in msg


def test_unknown_and_missing_keys_and_every_problem_at_once(config: FeatureConfig) -> None:
    text = _yaml(
        _crit("a", extra="    valeus: [x]\n"),
        "  - id: b\n    description: no field\n    group: fit\n    operator: present\n"
        "    required: true\n",
        _crit("c", group="fitness"),
    )
    msg = _error(config, text)
    assert "criterion 'a' (line 5): unknown key 'valeus'" in msg
    assert "criterion 'b' (line 12): missing key 'field'" in msg
    assert "criterion 'c' (line 17): unknown group 'fitness'" in msg


def test_missing_top_level_keys_and_bad_yaml(config: FeatureConfig) -> None:
    msg = _error(config, "criteria:\n" + _crit())
    assert "missing top-level key 'version'" in msg and "missing top-level key 'owner'" in msg
    assert "line 2: not valid YAML" in _error(config, "version: 1\n  owner: [x\n")


def test_default_file_is_the_demo_world(config: FeatureConfig) -> None:
    criteria = load_criteria(config=config)
    assert criteria.file.owner and criteria.file.version and criteria.file.reviewed_on
    by_id = {bc.id: bc for bc in criteria}
    assert by_id["target_company_size"].bounds == ("200-499", "1000-1999")
    assert set(by_id["target_region"].bounds) == {"US", "UK"}
    assert set(by_id["target_industry"].bounds) == {
        "manufacturing", "logistics", "professional_services", "healthcare_non_clinical"
    }  # fmt: skip
    assert by_id["economic_buyer"].bounds == ("economic_buyer",)
    assert {bc.criterion.group for bc in criteria} == {
        "fit", "budget", "authority", "need", "timeline"
    }  # fmt: skip
    # BANT groups use stand-ins (the demo data records no BANT answers), and say so.
    for bc in criteria:
        if bc.criterion.group in ("budget", "need", "timeline") or bc.id == "decision_authority":
            assert "stand-in" in bc.criterion.description, bc.id


# ---------------------------------------------------------------------------------------------
# one definition: the frame evaluation and the one-lead check agree

POOLS: dict[str, list[Any]] = {
    "account.employee_band": ["1-49", "200-499", "1000-1999", "2000+", "9999+", None],
    "account.industry": ["logistics", "retail", None],
    "lead.budget_confirmed": [True, False, None],
    "lead.pain_point": ["manual AP", "", None],
    "pricing_page_views": [0.0, 1.0, 7.0, math.nan],
    "lead.budget_amount": [5_000.0, 30_000.0, 80_000.0, math.nan],
}
DTYPES = {"lead.budget_confirmed": "boolean", "account.employee_band": "string",
          "account.industry": "string", "lead.pain_point": "string"}  # fmt: skip


def _mixed(config: FeatureConfig) -> Criteria:
    return parse_criteria(
        _yaml(
            _crit("size", "account.employee_band", "between", "    values: [200-499, 1000-1999]\n"),
            _crit("ind", "account.industry", "not_in", "    values: [retail]\n", False),
            _crit("budget", "lead.budget_confirmed", "is_true", "", group="budget"),
            _crit("pain", "lead.pain_point", "present", "", False, "need"),
            _crit("views", "pricing_page_views", ">=", "    value: 1\n", group="need"),
            _crit("amount", "lead.budget_amount", "<=", "    value: 50000\n", False, "budget"),
            _crit("gone", "lead.timeline_days", "<=", "    value: 30\n", False, "timeline"),
        ),
        config,
    )


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in POOLS.items()}),
                min_size=1, max_size=12))  # fmt: skip
def test_frame_and_one_lead_check_agree(rows: list[dict[str, Any]]) -> None:
    from leadscore.features.config import load_feature_config

    criteria = _mixed(load_feature_config())
    frame = pd.DataFrame(rows)
    for col, dtype in DTYPES.items():
        frame[col] = frame[col].astype(dtype)  # typed like snapshot and contract columns
    frame.index = pd.RangeIndex(100, 100 + len(frame))  # any index
    evaluated = evaluate_frame(criteria, frame)
    assert evaluated.index.equals(frame.index)
    for i, row in enumerate(rows):
        result = check(criteria, row)
        assert [r.status for r in result.results] == evaluated.iloc[i][criteria.ids].tolist()
        assert result.verdict == evaluated["verdict"].iloc[i]
    assert (sql_ready(criteria, frame) == (evaluated["verdict"] == "sql_ready")).all()


def test_batch_snapshot_and_online_row_give_the_same_verdicts(
    tiny: Factory, config: FeatureConfig
) -> None:
    raw = tiny()
    raw["leads"]["budget_confirmed"] = ["yes", None, "no"]
    raw["contacts"].loc[2, "buyer_role"] = None
    crm = from_frames(raw, config)
    spec = build_spec(config)
    criteria = parse_criteria(
        _yaml(
            _crit("size", "account.employee_band", ">=", "    value: 200-499\n"),
            _crit("buyer", "contact.buyer_role", "in", "    values: [economic_buyer]\n"),
            _crit("budget", "lead.budget_confirmed", "is_true", "", group="budget"),
            _crit("views", "pricing_page_views", ">=", "    value: 1\n", False, "need"),
            _crit("src", "lead_source", "not_in", "    values: [partner_referral]\n", False),
        ),
        config,
    )
    as_of = as_of_after_creation(crm.leads, 10)
    rows = snapshot(crm, spec, as_of)
    batch = evaluate_frame(criteria, criteria_frame(crm, rows))
    builder = OnlineBuilder(spec)
    for i, lead in enumerate(crm.leads.to_dict("records")):
        account = crm.accounts.set_index("account_id").loc[lead["account_id"]].to_dict()
        contact = crm.contacts.set_index("contact_id").loc[lead["contact_id"]].to_dict()
        events = crm.events[crm.events["lead_id"] == lead["lead_id"]].to_dict("records")
        features = builder.row(lead, account, contact, events, as_of.iloc[i])
        result = check(criteria, lead_row(features, lead, account, contact))
        assert [r.status for r in result.results] == batch.iloc[i][criteria.ids].tolist()
        assert result.verdict == batch["verdict"].iloc[i]
    assert batch["verdict"].tolist() == ["sql_ready", "not_sql", "not_sql"]
    assert batch["buyer"].tolist() == ["pass", "fail", "unknown"]


def test_criteria_frame_joins_canonical_columns(tiny: Factory, config: FeatureConfig) -> None:
    crm = from_frames(tiny(), config)
    rows = pd.DataFrame({"lead_id": ["l3", "l1"], "x": [1, 2]}, index=[7, 8])
    frame = criteria_frame(crm, rows)
    assert frame.index.tolist() == [7, 8]
    assert frame["account.industry"].tolist() == ["manufacturing", "logistics"]
    assert frame["contact.buyer_role"].tolist() == ["technical_evaluator", "economic_buyer"]
    assert frame["lead.source"].tolist() == ["partner_referral", "inbound_marketing"]
    assert frame["x"].tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------
# `leadscore criteria check`

runner = CliRunner()


def _criteria_cli() -> typer.Typer:
    """`leadscore` with only the criteria commands (no training or serving imports)."""
    from leadscore.features.cli import criteria_app

    app = typer.Typer()
    app.add_typer(criteria_app, name="criteria")
    return app


def _lead_json(tmp_path: Path, **changes: Any) -> Path:
    body: dict[str, Any] = {
        "lead": {"lead_id": "L1", "created_at": "2024-01-01", "source": "inbound_marketing"},
        "account": {"account_id": "A1", "industry": "logistics", "region": "UK",
                    "employee_band": "500-999", "revenue_band": "$10M-$50M"},
        "contact": {"contact_id": "C1", "seniority": "vp", "buyer_role": "economic_buyer"},
        "events": [
            {"timestamp": "2024-01-03T10:00:00Z", "type": "web_session",
             "subtype": "pricing_page", "pricing_page_views": 3},
            {"timestamp": "2024-01-05", "type": "sales_activity", "outcome": "meeting_set"},
        ],
        "as_of": "2024-01-31T00:00:00Z",
    } | changes  # fmt: skip
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(body))
    return path


def test_cli_check_prints_the_table_and_verdict(tmp_path: Path) -> None:
    from leadscore.cli import app  # mounted on the console script

    result = runner.invoke(app, ["criteria", "check", "--lead", str(_lead_json(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "Company size 500-999 is in the target range 200-1999" in result.output
    assert "verdict: sql_ready (7 of 7 required criteria met)" in result.output


def test_cli_check_json_with_a_missing_field(tmp_path: Path) -> None:
    app = _criteria_cli()

    account = {"account_id": "A1", "industry": "logistics", "region": "UK",
               "employee_band": "500-999"}  # fmt: skip
    path = _lead_json(tmp_path, account=account)
    result = runner.invoke(app, ["criteria", "check", "--lead", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["verdict"] == "needs_qualification"
    assert out["summary"] == "6 of 7 required criteria met; unknown: budget_capacity"
    assert out["lead_id"] == "L1"


def test_cli_check_with_another_criteria_file(tmp_path: Path) -> None:
    app = _criteria_cli()

    rules = tmp_path / "rules.yaml"
    rules.write_text(_yaml(_crit("src", "lead.source", "in", "    values: [sdr_outbound]\n")))
    args = ["criteria", "check", "--lead", str(_lead_json(tmp_path)), "--criteria", str(rules)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "verdict: not_sql (0 of 1 required criteria met; not met: src)" in result.output


def test_cli_check_fails_cleanly(tmp_path: Path) -> None:
    app = _criteria_cli()

    lead = _lead_json(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml(_crit("size", operator=">>")))
    result = runner.invoke(app, ["criteria", "check", "--lead", str(lead), "--criteria", str(bad)])
    assert result.exit_code == 1  # a failure: the file is wrong, not the command line
    assert "criterion 'size' (line 5): unknown operator '>>'" in result.output
    assert "Traceback" not in result.output
    broken = _lead_json(tmp_path, lead={"lead_id": "L1"})
    result = runner.invoke(app, ["criteria", "check", "--lead", str(broken)])
    assert result.exit_code == 1
    assert f"error: {broken}: invalid lead: lead.created_at: Field required" in result.output
    missing = runner.invoke(app, ["criteria", "check", "--lead", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2  # usage: the option names a file that is not there
    assert "--lead" in missing.output and "nope.json" in missing.output
