"""The routes: scoring, model details, health, readiness and metrics.

Fair sharing: a worker process runs its requests on one event loop, so a route must not hold it
for long. A small scoring body (up to :data:`INLINE_BODY_BYTES`, a lead with up to about 40
events) is parsed and scored inline, a millisecond or two, so a hand-off would buy nothing; a
larger one (a lead with thousands of events, a batch) goes to a worker thread within the
request's time budget (``LEADSCORE_REQUEST_TIMEOUT_SECONDS``; 503 past it). `/healthz` and
`/readyz` are ``async`` so that they never wait for a thread either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status

from leadscore.features.payload import ParsedLead
from leadscore.serving.api.bodies import BodyError, json_body, parse_lead
from leadscore.serving.api.metrics import CONTENT_TYPE, Metrics
from leadscore.serving.api.schemas import (
    BatchResponse,
    DriftHistogram,
    FeatureInfo,
    Health,
    ModelDrift,
    ModelInfo,
    Readiness,
    ScoreResponse,
    ThresholdInfo,
    error_responses,
)
from leadscore.serving.api.service import ModelHolder, Served, score_lead
from leadscore.serving.api.watcher import ModelWatcher
from leadscore.serving.auth import HEADER, AdminKey, KeyRing, ScoreKey
from leadscore.serving.live_drift import LiveDrift
from leadscore.serving.settings import Settings

router = APIRouter()
T = TypeVar("T")
# Bodies up to this size (a lead of about 40 events; the example lead of 20 is 3.8 KB) are
# scored on the event loop; larger ones on a worker thread. Measured 2026-12-02 on a quiet 2-core
# machine (parse, validate, score with reasons; p50): 20 events 1.5 ms, 50 events 2.1 ms, 1,000
# events 22 ms, 5,000 events 75 ms; a hand-off to a thread and back 0.14 ms. So a small lead
# pays no hand-off, and no lead holds the loop (and every other request) for more than a few ms.
INLINE_BODY_BYTES = 8 * 1024
_NEXT_STEPS = (
    "Also try each step of next_steps.yaml on the lead (its event added at as_of) and return "
    "the 3 that raise the score most; each step costs one more scoring of the lead."
)
NextSteps = Annotated[bool, Query(description=_NEXT_STEPS)]
_ERRORS = {
    401: "No API key, or an unknown one.",
    403: "The API key lacks the route's scope.",
    408: "The body did not arrive in time (`LEADSCORE_BODY_TIMEOUT_SECONDS`).",
    413: "The body (or the number of leads) is over the limit.",
    415: "The body is not JSON: `Content-Type` must be `application/json`.",
    422: "The body breaks the contract: `detail` lists each field and why.",
    503: "No model is loaded, or the request went over its time budget "
    "(`LEADSCORE_REQUEST_TIMEOUT_SECONDS`).",
}


def _errors(*codes: int) -> dict[int | str, Any]:
    """The error responses one route can give."""
    return error_responses(_ERRORS, *codes)


SCORING_ERRORS = _errors(401, 403, 408, 413, 415, 422, 503)


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` names JSON: ``application/json`` or ``application/*+json``,
    parameters (``; charset=utf-8``) allowed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def require_json(request: Request) -> None:
    """A dependency of the JSON API's routes that take a body: 415 unless the `Content-Type`
    is JSON (checked before the body is read; the reps' pages post forms to routes of their
    own)."""
    given = request.headers.get("content-type")
    if not is_json(given):
        shown = "none" if given is None else repr(given[:60])
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Type must be application/json, not {shown}",
        )


JsonContent = Annotated[None, Depends(require_json)]


async def off_loop(budget: float, work: Callable[[], T]) -> T:
    """Run `work` on a worker thread and wait for it at most `budget` seconds (503 past it).
    A thread cannot be stopped: past the budget it finishes in the background, its result
    dropped, so the budget bounds the client's wait rather than the work."""
    with anyio.move_on_after(budget):
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    raise HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"the request took over its time budget of {budget:g} s",
    )


