"""schemathesis against the app in-process: every operation of the OpenAPI document, at least 1,000
generated requests, no 5xx, no response outside its schema, no invalid request accepted.

The run is schemathesis' own engine (what its CLI drives) over the ASGI app, with the phases that
test one operation at a time: the schema's examples, the coverage phase (boundary values and, in
negative mode, each way a request can break the schema: wrong types, missing fields, values out of
range, unexpected methods) and fuzzing (positive and negative). Every request carries a key with
every scope, so the checks judge the routes themselves rather than the auth gate. Checks:

- ``not_a_server_error``: no 5xx;
- ``response_schema_conformance``, ``status_code_conformance``, ``content_type_conformance``: the
  answer (body, status, media type) is one the document describes;
- ``negative_data_rejection``: a request that breaks the schema is refused ("invalid request
  accepted" otherwise), with 413 counted as a refusal (the body and batch-size limits answer it).

``positive_data_acceptance`` stays off: the cross-field rules (an event after ``as_of``, another
lead's event, a reason on an accepted lead) refuse schema-valid bodies by design. The stateful
phase stays off too: the document has no links and schemathesis infers none from it (on, it sends
nothing); the handoff routes' sequences are tested in test_handoff_api.py.

Seeded and ``deterministic``: the same requests every run, locally and in CI (the engine ignores
Hypothesis' ``ci`` profile). About 1,400 requests in 30 s on 2 cores (60 s when they are busy).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.engine import Status, events
from schemathesis.engine.recorder import Interaction
from schemathesis.python import asgi
from schemathesis.schemas import BaseSchema

from leadscore.serving.api import create_app
from leadscore.serving.settings import Settings

KEY = "schemathesis-key-1"
MAX_EXAMPLES = 30  # fuzzing examples per operation (valid and invalid); coverage adds its own
MIN_REQUESTS = 1_000
# Operations that score or read the model: a run where they never answer 2xx tested nothing but
# the "model not loaded" 503 (which the document allows).
MUST_SUCCEED = ("POST /v1/score", "POST /v1/score/batch", "GET /v1/model")

# What counts as refusing an invalid request: schemathesis' default list, and 413 (the body-size
# and batch-size limits answer it)
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

CONFIG: dict[str, Any] = {
    "seed": 14,
    "cache": {"enabled": False},  # no error feedback carried over from earlier runs (nor files)
    "continue-on-failure": True,  # collect every finding, not only the first per operation
    # a guard against a hang, not a speed target: a batch of 1,000 leads with explanations and
    # next steps takes seconds on a busy 2-core machine (the app's own budget is 30 s)
    "request-timeout": 60,
    "headers": {"X-API-Key": KEY},
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        # never a generated (wrong) key, whose 401 would hide the route behind it
        "with-security-parameters": False,
    },
    "phases": {"stateful": {"enabled": False}},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "negative_data_rejection": {
            "enabled": True,
            "expected-statuses": REFUSALS,
        },
    },
}


@dataclass
class RunReport:
    """What one schemathesis run sent and found."""

    requests: Counter[str] = field(default_factory=Counter)  # by operation
    negative: Counter[str] = field(default_factory=Counter)  # schema-breaking requests sent
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)


def _finding(label: str, check: str, failure: Failure, interaction: Interaction | None) -> str:
    """A finding as text: operation, check and message on its first line, then the request and
    the answer (cut short)."""
    text = f"{label} [{check}] {failure.title}: {' '.join(str(failure.message).split())[:300]}"
    if interaction is not None:
        request = interaction.request
        text += f"\n    request: {request.method} {request.uri} {(request.body or b'')[:300]!r}"
        if interaction.response is not None:
            response = interaction.response
            text += f"\n    response: {response.status_code} {response.content[:300]!r}"
    return text


def _record(report: RunReport, event: events.ScenarioFinished) -> None:
    """Add one operation's scenario (one phase) to the report."""
    recorder = event.recorder
    for case_id, interaction in recorder.interactions.items():
        if interaction.response is None:
            continue
        report.requests[recorder.label] += 1
        report.statuses[(recorder.label, interaction.response.status_code)] += 1
        case = recorder.cases[case_id].value
        if case.meta is not None and case.meta.generation.mode.is_negative:
            report.negative[recorder.label] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                interaction = recorder.interactions.get(case_id)
                failure = check.failure_info.failure
                report.findings.append(_finding(recorder.label, check.name, failure, interaction))


def run_schemathesis(schema: BaseSchema) -> RunReport:
    """Run the engine over the schema and gather requests, statuses and findings."""
    report = RunReport()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(report, event)
        elif isinstance(event, events.NonFatalError):  # a request timed out, a schema problem
            phase = event.phase.value if event.phase is not None else "-"
            text = f"{event.label} [error in {phase}] {event.info.title}: {event.info.message}"
            if event.info.code_sample:
                text += f"\n    request: {event.info.code_sample[:600]}"
            report.findings.append(text)
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            report.findings += [f"{f.operation} [after run] {f.title}" for f in event.failures]
    return report


def distinct(report: RunReport) -> str:
    """The findings, one example of each (same operation, check and message), with its count."""
    examples: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for finding in report.findings:
        head = finding.split("\n", 1)[0]
        examples.setdefault(head, finding)
        counts[head] += 1
    return "\n".join(f"({counts[head]}x) {text}" for head, text in examples.items())


@pytest.fixture
def api_schema(tmp_path: Path, toy_model_dir: Path) -> Iterator[BaseSchema]:
    """The app's OpenAPI document, loaded from the app serving the toy model. schemathesis' ASGI
    client starts the app's lifespan (the model loads) and keeps it running between requests."""
    # batches of at most 100 leads (413 above, one of the refusals the run expects): the
    # coverage phase posts the largest allowed batch, and 1,000 leads with reasons and next
    # steps take 10-15 s on a busy 2-core machine, a third of the request time budget
    settings = Settings(api_keys=f"{KEY}:score+admin+feedback",
                        store_url=f"sqlite:///{tmp_path / 'store.db'}",
                        model_uri=str(toy_model_dir), max_batch=100)  # fmt: skip
    app = create_app(settings)
    try:
        config = schemathesis.Config.from_dict(CONFIG)
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    finally:
        asgi.shutdown_lifespans()


@pytest.mark.slow
def test_generated_requests_find_no_5xx_no_schema_violation_no_invalid_request_accepted(
    api_schema: BaseSchema,
) -> None:
    operations = {result.ok().label for result in api_schema.get_all_operations()}
    assert set(MUST_SUCCEED) <= operations
    assert not any(label.split()[1].startswith("/app") for label in operations)  # form pages

    report = run_schemathesis(api_schema)

    if report.findings:  # one example of each, without the whole report's repr
        message = f"{len(report.findings)} schemathesis findings:\n{distinct(report)}"
        pytest.fail(message, pytrace=False)
    assert set(report.requests) == operations, "every operation tested"
    assert sum(report.requests.values()) >= MIN_REQUESTS, report.requests
    assert not [key for key in report.statuses if key[1] >= 500]
    for label in MUST_SUCCEED:
        assert any(200 <= status < 300 for (op, status) in report.statuses if op == label), label
    # the "invalid request accepted" check had invalid requests to judge, body routes above all
    assert report.negative["POST /v1/score"] >= 100, report.negative
    assert report.negative["POST /v1/leads/{lead_id}/feedback"] >= 20, report.negative
