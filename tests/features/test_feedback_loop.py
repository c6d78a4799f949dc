"""The reps' verdicts as a feedback file: its contract, and the criteria held against it
(`criteria report --feedback`, `criteria suggest --feedback`). Counts are worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from leadscore.features.config import FeatureConfig
from leadscore.features.criteria.evidence import (
    contradiction_notes,
    feedback_report,
    feedback_rows,
)
from leadscore.features.criteria.rules import parse_criteria
from leadscore.features.errors import UsageProblem
from leadscore.features.feedback import (
    FEEDBACK_COLUMNS,
    FeedbackFileError,
    HandoffConfig,
    load_feedback,
    load_handoff_config,
    reasons_by_group,
    training_exclusions,
    write_feedback,
)
from leadscore.features.sources import from_frames
from leadscore.features.spec import build_spec

Factory = Callable[[], dict[str, pd.DataFrame]]
HEADER = "lead_id,disposition,reason,dispositioned_at,rep,note\n"


@pytest.fixture(scope="module")
def taxonomy() -> HandoffConfig:
    """The packaged config/handoff.yaml."""
    return load_handoff_config()


def _file(tmp_path: Path, body: str, name: str = "feedback.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


# ---------------------------------------------------------------------------------------------
# the file


def test_a_good_file_is_read_typed(tmp_path: Path, taxonomy: HandoffConfig) -> None:
    path = _file(tmp_path, "l1,accepted,,2024-03-01T10:00:00Z,ann,\n"
                           " l2 , Rejected ,no_budget,2024-03-02T09:00:00+01:00,bob,no money\n"
                           "l3,rejected,duplicate,,,\n")  # fmt: skip
    frame = load_feedback(path, taxonomy)
    assert list(frame.columns) == list(FEEDBACK_COLUMNS)
    assert frame["lead_id"].tolist() == ["l1", "l2", "l3"]
    assert frame["disposition"].tolist() == ["accepted", "rejected", "rejected"]
    assert frame["reason"].isna().tolist() == [True, False, False]
    assert frame["reason"].iloc[1] == "no_budget"
    # naive UTC: 09:00 at +01:00 is 08:00 UTC
    assert frame["dispositioned_at"].iloc[1] == pd.Timestamp("2024-03-02T08:00:00")
    assert pd.isna(frame["dispositioned_at"].iloc[2])
    assert frame["note"].iloc[1] == "no money"
    assert frame.attrs["superseded"] == 0


def test_several_rows_for_a_lead_the_latest_verdict_wins(
    tmp_path: Path, taxonomy: HandoffConfig
) -> None:
    path = _file(tmp_path, "l1,accepted,,2024-03-05T00:00:00,,\n"
                           "l1,rejected,no_fit,2024-03-01T00:00:00,,\n"  # older, later in file
                           "l2,rejected,no_need,,,\n"  # no moment: the oldest
                           "l2,accepted,,2024-01-01T00:00:00,,\n"
                           "l3,rejected,no_need,,,\n"  # tied (no moment): file order
                           "l3,rejected,competitor,,,\n")  # fmt: skip
    frame = load_feedback(path, taxonomy).set_index("lead_id")
    assert frame.loc["l1", "disposition"] == "accepted"
    assert frame.loc["l2", "disposition"] == "accepted"
    assert frame.loc["l3", "reason"] == "competitor"
    assert frame.attrs["superseded"] == 3


@pytest.mark.parametrize(
    ("row", "column", "what", "expected"),
    [
        ("l1,maybe,,,,", "disposition", "have an unknown disposition (e.g. data row 2: 'maybe')",
         "expected accepted or rejected"),
        ("l1,rejected,,,,", "reason", "are rejected without a reason (e.g. data row 2: empty)",
         "one of: unable_to_reach, bad_data, no_need"),
        ("l1,rejected,too_pricey,,,", "reason",
         "reason that is not in the taxonomy (handoff.yaml) (e.g. data row 2: 'too_pricey')",
         "expected one of: unable_to_reach, bad_data, no_need, no_budget, no_authority, no_fit, "
         "existing_customer, duplicate, competitor, other"),
        ("l1,accepted,no_fit,,,", "reason", "give a reason for an accepted lead",
         "expected an empty reason"),
        ("l1,accepted,,last tuesday,,", "dispositioned_at",
         "have an unparseable timestamp (e.g. data row 2: 'last tuesday')", "ISO-8601"),
        (",accepted,,,,", "lead_id", "are empty (e.g. data row 2: empty)", "a lead id"),
    ],
)  # fmt: skip
def test_each_problem_is_one_line_naming_file_column_and_row(
    tmp_path: Path, taxonomy: HandoffConfig, row: str, column: str, what: str, expected: str
) -> None:
    path = _file(tmp_path, "l0,accepted,,,,\n" + row + "\n")
    with pytest.raises(FeedbackFileError) as caught:
        load_feedback(path, taxonomy)
    (line,) = caught.value.lines()
    assert line.startswith(f"{path}: column {column}: 1 row(s) ")
    assert what in line and expected in line


def test_every_problem_is_listed_at_once(tmp_path: Path, taxonomy: HandoffConfig) -> None:
    path = _file(tmp_path, "l1,maybe,,,,\nl2,rejected,,,,\nl3,rejected,,,,\nl4,accepted,,x,,\n")
    with pytest.raises(FeedbackFileError) as caught:
        load_feedback(path, taxonomy)
    lines = caught.value.lines()
    assert len(lines) == 3
    assert "2 row(s) are rejected without a reason (e.g. data row 2: empty)" in lines[1]


def test_missing_columns_and_empty_files(tmp_path: Path, taxonomy: HandoffConfig) -> None:
    path = tmp_path / "f.csv"
    path.write_text("lead,verdict\nl1,accepted\n")
    with pytest.raises(
        FeedbackFileError, match=r"missing column\(s\) \['lead_id', 'disposition'\]"
    ):
        load_feedback(path, taxonomy)
    path.write_text("")
    with pytest.raises(FeedbackFileError, match="the file is empty"):
        load_feedback(path, taxonomy)
    with pytest.raises(FeedbackFileError, match="no such feedback file"):
        load_feedback(tmp_path / "absent.csv", taxonomy)
    # a header without rows: an export before any rep answered, no verdict yet
    path.write_text(HEADER)
    assert load_feedback(path, taxonomy).empty


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_load_gives_the_verdicts_back(
    tmp_path: Path, taxonomy: HandoffConfig, suffix: str
) -> None:
    verdicts = pd.DataFrame({
        "lead_id": ["l1", "l2"], "disposition": ["accepted", "rejected"],
        "reason": [None, "bad_data"],
        "dispositioned_at": pd.to_datetime(["2024-03-01T10:00:00+02:00", None], utc=True),
        "rep": ["ann", None], "extra": [1, 2],
    })  # fmt: skip
    path = write_feedback(verdicts, tmp_path / f"out{suffix}")
    back = load_feedback(path, taxonomy)
    assert back["lead_id"].tolist() == ["l1", "l2"]
    assert back["reason"].iloc[1] == "bad_data" and pd.isna(back["reason"].iloc[0])
    assert back["dispositioned_at"].iloc[0] == pd.Timestamp("2024-03-01T08:00:00")
    assert pd.isna(back["note"]).all()
    with pytest.raises(UsageProblem, match=r"\.csv or \.parquet; got \.json"):
        write_feedback(verdicts, tmp_path / "out.json")


def test_training_exclusions_and_groups(tmp_path: Path, taxonomy: HandoffConfig) -> None:
    path = _file(tmp_path, "l1,rejected,duplicate,,,\nl2,rejected,bad_data,,,\n"
                           "l3,rejected,no_fit,,,\nl4,accepted,,,,\n")  # fmt: skip
    frame = load_feedback(path, taxonomy)
    assert set(taxonomy.excluded_from_training) == {"duplicate", "bad_data"}
    assert training_exclusions(frame, taxonomy.excluded_from_training) == {
        "l1": "duplicate", "l2": "bad_data"
    }  # fmt: skip
    assert training_exclusions(frame, ["no_fit"]) == {"l3": "no_fit"}
    assert reasons_by_group(taxonomy) == {
        "need": ("no_need",), "budget": ("no_budget",), "authority": ("no_authority",),
        "fit": ("no_fit",),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the criteria against the verdicts: a hand-built case

CRITERIA = """\
version: t
owner: test
criteria:
  - {id: size, description: d, group: fit, field: account.employee_band, operator: in,
     values: [200-499, 500-999], required: true}
  - {id: senior, description: d, group: authority, field: contact.seniority, operator: in,
     values: [director, vp], required: true}
  - {id: budget, description: d, group: budget, field: account.revenue_band, operator: in,
     values: ["$10M-$50M", "$200M+"], required: false}