async def _run(settings: Settings, body: bytes, work: Callable[[], T]) -> T:
    """`work` inline for a small body, else on a worker thread within the time budget."""
    if len(body) <= INLINE_BODY_BYTES:
        return work()
    return await off_loop(settings.request_timeout_seconds, work)


async def _holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _served(holder: Annotated[ModelHolder, Depends(_holder)]) -> Served:
    served = holder.current  # read once: a swap mid-request cannot mix two models
    if served is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"no model loaded: {holder.error}"
        )
    return served


@dataclass(frozen=True)
class ScoringRequest:
    """What a scoring route reads besides its key and query: the model (read once: a swap
    mid-request cannot mix two models), the JSON body, the settings and the metrics."""

    served: Served
    body: bytes
    settings: Settings
    metrics: Metrics


async def _scoring(request: Request) -> ScoringRequest:
    """One dependency for the scoring routes (each one FastAPI resolves costs it some
    microseconds per request): 503 without a model, then 415 unless the body is JSON, then the
    body, in the order the separate dependencies of the other routes check them."""
    state = request.app.state
    served = await _served(state.holder)
    await require_json(request)
    return ScoringRequest(served, await request.body(), state.settings, state.metrics)


AppMetrics = Annotated[Metrics, Depends(_metrics)]
Holder = Annotated[ModelHolder, Depends(_holder)]
CurrentModel = Annotated[Served, Depends(_served)]
Scoring = Annotated[ScoringRequest, Depends(_scoring)]


@router.post(
    "/v1/score", response_model=ScoreResponse, tags=["scoring"], responses=SCORING_ERRORS,
    summary="Score one lead: MQL probability, tier, reasons, SQL criteria and next action",
)  # fmt: skip
async def score(
    _key: ScoreKey,
    scoring: Scoring,
    request: Request,
    explain: Annotated[bool, Query(description="Compute reasons (about 1 ms).")] = True,
    next_steps: NextSteps = False,
) -> ScoreResponse:
    """Score one lead in the data contract's field names (`leadscore criteria check` reads the
    same body). History after `as_of` (default: now) is refused."""
    served, body, settings = scoring.served, scoring.body, scoring.settings

    # async on purpose: a small lead holds the loop a few ms; a large one is parsed and scored
    # on a worker thread (_run), so that it never holds the loop
    def work() -> Scored:
        return score_body(served, body, settings, explain, next_steps)

    scored = await _run(settings, body, work)
    scored.count_and_record(request.app.state)
    return scored.result


@dataclass(frozen=True)
class Scored:
    """One lead scored from a request body: the response, the validated lead, its JSON."""

    result: ScoreResponse
    payload: ParsedLead
    data: Any

    def count_and_record(self, state: Any) -> None:
        """Count the tier and queue the score for the handoff store when it hands the lead
        over (never blocks). The lead's JSON goes along by reference; the writer thread reads
        it."""
        state.metrics.scores.labels(self.result.tier).inc()
        recorder = state.loop.recorder
        if recorder is not None and recorder.wants(self.result.recommended_action.action):
            recorder.submit(self.result, self.payload.lead, self.result.as_of, self.data)


def score_body(
    served: Served, body: bytes, settings: Settings, explain: bool, next_steps: bool
) -> Scored:
    """Parse, validate and score one lead's JSON body (BodyError: 422)."""
    data = json_body(body)
    payload = parse_lead(served.payload, data, max_events=settings.max_events)
    now = datetime.now(UTC)
    result = score_lead(served, payload, explain, settings.top_reasons, now, next_steps)
    return Scored(result, payload, data)


