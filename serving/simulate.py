"""A few weeks of the handoff loop, played through the running API (`make demo`).

Marketing automation scores the leads created in the simulated weeks (each once, 1 to 30 days
after creation); every lead the service routes becomes a handoff. Then reps answer:
each rep has a speed (median hours to first touch), a habit of rejecting, favourite rejection
reasons and a share of leads they never answer, drawn once from the seed. A rep is likelier to
accept a lead that really did convert later (reps see signals the model does not), and the
outcomes posted are the source's real ones, up to the simulated "now". Everything goes over
HTTP with the same keys and bodies a real integration would send.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import SecretStr

from leadscore.features.bodies import lead_bodies
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData
from leadscore.features.errors import LeadscoreError
from leadscore.features.feedback import load_handoff_config
from leadscore.serving.settings import Settings

log = logging.getLogger(__name__)
KEY = "simulation-key"
_BATCH = 200


@dataclass(frozen=True)
class Rep:
    """How one rep handles handed-over leads."""

    name: str
    median_hours: float  # to first touch, calendar hours
    reject_rate: float  # for a lead that will not convert
    ignore_rate: float  # never answers
    reasons: dict[str, float]  # rejection reason -> weight (the taxonomy's reasons)


@dataclass
class SimulationResult:
    """What was sent and when the simulation's clock stopped."""

    start: datetime
    now: datetime
    scored: int = 0
    handoffs: int = 0
    feedback: int = 0
    outcomes: int = 0
    reps: list[Rep] = field(default_factory=list)


def make_reps(
    names: Sequence[str], reasons: Sequence[str], rng: np.random.Generator
) -> dict[str, Rep]:
    """One behaviour per rep: some fast and agreeable, some slow and picky."""
    reps = {}
    for name in names:
        weights = rng.dirichlet(np.full(len(reasons), 0.6))
        reps[name] = Rep(
            name=name,
            median_hours=float(rng.choice([1.5, 3.0, 6.0, 20.0, 60.0])),
            reject_rate=float(rng.uniform(0.25, 0.75)),
            ignore_rate=float(rng.choice([0.0, 0.05, 0.15, 0.3])),
            reasons={r: float(w) for r, w in zip(reasons, weights, strict=True)},
        )
    return reps


class Api:
    """A keep-alive HTTP client for the local service."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        """Send one request; raise on anything but 2xx."""
        data = None if body is None else json.dumps(body).encode()
        sent = {"X-API-Key": KEY, "Content-Type": "application/json"} | (headers or {})
        self.conn.request(method, path, body=data, headers=sent)
        response = self.conn.getresponse()
        text = response.read()
        if not 200 <= response.status < 300:
            raise LeadscoreError(f"{method} {path} answered {response.status}: {text[:300]!r}")
        return json.loads(text) if text else None


@contextmanager
def running_service(settings: Settings) -> Iterator[tuple[int, Any]]:
    """The API on a free local port in a background thread; yields (port, app)."""
    import socket

    import uvicorn

    from leadscore.serving.api import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        if not _wait_started(server, thread):
            raise LeadscoreError("the scoring service did not start (see the log above)")
        yield port, app
    finally:
        server.should_exit = True
        thread.join(60)


def _wait_started(server: Any, thread: threading.Thread) -> bool:
    import time

    while thread.is_alive() and not server.started:
        time.sleep(0.02)  # polling uvicorn's own flag: it offers no event to wait on
    return bool(server.started)


def simulate(
    crm: CrmData,
    config: FeatureConfig,
    settings: Settings,
    weeks: int = 4,
    seed: int = 7,
    max_leads: int = 3000,
) -> SimulationResult:
    """Play `weeks` of handoffs on `crm` through the API served with `settings` (its store
    receives the records): the leads created in the source's first `weeks` weeks, answered
    over those weeks and 30 days more, when the simulation's clock stops."""
    rng = np.random.default_rng(seed)
    leads = crm.leads
    start = pd.Timestamp(leads["created_at"].min()).floor("D")
    end = start + pd.Timedelta(weeks=weeks)
    window = leads[(leads["created_at"] >= start) & (leads["created_at"] < end)]
    if window.empty:
        raise LeadscoreError(f"no leads created between {start} and {end} to simulate")
    if len(window) > max_leads:
        window = window.sample(max_leads, random_state=seed).sort_values("created_at")
    now = (end + pd.Timedelta(days=30)).to_pydatetime().replace(tzinfo=UTC)
    result = SimulationResult(start=start.to_pydatetime().replace(tzinfo=UTC), now=now)
    keyed = settings.model_copy(update={"api_keys": SecretStr(f"{KEY}:score+feedback")})
    with running_service(keyed) as (port, app):
        api = Api(port)
        ids = window["lead_id"].astype(str).tolist()
        # automation scores each lead when its activity crosses a trigger: 1 to 30 days in
        days = pd.to_timedelta(rng.uniform(1, 30, len(ids)), unit="D")
        moments = (window["created_at"] + days).tolist()
        result.scored += _score(api, lead_bodies(crm, config, ids, moments))
        recorder = app.state.loop.recorder
        if recorder is None or not recorder.flush(30):
            raise LeadscoreError(f"handoffs were not recorded: {app.state.loop.error}")
        handoffs = _handoffs(api)
        result.handoffs = len(handoffs)
        owners = sorted({h["owner"] or "unassigned" for h in handoffs})
        taxonomy = load_handoff_config(settings.handoff_path)
        reps = make_reps(owners, taxonomy.reason_ids, rng)
        result.reps = list(reps.values())
        truth = _truth(crm.outcomes)
        result.feedback = _answer(api, handoffs, reps, truth, now, rng)
        result.outcomes = _report_outcomes(api, handoffs, truth, now)
    return result