"""

# lead, employee band, seniority, revenue band, disposition, reason  -> size, senior, budget
ROWS = [
    ("L1", "200-499", "vp", "$200M+", "accepted", None),  # pass, pass, pass: sql_ready
    ("L2", "200-499", "manager", "$10M-$50M", "rejected", "no_authority"),  # pass, FAIL: not_sql
    ("L3", "1000-1999", "director", "$1M-$10M", "rejected", "no_fit"),  # FAIL, pass: not_sql
    ("L4", "500-999", "vp", "$10M-$50M", "rejected", "no_fit"),  # PASS, pass: sql_ready
    ("L5", "200-499", None, "$200M+", "rejected", "no_authority"),  # pass, UNKNOWN: needs_q.
    ("L6", "500-999", "director", "$200M+", "rejected", "no_budget"),  # budget PASS: sql_ready
    ("L7", None, "vp", "$1M-$10M", "accepted", None),  # unknown, pass: needs_qualification
    ("L8", "200-499", "director", "$1M-$10M", "rejected", "duplicate"),  # sql_ready
    ("L9", "1000-1999", "manager", "$1M-$10M", "rejected", "no_need"),  # fail, fail: not_sql
]


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        ROWS, columns=["lead_id", "account.employee_band", "contact.seniority",
                       "account.revenue_band", "disposition", "reason"],
    )  # fmt: skip


def test_rejections_against_their_own_criteria_group(
    config: FeatureConfig, taxonomy: HandoffConfig
) -> None:
    ev = feedback_report(parse_criteria(CRITERIA, config), _rows(), taxonomy)
    assert (ev.leads, ev.accepted, ev.rejected, ev.not_in_data) == (9, 2, 7, 0)
    table = ev.contradictions
    # in taxonomy order; need has no criterion: one row without one
    assert table["reason"].tolist() == ["no_need", "no_budget", "no_authority", "no_fit"]
    got = {
        (r.reason, r.criterion): (r.rejected, r["pass"], r.fail, r.unknown)
        for _, r in table.iterrows()
    }
    assert got == {
        ("no_need", None): (1, 0, 0, 0),
        ("no_budget", "budget"): (1, 1, 0, 0),  # L6: budget passed a lead rejected for budget
        ("no_authority", "senior"): (2, 0, 1, 1),  # L2 fail, L5 unknown
        ("no_fit", "size"): (2, 1, 1, 0),  # L4 pass, L3 fail
    }


def test_acceptance_by_criterion_status(config: FeatureConfig, taxonomy: HandoffConfig) -> None:
    ev = feedback_report(parse_criteria(CRITERIA, config), _rows(), taxonomy)
    table = ev.acceptance.set_index(["item", "status"])
    counts = table[["leads", "accepted"]].astype(int).to_dict("index")
    assert counts[("size", "pass")] == {"leads": 6, "accepted": 1}  # L1 2 4 5 6 8; L1
    assert counts[("size", "fail")] == {"leads": 2, "accepted": 0}  # L3 L9
    assert counts[("size", "unknown")] == {"leads": 1, "accepted": 1}  # L7
    assert counts[("senior", "pass")] == {"leads": 6, "accepted": 2}  # L1 3 4 6 7 8; L1 L7
    assert counts[("senior", "fail")] == {"leads": 2, "accepted": 0}  # L2 L9
    assert counts[("verdict", "sql_ready")] == {"leads": 4, "accepted": 1}  # L1 4 6 8
    assert counts[("verdict", "needs_qualification")] == {"leads": 2, "accepted": 1}  # L5 L7
    assert counts[("verdict", "not_sql")] == {"leads": 3, "accepted": 0}  # L2 L3 L9
    assert table.loc[("senior", "pass"), "rate"] == pytest.approx(2 / 6)
    assert table.loc[("senior", "pass"), "lift"] == pytest.approx((2 / 6) / (2 / 9))


def test_contradiction_notes(config: FeatureConfig, taxonomy: HandoffConfig) -> None:
    ev = feedback_report(parse_criteria(CRITERIA, config), _rows(), taxonomy)
    assert contradiction_notes(ev) == []  # fewer than 5 rejections per reason
    assert contradiction_notes(ev, min_rejected=1) == [
        "1 lead(s) rejected for no_need, but no criterion covers need: one may be missing",
        "leads rejected for no_budget: 1; budget (budget) said pass for 1 of them (100%): "
        "a criterion to tighten",
        "leads rejected for no_fit: 2; size (fit) said pass for 1 of them (50%): a criterion "
        "to tighten",
    ]


PRICING = """\
version: t
owner: test
criteria:
  - {id: pricing, description: d, group: need, field: pricing_page_views, operator: ">=",
     value: 1, required: true}
