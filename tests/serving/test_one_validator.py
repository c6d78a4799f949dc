"""One lead validator: the API, the MLflow pyfunc and `criteria check` refuse the same bodies
with the same problems (location, message, type)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.features.config import load_feature_config
from leadscore.features.payload import LeadError, payload_model, validate_lead
from leadscore.serving.lead_scoring import BadLeadError
from leadscore.serving.pyfunc import LeadScoringModel
from leadscore.serving.runtime import Scorer
from tests.serving.conftest import TestClient
from tests.serving.leads import example

Body = dict[str, Any]
Problem = tuple[tuple[Any, ...], str, str]


def _set(path: str, value: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        *head, last = path.split(".")
        target: Any = body
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


BAD_BODIES: dict[str, Callable[[Body], None]] = {
    "created after as_of": _set("lead.created_at", "2027-01-01T00:00:00Z"),
    "event after as_of": _set("events.0.timestamp", "2027-01-01T00:00:00Z"),
    "another lead's event": _set("events.1.lead_id", "someone-else"),
    "account id contradicts the lead": _set("lead.account_id", "acct-other"),
    "contact's account contradicts the account": _set("contact.account_id", "acct-other"),
    "near-miss key": _set("account.employe_band", "200-499"),
    "negative count": _set("events.1.page_views", -3),
    "missing created_at": lambda body: body["lead"].pop("created_at"),
}


@pytest.fixture(scope="module")
def pyfunc(toy_model_dir: Path) -> LeadScoringModel:
    model = LeadScoringModel()
    model.scorer = Scorer.from_dir(toy_model_dir)
    return model


def _bad(name: str) -> Body:
    body = copy.deepcopy(example())
    BAD_BODIES[name](body)
    return body


def _from_api(client: TestClient, body: Body) -> set[Problem]:
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    return {(tuple(p["loc"][1:]), p["msg"], p["type"]) for p in response.json()["detail"]}


def _from_pyfunc(model: LeadScoringModel, body: Body) -> set[Problem]:
    frame = pd.DataFrame([{k: body.get(k) for k in ("lead", "account", "contact", "events")}])
    with pytest.raises(BadLeadError) as info:
        model.predict(None, frame, params={"as_of": body["as_of"]})
    (error,) = info.value.errors.values()
    return {(p.loc, p.msg, p.type) for p in error.problems}


def _from_validator(body: Body) -> set[Problem]:
    with pytest.raises(LeadError) as info:
        validate_lead(payload_model(load_feature_config()), body)
    return {(p.loc, p.msg, p.type) for p in info.value.problems}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_api_pyfunc_and_check_refuse_alike(
    name: str, toy_client: TestClient, pyfunc: LeadScoringModel
) -> None:
    body = _bad(name)
    api = _from_api(toy_client, body)
    assert api, name
    assert _from_pyfunc(pyfunc, body) == api
    assert _from_validator(body) == api


def test_the_good_example_passes_everywhere(
    toy_client: TestClient, pyfunc: LeadScoringModel
) -> None:
    body = example()
    body["account"]["crm_segment"] = "enterprise"  # a CRM's own key: kept, listed, ignored
    answer = toy_client.post("/v1/score", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ignored_fields"] == ["account.crm_segment"]
    frame = pd.DataFrame([{k: body.get(k) for k in ("lead", "account", "contact", "events")}])
    scored = pyfunc.predict(None, frame, params={"as_of": body["as_of"]})
    assert scored["mql_probability"].iloc[0] == answer.json()["mql_probability"]


def test_criteria_check_prints_the_same_problems(tmp_path: Path) -> None:
    from leadscore.cli import app

    body = _bad("created after as_of")
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(body))
    result = CliRunner().invoke(app, ["criteria", "check", "--lead", str(path)])
    assert result.exit_code == 1
    ((loc, msg, _),) = _from_validator(body)
    assert f"error: {path}: invalid lead: {'.'.join(map(str, loc))}: {msg}" in result.output