@router.post(
    "/v1/score/batch", response_model=BatchResponse, tags=["scoring"], responses=SCORING_ERRORS,
    summary="Score many leads; one bad lead makes the request 422",
)  # fmt: skip
async def score_batch(
    _key: ScoreKey,
    scoring: Scoring,
    request: Request,
    explain: Annotated[bool, Query(description="Compute reasons (about 1 ms a lead).")] = False,
    next_steps: NextSteps = False,
) -> BatchResponse:
    """Score `{"leads": [...]}` in order; every bad lead is listed by index and field."""
    served, body, settings = scoring.served, scoring.body, scoring.settings

    def work() -> tuple[list[ScoreResponse], list[ParsedLead], list[Any]]:
        return _score_many(served, body, settings, explain, next_steps)

    results, payloads, leads = await _run(settings, body, work)
    for r, p, item in zip(results, payloads, leads, strict=True):
        Scored(r, p, item).count_and_record(request.app.state)
    return BatchResponse(model=served.ref, count=len(results), results=results)


def _score_many(
    served: Served, body: bytes, settings: Settings, explain: bool, next_steps: bool
) -> tuple[list[ScoreResponse], list[ParsedLead], list[Any]]:
    """Parse, validate and score a batch body: (results, parsed leads, the leads' JSON)."""
    data = json_body(body)
    if not isinstance(data, dict):
        raise BodyError([{"loc": ["body"], "msg": 'expected an object {"leads": [...]}',
                          "type": "dict_type"}])  # fmt: skip
    extra = [k for k in data if k != "leads"]
    if extra or not isinstance(data.get("leads"), list):
        problems = [
            {"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
            for k in extra
        ]
        if "leads" not in data:
            problems.append({"loc": ["body", "leads"], "msg": "Field required", "type": "missing"})
        elif not isinstance(data["leads"], list):
            problems.append({"loc": ["body", "leads"], "msg": "Input should be a valid list",
                             "type": "list_type"})  # fmt: skip
        raise BodyError(problems)
    leads: list[Any] = data["leads"]
    if len(leads) > settings.max_batch:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{len(leads)} leads in one request; at most {settings.max_batch}",
        )
    payloads, problems = [], []
    for i, item in enumerate(leads):
        try:
            prefix = ("body", "leads", i)
            payloads.append(parse_lead(served.payload, item, prefix, settings.max_events))
        except BodyError as exc:
            problems.extend(exc.errors)
    if problems:
        raise BodyError(problems)
    now = datetime.now(UTC)
    results = [
        score_lead(served, p, explain, settings.top_reasons, now, next_steps) for p in payloads
    ]
    return results, payloads, leads


def _last_check(request: Request) -> dict[str, Any] | None:
    watcher: ModelWatcher = request.app.state.watcher
    return watcher.last.to_dict() if watcher.last else None


@router.get(
    "/v1/model", response_model=ModelInfo, tags=["model"], responses=_errors(401, 403, 503),
    summary="The served model: version, thresholds, test metrics and features",
)  # fmt: skip
def model_info(_key: ScoreKey, served: CurrentModel, request: Request) -> ModelInfo:
    """The served model: version, training window, thresholds and policy, test metrics, and
    every feature with its label and description."""
    scorer, meta = served.scorer, served.scorer.meta
    t = scorer.thresholds
    metrics = {
        k: float(v)
        for k, v in (meta.get("test_metrics") or {}).items()
        if isinstance(v, int | float) and math.isfinite(v)
    }
    return ModelInfo(
        name=served.ref.name,
        version=served.ref.version,
        alias=served.ref.alias,
        family=scorer.family,
        uri=served.uri,
        trained_at=meta.get("trained_at"),
        target=meta.get("target"),
        horizon_days=meta.get("horizon_days"),
        trained_ages=[float(a) for a in meta.get("trained_ages") or []],
        data_window=dict(meta.get("data_window") or {}),
        thresholds=ThresholdInfo(
            policy=t.policy,
            global_threshold=t.global_threshold,
            by_source=t.by_source,
            revision=t.revision,
            tier_cuts={"b": scorer.tiers.b, "c": scorer.tiers.c},
        ),
        test_metrics=metrics,
        last_check=_last_check(request),
        refused=request.app.state.holder.error,
        point_in_time=not meta.get("caveats"),
        caveats=list(meta.get("caveats") or []),
        integrity=meta.get("integrity"),
        sql_criteria={"file": served.criteria.origin, "version": served.criteria.file.version},
        features=[
            FeatureInfo(
                name=f.name,
                label=f.label,
                description=f.description or f.label,
                group=f.group,
                dtype=f.dtype,
                unit=f.unit,
                monotone=f.monotone,
                categories=None if f.categories is None else list(f.categories),
            )
            for f in scorer.spec
        ],
    )


