"""Next steps: each step tried on a lead is the lead scored again with the step's event added.

The reference for every recommendation is an independent request: the same body with the step's
event appended at as_of, posted to `/v1/score` without next steps. The batch command is held to
the API the same way.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.features.config import load_feature_config
from leadscore.features.payload import payload_model, validate_lead
from leadscore.features.sources.canonical import from_frames, write_canonical
from leadscore.features.spec import build_spec
from leadscore.serving.next_steps import (
    NextStepsError,
    Step,
    load_next_steps,
    moved_features,
    what_if,
)
from leadscore.serving.runtime import Scorer
from tests.serving.conftest import ADMIN_KEY, ClientFactory
from tests.serving.leads import AS_OF, example, iso, random_body

STEPS = load_next_steps().steps


def _with_step(body: dict[str, Any], step: Step) -> dict[str, Any]:
    """The body with the step's event added at its as_of, as a CRM would record it."""
    event = {"timestamp": body["as_of"], **step.event.record()}
    return {**body, "events": [*body["events"], event]}


def _probability(client: TestClient, body: dict[str, Any]) -> float:
    response = client.post("/v1/score", json=body, params={"explain": "false"})
    assert response.status_code == 200, response.text
    value: float = response.json()["mql_probability"]
    return value


def _bodies(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [example(), *(random_body(rng, i) for i in range(n))]


def test_each_step_is_the_lead_scored_with_its_event(toy_client: TestClient) -> None:
    lists = []
    for body in _bodies(8, seed=21):
        response = toy_client.post("/v1/score", json=body, params={"next_steps": "true"})
        assert response.status_code == 200, response.text
        result = response.json()
        now = result["mql_probability"]
        # the expected list, from one independent request per step
        after = {s.id: _probability(toy_client, _with_step(body, s)) for s in STEPS}
        raising = [s for s in STEPS if after[s.id] > now]
        expected = sorted(raising, key=lambda s: -(after[s.id] - now))[:3]  # ties: file order
        got = result["next_steps"]
        assert [s["id"] for s in got] == [s.id for s in expected]
        for item, step in zip(got, expected, strict=True):
            assert item["label"] == step.label
            assert item["probability_after"] == after[step.id]
            assert item["gain"] == pytest.approx(after[step.id] - now, abs=1e-12)
            assert item["gain"] > 0
        gains = [s["gain"] for s in got]
        assert gains == sorted(gains, reverse=True) and len(got) <= 3
        lists.append(got)
    assert any(len(g) == 3 for g in lists)  # leads where the limit of 3 applies
    assert any(len(g) < len(STEPS) for g in lists)  # and steps left out


def test_batch_route_gives_each_lead_its_own_steps(toy_client: TestClient) -> None:
    bodies = _bodies(3, seed=4)
    batch = toy_client.post("/v1/score/batch", json={"leads": bodies},
                            params={"next_steps": "true"})  # fmt: skip
    assert batch.status_code == 200, batch.text
    for body, result in zip(bodies, batch.json()["results"], strict=True):
        one = toy_client.post("/v1/score", json=body, params={"next_steps": "true"}).json()
        assert result["next_steps"] == one["next_steps"]
    plain = toy_client.post("/v1/score/batch", json={"leads": bodies}).json()
    assert all(r["next_steps"] is None for r in plain["results"])


def test_next_steps_off_is_null_and_scores_once(
    toy_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = Scorer.score_row

    def counted(self: Scorer, row: Any) -> dict[str, Any]:
        calls.append(str(row.get("lead_id")))
        return original(self, row)

    monkeypatch.setattr(Scorer, "score_row", counted)
    one_call = Scorer.score_row_explained

    def counted_one_call(self: Scorer, row: Any) -> Any:
        calls.append(str(row.get("lead_id")))
        return one_call(self, row)

    monkeypatch.setattr(Scorer, "score_row_explained", counted_one_call)
    body = example()
    off = toy_client.post("/v1/score", json=body)
    assert off.status_code == 200 and off.json()["next_steps"] is None
    assert len(calls) == 1
    on = toy_client.post("/v1/score", json=body, params={"next_steps": "true"})
    assert on.status_code == 200 and isinstance(on.json()["next_steps"], list)
    assert len(calls) == 1 + 1 + len(STEPS)  # the lead, then one scoring per step


def test_what_if_leaves_out_steps_that_do_not_raise_and_keeps_file_order_on_ties(
    toy_model_dir: Path,
) -> None:
    scorer = Scorer.from_dir(toy_model_dir)
    parsed = validate_lead(payload_model(load_feature_config()), example())
    meeting = next(s for s in STEPS if s.id == "book_meeting")
    twin = meeting.model_copy(update={"id": "meeting_again", "label": "Book one more meeting"})
    nothing = Step.model_validate({"id": "postcard", "label": "Send a postcard",
                                   "event": {"type": "postcard"}})  # fmt: skip
    assert moved_features(nothing, scorer.spec) == []
    before = scorer.score_row(scorer.feature_row(
        parsed.lead, parsed.account, parsed.contact, parsed.events, parsed.as_of))  # fmt: skip
    found = what_if(scorer, parsed, [nothing, twin, meeting], top=5)
    assert [r.id for r in found] == ["meeting_again", "book_meeting"]  # equal gains: file order
    assert found[0].gain == found[1].gain > 0
    assert found[0].gain == pytest.approx(found[0].probability_after - before["mql_probability"])
    assert what_if(scorer, parsed, [twin, meeting], top=1)[0].id == "meeting_again"
    assert what_if(scorer, parsed, [nothing]) == []


def test_every_packaged_step_moves_a_feature() -> None:
    spec = build_spec(load_feature_config())
    assert len({s.id for s in STEPS}) == len(STEPS) >= 4
    for step in STEPS:
        assert moved_features(step, spec), step.id
    meeting = next(s for s in STEPS if s.id == "book_meeting")
    assert "meetings_set" in moved_features(meeting, spec)


BAD_FILE = """\
version: "1"
steps:
  - id: book_meeting
    label: Book a meeting
    event:
      type: sales_activity
      colour: blue
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BAD_FILE, "line 7: steps.0.event.colour: unknown key"),
        ('version: "1"\nsteps:\n  - id: x\n    event: {type: touch}\n',
         "line 3: steps.0.label: missing key"),
        ('version: "1"\nsteps:\n  - {id: Book Meeting, label: a, event: {type: touch}}\n',
         "line 3: steps.0.id: String should match pattern"),
        ('version: "1"\nsteps:\n  - {id: a, label: a, event: {type: touch}}\n'
         '  - {id: a, label: b, event: {type: touch}}\n',
         "line 2: steps: step id 'a' is used twice (steps 0 and 1)"),
        ('version: "1"\nsteps:\n  - {id: a, label: a, event: {type: touch, page_views: -1}}\n',
         "line 3: steps.0.event.page_views: Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_bad_file_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "next_steps.yaml"
    path.write_text(text)
    with pytest.raises(NextStepsError) as caught:
        load_next_steps(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and expected in message


def test_bad_file_keeps_the_model_out(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "steps.yaml"
    path.write_text(BAD_FILE)
    client = make_client(model_uri=str(toy_model_dir), next_steps_file=path)
    ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY})
    assert ready.status_code == 503
    assert f"{path}: line 7: steps.0.event.colour: unknown key" in ready.json()["error"]
    missing = make_client(model_uri=str(toy_model_dir), next_steps_file=tmp_path / "none.yaml")
    reason = missing.get("/readyz", headers={"X-API-Key": ADMIN_KEY}).json()["error"]
    assert "none.yaml: next-steps file not found" in reason


def test_openapi_documents_the_parameter(toy_client: TestClient) -> None:
    doc = toy_client.get("/openapi.json").json()
    for path in ("/v1/score", "/v1/score/batch"):
        params = {p["name"]: p for p in doc["paths"][path]["post"]["parameters"]}
        assert params["next_steps"]["schema"]["default"] is False
        assert "next_steps.yaml" in params["next_steps"]["description"]
    schemas = doc["components"]["schemas"]
    assert set(schemas["NextStep"]["required"]) >= {"id", "label", "probability_after", "gain"}
    assert "next_steps" in schemas["ScoreResponse"]["properties"]
    ok = doc["paths"]["/v1/score"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["next_steps"]  # the example lead has a step that raises it


def _canonical(bodies: list[dict[str, Any]], out: Path) -> Path:
    """The leads of `bodies` as a canonical directory (what `leadscore score` reads)."""
    leads, accounts, contacts, events = [], [], [], []
    for body in bodies:
        lead_id = body["lead"]["lead_id"]
        leads.append({**body["lead"], "account_id": body["account"]["account_id"],
                      "contact_id": body["contact"]["contact_id"]})  # fmt: skip
        accounts.append(body["account"])
        contacts.append({**body["contact"], "account_id": body["account"]["account_id"]})
        events += [{**e, "event_id": f"{lead_id}-{i}", "lead_id": lead_id}
                   for i, e in enumerate(body["events"])]  # fmt: skip
    # every lead open: listed in outcomes without dates (an empty outcomes table trips a bug in
    # labels.closed_at under pandas 3, reported apart)
    outcomes = [{"lead_id": body["lead"]["lead_id"], "won_at": None} for body in bodies]
    raw = {name: pd.DataFrame(rows, dtype=object) for name, rows in
           (("leads", leads), ("accounts", accounts), ("contacts", contacts),
            ("events", events), ("outcomes", outcomes))}  # fmt: skip
    return write_canonical(from_frames(raw, load_feature_config()), out)


def test_batch_next_steps_agree_with_the_api(
    toy_client: TestClient, toy_model_dir: Path, tmp_path: Path
) -> None:
    from leadscore.cli import app

    bodies = _bodies(12, seed=8)[1:]  # random leads, all at AS_OF
    data = _canonical(bodies, tmp_path / "crm")
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score", "--data", str(data), "--model", str(toy_model_dir),
                                      "--as-of", iso(AS_OF), "--out", str(out),
                                      "--next-steps"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best next step:" in result.output
    scores = pd.read_parquet(out).set_index("lead_id")
    assert len(scores) == len(bodies)
    seen_step = False
    for body in bodies:
        api = toy_client.post("/v1/score", json=body, params={"next_steps": "true"}).json()
        row = scores.loc[body["lead"]["lead_id"]]
        assert row["mql_probability"] == pytest.approx(api["mql_probability"], abs=1e-12)
        if not api["next_steps"]:
            assert pd.isna(row["next_step"]) and pd.isna(row["next_step_gain"])
            continue
        seen_step = True
        best = api["next_steps"][0]
        assert row["next_step"] == best["id"]
        assert row["next_step_probability"] == pytest.approx(best["probability_after"], abs=1e-12)
        assert row["next_step_gain"] == pytest.approx(best["gain"], abs=1e-12)
    assert seen_step


def test_score_without_next_steps_adds_no_columns(toy_model_dir: Path, tmp_path: Path) -> None:
    from leadscore.cli import app

    data = _canonical(_bodies(2, seed=3)[1:], tmp_path / "crm")
    out = tmp_path / "scores.parquet"
    runner = CliRunner()
    args = ["score", "--data", str(data), "--model", str(toy_model_dir), "--as-of", iso(AS_OF),
            "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not any(c.startswith("next_step") for c in pd.read_parquet(out).columns)
    lonely = runner.invoke(app, [*args, "--next-steps-file", str(tmp_path / "x.yaml")])
    assert lonely.exit_code != 0 and "--next-steps-file needs --next-steps" in lonely.output
