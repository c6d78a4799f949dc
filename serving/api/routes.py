"""The routes: scoring, model details, health, readiness and metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from leadscore.features.payload import ParsedLead
from leadscore.serving.api.bodies import BodyError, json_body, parse_lead
from leadscore.serving.api.metrics import CONTENT_TYPE, Metrics
from leadscore.serving.api.schemas import (
    BatchResponse,
    FeatureInfo,
    Health,
    ModelInfo,
    Readiness,
    ScoreResponse,
    ThresholdInfo,
)
from leadscore.serving.api.service import ModelHolder, Served, score_lead
from leadscore.serving.api.watcher import ModelWatcher
from leadscore.serving.auth import AdminKey, ScoreKey
from leadscore.serving.settings import Settings

router = APIRouter()
_NEXT_STEPS = (
    "Also try each step of next_steps.yaml on the lead (its event added at as_of) and return "
    "the 3 that raise the score most; each step costs one more scoring of the lead."
)
NextSteps = Annotated[bool, Query(description=_NEXT_STEPS)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown one."},
    403: {"description": "The API key lacks the route's scope."},
    413: {"description": "The body (or the number of leads) is over the limit."},
    422: {"description": "The body breaks the contract: `detail` lists each field and why."},
    503: {"description": "No model is loaded."},
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses one route can give."""
    return {code: _ERRORS[code] for code in codes}


SCORING_ERRORS = _errors(401, 403, 413, 422, 503)


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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


async def _body(request: Request) -> bytes:
    return await request.body()


AppSettings = Annotated[Settings, Depends(_settings)]
AppMetrics = Annotated[Metrics, Depends(_metrics)]
Holder = Annotated[ModelHolder, Depends(_holder)]
CurrentModel = Annotated[Served, Depends(_served)]
RawBody = Annotated[bytes, Depends(_body)]


@router.post(
    "/v1/score", response_model=ScoreResponse, tags=["scoring"], responses=SCORING_ERRORS,
    summary="Score one lead: MQL probability, tier, reasons, SQL criteria and next action",
)  # fmt: skip
async def score(
    _key: ScoreKey,
    served: CurrentModel,
    body: RawBody,
    settings: AppSettings,
    metrics: AppMetrics,
    request: Request,
    explain: Annotated[bool, Query(description="Compute reasons (about 1 ms).")] = True,
    next_steps: NextSteps = False,
) -> ScoreResponse:
    """Score one lead in the data contract's field names (`leadscore criteria check` reads the
    same body). History after `as_of` (default: now) is refused."""
    # async on purpose: about 1 ms of CPU, and a worker runs one at a time anyway (GIL); a
    # thread-pool hand-off per dependency and endpoint cost more than the scoring itself
    data = json_body(body)
    payload = parse_lead(served.payload, data)
    now = datetime.now(UTC)
    result = score_lead(served, payload, explain, settings.top_reasons, now, next_steps)
    metrics.scores.labels(result.tier).inc()
    _record(request, result, payload, data)
    return result


def _record(request: Request, result: ScoreResponse, payload: ParsedLead, body: Any) -> None:
    """Queue the score for the handoff store when it hands the lead over (never blocks). The
    lead's body (the validated JSON) goes along by reference; the writer thread reads it."""
    recorder = request.app.state.loop.recorder
    if recorder is not None and recorder.wants(result.recommended_action.action):
        recorder.submit(result, payload.lead, result.as_of, body)


@router.post(
    "/v1/score/batch", response_model=BatchResponse, tags=["scoring"], responses=SCORING_ERRORS,
    summary="Score many leads; one bad lead makes the request 422",
)  # fmt: skip
def score_batch(
    _key: ScoreKey,
    served: CurrentModel,
    body: RawBody,
    settings: AppSettings,
    metrics: AppMetrics,
    request: Request,
    explain: Annotated[bool, Query(description="Compute reasons (about 1 ms a lead).")] = False,
    next_steps: NextSteps = False,
) -> BatchResponse:
    """Score `{"leads": [...]}` in order; every bad lead is listed by index and field."""
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
            payloads.append(parse_lead(served.payload, item, ("body", "leads", i)))
        except BodyError as exc:
            problems.extend(exc.errors)
    if problems:
        raise BodyError(problems)
    now = datetime.now(UTC)
    results = [
        score_lead(served, p, explain, settings.top_reasons, now, next_steps) for p in payloads
    ]
    for r, p, item in zip(results, payloads, leads, strict=True):
        metrics.scores.labels(r.tier).inc()
        _record(request, r, p, item)
    return BatchResponse(model=served.ref, count=len(results), results=results)


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
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get(
    "/readyz", response_model=Readiness, tags=["operations"], summary="Readiness",
    responses={503: {"model": Readiness, "description": "No model is loaded."}},
)  # fmt: skip
def readyz(holder: Holder, response: Response) -> Readiness:
    """Readiness: a model is loaded (503 with the reason otherwise)."""
    served = holder.current
    if served is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(ready=False, error=holder.error or "loading")
    return Readiness(ready=True, model=served.ref, error=holder.error)


@router.get(
    "/metrics", tags=["operations"], response_class=Response, responses=_errors(401, 403),
    summary="Prometheus metrics",
)  # fmt: skip
def prometheus(_key: AdminKey, metrics: AppMetrics) -> Response:
    """Prometheus metrics: requests and latency by route and status, scores by tier, model."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