@router.get(
    "/v1/model/drift", response_model=ModelDrift, tags=["model"],
    responses=_errors(401, 403, 503),
    summary="Live drift: the served version's scores and top features against its training",
)  # fmt: skip
def model_drift(_key: AdminKey, served: CurrentModel, request: Request) -> ModelDrift:
    """The distribution of the calibrated score and of the model's top features over the leads
    the served version scored since it was swapped in (all workers), against the model's
    training reference, with each one's PSI once enough leads were scored to judge. A model
    without a drift reference serves as usual; this says so."""
    drift: LiveDrift = request.app.state.drift
    report = drift.report(served.drift, served.scorer.meta, served.scorer.spec.names)
    return ModelDrift(
        model=served.ref, status=report.status, detail=report.detail, leads=report.leads,
        min_leads=drift.min_leads, reference_rows=report.reference_rows,
        histograms=[
            DriftHistogram(
                name=h.name, kind=h.kind, psi=h.psi, verdict=h.verdict, buckets=list(h.labels),
                reference_share=list(h.reference_share), live_count=list(h.live_count),
            )
            for h in report.histograms
        ],
    )  # fmt: skip


@router.post(
    "/v1/admin/reload", tags=["operations"], responses=_errors(401, 403),
    summary="Look for a new champion (or thresholds) now and swap it in",
)  # fmt: skip
async def reload_model(_key: AdminKey, request: Request) -> dict[str, Any]:
    """Look at the registry now; load, verify and swap in a new champion (or thresholds)."""
    watcher: ModelWatcher = request.app.state.watcher
    result = await anyio.to_thread.run_sync(lambda: watcher.check(force=True))
    return result.to_dict()


@router.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness")
async def healthz() -> Health:
    """Liveness: the process answers (async: never waits for a worker thread)."""
    return Health()


_ADMIN_DETAIL = (
    "An admin key (scope `admin`) shows the full reason a model was refused; without one "
    "the reason is a fixed phrase (the full one can name files of the server)."
)
# what /readyz says without an admin key: no text of the error itself (it can hold paths)
NOT_LOADED, LOADING, REFUSED = (
    "no model could be loaded (an admin key shows why)",
    "loading",
    "a new model version was refused; the previous one serves (an admin key shows why)",
)


def _is_admin(request: Request, presented: str | None) -> bool:
    keys: KeyRing = request.app.state.keys
    key = keys.lookup(presented) if presented else None
    return key is not None and "admin" in key.scopes


@router.get(
    "/readyz", response_model=Readiness, tags=["operations"], summary="Readiness",
    responses={503: {"model": Readiness, "description": "No model is loaded."}},
)  # fmt: skip
async def readyz(
    request: Request,
    holder: Holder,
    response: Response,
    api_key: Annotated[str | None, Header(alias=HEADER, description=_ADMIN_DETAIL)] = None,
) -> Readiness:
    """Readiness: whether a model is loaded and which (503 otherwise). Without an admin key a
    refusal is said in a fixed phrase; with one, `error` gives the reason in full."""
    served, error = holder.current, holder.error
    if error is not None and not _is_admin(request, api_key):
        error = REFUSED if served is not None else NOT_LOADED
    if served is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(ready=False, error=error or LOADING)
    return Readiness(ready=True, model=served.ref, error=error)


@router.get(
    "/metrics", tags=["operations"], response_class=Response, responses=_errors(401, 403),
    summary="Prometheus metrics",
)  # fmt: skip
def prometheus(_key: AdminKey, metrics: AppMetrics) -> Response:
    """Prometheus metrics: requests and latency by route and status, scores by tier, model."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