"""


def test_leads_are_checked_no_later_than_their_verdict(
    tiny: Factory, config: FeatureConfig, taxonomy: HandoffConfig
) -> None:
    # l1 (created 01-01 00:00) viewed pricing 3 times on 01-03 12:00; l2 (01-05 09:30) never
    crm = from_frames(tiny(), config, observation_end=pd.Timestamp("2024-12-31"))
    feedback = pd.DataFrame({
        "lead_id": ["l1", "l2", "ghost"], "disposition": ["rejected", "rejected", "accepted"],
        "reason": ["no_need", "no_need", None],
        "dispositioned_at": pd.to_datetime(["2024-01-03T00:00:00", None, None]),
    })  # fmt: skip
    rows = feedback_rows(crm, feedback, as_of_days=7, spec=build_spec(config))
    assert rows["lead_id"].tolist() == ["l1", "l2"] and rows.attrs["not_in_data"] == 1
    # l1 at its verdict (before the pricing views), l2 at created + 7 d (no verdict moment)
    assert rows["as_of"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-12 09:30")]
    ev = feedback_report(parse_criteria(PRICING, config, build_spec(config)), rows, taxonomy)
    (row,) = ev.contradictions.to_dict("records")
    assert (row["rejected"], row["pass"], row["fail"]) == (2, 0, 2)  # the rep's call came first
    later = feedback.assign(dispositioned_at=pd.to_datetime(["2024-02-01", None, None]))
    rows = feedback_rows(crm, later, as_of_days=7, spec=build_spec(config))
    assert rows["as_of"].iloc[0] == pd.Timestamp("2024-01-08")  # created + 7 d came first
    ev = feedback_report(parse_criteria(PRICING, config, build_spec(config)), rows, taxonomy)
    assert ev.contradictions.loc[0, "pass"] == 1  # l1 had viewed pricing by then


def test_no_lead_with_a_verdict_in_the_data(
    tiny: Factory, config: FeatureConfig, taxonomy: HandoffConfig
) -> None:
    crm = from_frames(tiny(), config, observation_end=pd.Timestamp("2024-12-31"))
    feedback = pd.DataFrame({"lead_id": ["x"], "disposition": ["rejected"], "reason": ["no_need"],
                             "dispositioned_at": pd.to_datetime([None])})  # fmt: skip
    rows = feedback_rows(crm, feedback, as_of_days=7, spec=build_spec(config))
    assert rows.empty and rows.attrs["not_in_data"] == 1
    ev = feedback_report(parse_criteria(PRICING, config, build_spec(config)), rows, taxonomy)
    assert (ev.leads, ev.rejected, ev.not_in_data) == (0, 0, 1)
    assert ev.contradictions.loc[0, "rejected"] == 0


# ---------------------------------------------------------------------------------------------
# the commands

runner = CliRunner()


def _app() -> typer.Typer:
    from leadscore.features.cli import criteria_app

    app = typer.Typer()
    app.add_typer(criteria_app, name="criteria")
    return app


@pytest.fixture
def tiny_dir(tiny: Factory, tmp_path: Path) -> Path:
    root = tmp_path / "crm"
    root.mkdir()
    for name, frame in tiny().items():
        frame.to_csv(root / f"{name}.csv", index=False)
    (root / "source.yaml").write_text("observation_end: 2024-12-31\n")
    return root


def test_cli_report_with_and_without_feedback(tiny_dir: Path, tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(PRICING)
    feedback = _file(tmp_path, "l1,accepted,,,,\nl2,rejected,no_need,,,\nghost,accepted,,,,\n")
    base = ["criteria", "report", "--data", str(tiny_dir), "--criteria", str(criteria),
            "--as-of-days", "7"]  # fmt: skip
    plain = runner.invoke(_app(), base)
    assert plain.exit_code == 0, plain.output
    assert "reps' verdicts" not in plain.output
    result = runner.invoke(_app(), [*base, "--feedback", str(feedback)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(plain.stdout)  # the report itself is unchanged
    assert (
        "leads with a verdict: 2 in the data, 1 accepted (50.0%), 1 rejected; 1 not in the "
        "data" in " ".join(result.output.split())
    )
    result = runner.invoke(_app(), [*base, "--feedback", str(feedback), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["feedback"]["not_in_data"] == 1 and doc["feedback"]["rejected"] == 1
    (row,) = doc["feedback"]["contradictions"]
    # l2 never viewed pricing: the need criterion agrees with the rep
    assert (row["reason"], row["criterion"], row["pass"], row["fail"]) == (
        "no_need",
        "pricing",
        0,
        1,
    )
    assert {r["item"] for r in doc["report"]} == {"pricing", "verdict"}


def test_cli_refuses_a_bad_feedback_file_before_reading_the_data(tmp_path: Path) -> None:
    feedback = _file(tmp_path, "l1,rejected,,,,\n")
    result = runner.invoke(_app(), ["criteria", "report", "--data", str(tmp_path / "none"),
                                    "--feedback", str(feedback)])  # fmt: skip
    assert result.exit_code == 1
    assert f"{feedback}: column reason: 1 row(s) are rejected without a reason" in " ".join(
        result.output.split()
    )


def test_cli_suggest_notes_the_verdicts(tiny_dir: Path, tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(PRICING)
    feedback = _file(tmp_path, "l1,accepted,,,,\nl2,rejected,no_need,,,\n")
    args = ["criteria", "suggest", "--data", str(tiny_dir), "--feedback", str(feedback)]
    result = runner.invoke(_app(), [*args, "--criteria", str(criteria)])
    assert result.exit_code == 0, result.output
    assert "note: reps' verdicts: 2 lead(s) in the data, 1 rejected" in result.output