def _score(api: Api, bodies: list[dict[str, Any]]) -> int:
    for start in range(0, len(bodies), _BATCH):
        api.call("POST", "/v1/score/batch?explain=true", {"leads": bodies[start : start + _BATCH]})
    return len(bodies)


def _handoffs(api: Api) -> list[dict[str, Any]]:
    """Every handoff in the queue, page by page."""
    items: list[dict[str, Any]] = []
    while True:
        page = api.call("GET", f"/v1/handoffs?status=all&limit=500&offset={len(items)}")
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def _truth(outcomes: pd.DataFrame) -> dict[str, dict[Any, Any]]:
    frame = outcomes.drop_duplicates("lead_id", keep="last").set_index("lead_id")
    cols = [c for c in ("sql_at", "won_at", "lost_at") if c in frame.columns]
    return {str(k): v for k, v in frame[cols].to_dict("index").items()}


def _stamp(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)).to_pydatetime()


def _answer(
    api: Api,
    handoffs: list[dict[str, Any]],
    reps: dict[str, Rep],
    truth: dict[str, dict[Any, Any]],
    now: datetime,
    rng: np.random.Generator,
) -> int:
    sent = 0
    for h in handoffs:
        rep = reps[h["owner"] or "unassigned"]
        if rng.random() < rep.ignore_rate:
            continue
        handed = datetime.fromisoformat(h["handed_off_at"])
        touch = handed + timedelta(hours=float(rng.lognormal(np.log(rep.median_hours), 0.8)))
        decided = touch + timedelta(hours=float(rng.exponential(24)))
        if decided > now:
            continue  # still working it when the clock stops
        real = truth.get(h["lead_id"], {})
        converts = _stamp(real.get("sql_at")) is not None or _stamp(real.get("won_at")) is not None
        reject = rng.random() < (rep.reject_rate * (0.3 if converts else 1.0))
        body: dict[str, Any] = {
            "disposition": "rejected" if reject else "accepted", "rep": rep.name,
            "first_touch_at": touch.isoformat(), "decided_at": decided.isoformat(),
        }  # fmt: skip
        if reject:
            body["reason"] = str(rng.choice(list(rep.reasons), p=list(rep.reasons.values())))
        key = f"sim-{h['id']}"
        path = f"/v1/leads/{h['lead_id']}/feedback"
        api.call("POST", path, body, {"Idempotency-Key": key})
        sent += 1
    return sent


def _report_outcomes(
    api: Api, handoffs: list[dict[str, Any]], truth: dict[str, dict[Any, Any]], now: datetime
) -> int:
    sent = 0
    for lead_id in sorted({h["lead_id"] for h in handoffs}):
        real = truth.get(lead_id, {})
        dates = {k: _stamp(real.get(k)) for k in ("sql_at", "won_at", "lost_at")}
        known = {k: v.isoformat() for k, v in dates.items() if v is not None and v <= now}
        if known:
            api.call("POST", f"/v1/leads/{lead_id}/outcome", known)
            sent += 1
    return sent
