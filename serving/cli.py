"""`leadscore score`, `serve` and `try-lead`: thin commands over :mod:`leadscore.serving`.

Heavy libraries (pandas, LightGBM, MLflow, uvicorn) are imported inside the commands, so that
`leadscore --help` starts at once; errors are raised and printed as one line by the shared
command group.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from leadscore.features.console import err, note, out, parse_moment
from leadscore.features.errors import LeadscoreError, UsageProblem
from leadscore.features.sql_source import (
    DEFAULT_CHUNKS,
    ChunkRowsOpt,
    EngineOpt,
    MemoryLimitOpt,
)
from leadscore.serving.registry import DEFAULT_MODEL_URI


def score(
    data: Annotated[Path, typer.Option(help="A leadforge bundle or a canonical directory.")],
    out_file: Annotated[
        str,
        typer.Option("--out", help="Parquet file for the scores, or DIR/ for partitioned Parquet."),
    ],
    model: Annotated[
        str, typer.Option(help="Model URI: models:/name@alias, models:/name/N or a path.")
    ] = DEFAULT_MODEL_URI,
    as_of_days: Annotated[
        float | None, typer.Option(help="Score each lead N x 24 h after creation.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Score every lead at one moment, ISO-8601 (default: now).")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--map", help="Column roles of a flat lead file (`leadscore data map`)."),
    ] = None,
    next_steps: Annotated[
        bool,
        typer.Option(
            "--next-steps",
            help="Add each lead's best next step (next_steps.yaml): next_step, "
            "next_step_probability, next_step_gain. One extra scoring pass per step.",
        ),
    ] = False,
    next_steps_file: Annotated[
        Path | None,
        typer.Option(help="The steps to try (default: next_steps.yaml in the config dir)."),
    ] = None,
    engine: EngineOpt = "auto",
    memory_limit: MemoryLimitOpt = None,
    chunk_rows: ChunkRowsOpt = DEFAULT_CHUNKS,
) -> None:
    """Score every open lead; closed or not-yet-created leads go to FILE.excluded.parquet
    (DIR.excluded/ for --out DIR/). On a SQL engine, leads stream through in chunks."""
    from datetime import UTC, datetime

    if as_of_days is not None and as_of is not None:
        raise UsageProblem("give at most one of --as-of-days and --as-of")
    moment = parse_moment(as_of, "--as-of") if as_of else datetime.now(UTC).replace(tzinfo=None)

    from rich.progress import Progress

    from leadscore.features.config import FeatureConfig
    from leadscore.features.sources import load_data
    from leadscore.serving.batch import as_of_for, score_source
    from leadscore.serving.loader import load_scorer
    from leadscore.serving.next_steps import load_next_steps

    if next_steps_file is not None and not next_steps:
        raise UsageProblem("--next-steps-file needs --next-steps")
    steps = load_next_steps(next_steps_file).steps if next_steps else None
    from leadscore.features.engines import choose_engine
    from leadscore.features.sql_source import engine_name

    chosen = choose_engine(engine_name(engine), data)
    if chosen != "local" and steps is not None:
        raise UsageProblem(f"--next-steps runs on the local engine; drop --engine {engine} "
                           "or --next-steps")  # fmt: skip
    note(f"loading {model} ...")
    scorer = load_scorer(model)
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    if chosen != "local":
        _score_on_sql(chosen, data, mapping, config, scorer, as_of_days, moment, out_file,
                      memory_limit, chunk_rows)  # fmt: skip
        return
    note(f"reading {data} ...")
    crm, _ = load_data(data, mapping, config)
    when = as_of_for(crm, as_of_days, moment)
    with Progress(console=err(), transient=True) as progress:
        task = progress.add_task("scoring", total=len(crm.leads))
        result = score_source(crm, scorer, when, lambda n: progress.advance(task, n), steps)
    scores_path, excluded_path = result.write(out_file)
    tiers = ", ".join(f"{t} {n:,}" for t, n in result.tier_counts().items())
    reasons = ", ".join(f"{k}: {v}" for k, v in result.excluded["reason"].value_counts().items())
    scores = result.scores
    console = out()
    console.print(
        f"scored {len(scores):,} leads with {result.model_name or model} version "
        f"{result.version or '?'} -> {scores_path}", markup=False,
    )  # fmt: skip
    console.print(f"tiers: {tiers}; MQLs {int(scores['is_mql'].sum()):,}; "
                  f"stale {int(scores['stale'].sum()):,}", markup=False)  # fmt: skip
    console.print(f"excluded {len(result.excluded):,} -> {excluded_path} ({reasons or 'none'})",
                  markup=False)  # fmt: skip
    if steps is not None:
        best = scores["next_step"].value_counts()
        shown = ", ".join(f"{k} {v:,}" for k, v in best.items())
        none = int(scores["next_step"].isna().sum())
        console.print(f"best next step: {shown or 'none'}; no step raises {none:,} leads",
                      markup=False)  # fmt: skip


def _score_on_sql(
    engine: Any, data: Path, mapping: Path | None, config: Any, scorer: Any,
    as_of_days: float | None, moment: Any, out_file: str, memory_limit: str | None,
    chunk_rows: int,
) -> None:  # fmt: skip
    """`leadscore score` on DuckDB or Spark: streamed, chunk by chunk."""
    import pandas as pd

    from leadscore.features.engines import moments_view
    from leadscore.features.sql_source import sql_source
    from leadscore.serving.batch import score_sql

    with sql_source(engine, data, mapping, config, memory_limit, note) as sql:
        note(f"scoring on {engine} in chunks of {chunk_rows:,} leads ...")
        moments_view(sql, as_of_days, None if as_of_days is not None else pd.Timestamp(moment))
        if engine == "spark":  # scored on the executors, written by Spark as a directory
            from leadscore.serving.batch_spark import score_spark

            result = score_spark(sql, scorer, out_file)  # type: ignore[arg-type]
        else:
            result = score_sql(sql, scorer, out_file, chunk_rows)
    tiers = ", ".join(f"{t} {n:,}" for t, n in result.tier_counts().items())
    reasons = ", ".join(f"{k}: {v}" for k, v in result.excluded.most_common())
    console = out()
    console.print(f"scored {result.scored:,} leads with {result.model_name or '?'} version "
                  f"{result.version or '?'} on {engine} -> {result.scores_path}",
                  markup=False)  # fmt: skip
    console.print(f"tiers: {tiers}; MQLs {result.mqls:,}; stale {result.stale:,}", markup=False)
    console.print(f"excluded {result.excluded.total():,} -> {result.excluded_path} "
                  f"({reasons or 'none'})", markup=False)  # fmt: skip


KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: one per CPU core).")
    ] = None,
) -> None:
    """Run the scoring API (settings from LEADSCORE_* variables; see the docs' API page).

    One worker process per core by default (each scores on its own core; the metrics of all
    of them are added up). Idle keep-alive connections close after 5 s, a request's headers must
    arrive within LEADSCORE_HEADER_TIMEOUT_SECONDS; each worker takes at most
    LEADSCORE_MAX_CONNECTIONS connections at once (503 above).
    """
    import atexit
    import os
    import shutil
    import tempfile

    import uvicorn
    from pydantic import ValidationError

    from leadscore.serving.api.metrics import MULTIPROC_ENV
    from leadscore.serving.auth import KeyRing
    from leadscore.serving.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"LEADSCORE_{str(e['loc'][0]).upper()}: {e['msg']}"
                             for e in exc.errors())  # fmt: skip
        raise UsageProblem(f"bad service settings: {problems}") from None
    secret = settings.api_keys.get_secret_value() if settings.api_keys else None
    KeyRing.from_sources(secret, settings.api_keys_file)  # bad keys stop here, not at start-up
    workers = workers or os.cpu_count() or 1
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # each worker is a process: Prometheus metrics are added up across them from files
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="leadscore-metrics-")
        atexit.register(shutil.rmtree, os.environ[MULTIPROC_ENV], ignore_errors=True)
    note(f"serving {settings.model_uri} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "leadscore.serving.api:create_app", factory=True, host=host, port=port, workers=workers,
        timeout_keep_alive=KEEP_ALIVE_SECONDS, limit_concurrency=settings.max_connections,
        http=_http_protocol(),
    )  # fmt: skip


def _http_protocol() -> str:
    """httptools with a deadline for request headers (`uvicorn[standard]`); uvicorn's own
    choice when httptools is missing (then nothing bounds slow headers but the connection
    limit)."""
    try:
        from leadscore.serving.api.server import PROTOCOL
    except ImportError:
        return "auto"
    return PROTOCOL


class ServiceError(LeadscoreError):
    """The local service started by `try-lead` could not answer."""


def try_lead(
    lead: Annotated[Path, typer.Option(help="A lead body (e.g. from `leadscore data lead`).")],
    explain: Annotated[bool, typer.Option(help="Ask for reasons.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the service.")] = 120,
) -> None:
    """Start the service on a free local port, score one lead over HTTP, print the answer, stop.

    A smoke check of a deployment's settings (LEADSCORE_* variables) and the `make demo` step.
    If the service cannot load a model, it says why (from /readyz) at once.
    """
    import json
    import os
    import secrets
    import sys

    try:
        body = lead.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"--lead {lead}: cannot read it ({exc.strerror})") from None
    key = os.environ.get("LEADSCORE_DEMO_KEY") or f"demo-{secrets.token_hex(8)}"
    env = os.environ | {"LEADSCORE_API_KEYS": f"{key}:score+admin"}
    port = _free_port()
    cmd = [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(server, base, timeout, key)
        status, answer = _post(f"{base}/v1/score?explain={str(explain).lower()}", body, key)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    note(f"POST {base}/v1/score -> {status} (key {key})")
    if status == 422:
        problems = answer.get("detail") or []
        raise ServiceError("\n".join(
            f"{lead}: invalid lead: {'.'.join(map(str, p['loc'][1:])) or 'body'}: {p['msg']}"
            for p in problems
        ))  # fmt: skip
    if status != 200:
        raise ServiceError(f"the service answered {status}: {json.dumps(answer)[:300]}")
    typer.echo(json.dumps(answer, indent=2))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(server: subprocess.Popen[bytes], base: str, timeout: float, key: str) -> None:
    """Poll /readyz until a model is served; fail at once when the service says it cannot load
    one, or when it exits. `key` has the admin scope: /readyz then gives the reason in full."""
    import json
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline
        reason = None
        try:
            ready = urllib.request.Request(f"{base}/readyz", headers={"X-API-Key": key})
            with urllib.request.urlopen(ready, timeout=2) as r:
                if json.loads(r.read()).get("ready"):
                    return
        except urllib.error.HTTPError as exc:  # 503: not ready, with the reason
            reason = json.loads(exc.read() or b"{}").get("error")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        if reason and reason != "loading":
            raise ServiceError(f"the service cannot serve a model: {reason}")
        if server.poll() is not None:
            text = server.stderr.read().decode(errors="replace") if server.stderr else ""
            last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
            raise ServiceError(f"the service exited ({server.returncode}): {last[0][:300]}")
        if time.monotonic() > deadline:
            raise ServiceError(f"the service was not ready after {timeout:g} s")
        time.sleep(0.2)


def _post(url: str, body: bytes, key: str) -> tuple[int, dict[str, Any]]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


# ---------------------------------------------------------------------------------------------
# the handoff loop: the store, the report, exports, the demo's reps

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="LEADSCORE_STORE_URL",
                 help="The handoff store (default sqlite:///leadscore.db)."),
]  # fmt: skip
store_app = typer.Typer(help="The handoff store: schema upgrades and status.", no_args_is_help=True)
handoff_app = typer.Typer(
    help="The handoff loop: export verdicts, import outcomes, play the demo's reps.",
    no_args_is_help=True,
)
report_app = typer.Typer(help="Reports for people: the handoff leak.", no_args_is_help=True)


def _store_url(store: str | None) -> str:
    from leadscore.serving.store import DEFAULT_STORE_URL

    return store or DEFAULT_STORE_URL


@store_app.command("upgrade")
def store_upgrade(store: StoreOpt = None) -> None:
    """Create the store or migrate it to this version's schema (the service does this at
    start-up unless LEADSCORE_STORE_MIGRATE=false)."""
    from leadscore.serving.store.db import connect, current_revision, head_revision, migrate

    engine = connect(_store_url(store))
    before = current_revision(engine)
    migrate(engine)
    out().print(f"store schema {before or 'empty'} -> {head_revision(engine)}", markup=False)


@store_app.command("status")
def store_status(store: StoreOpt = None) -> None:
    """The store's schema revision and how many handoffs wait, are breached or answered."""
    from datetime import UTC, datetime

    from leadscore.serving.store import HandoffStore

    handoffs = HandoffStore.open(_store_url(store), upgrade=False)
    gauges = handoffs.gauges(datetime.now(UTC))
    answered = sum(sum(c.values()) for c in gauges["by_tier"].values())
    out().print(
        f"waiting {gauges['waiting']:,} (breached {gauges['breached']:,}); "
        f"answered {answered:,}", markup=False,
    )  # fmt: skip


@handoff_app.command("export-feedback")
def export_feedback(
    out_file: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write.")],
    store: StoreOpt = None,
) -> None:
    """Each handed-over lead's latest verdict, as the feedback file that `criteria report
    --feedback` and `train --exclude-feedback` read."""
    from leadscore.features.feedback import write_feedback
    from leadscore.serving.store import HandoffStore

    frame = HandoffStore.open(_store_url(store)).export_feedback()
    write_feedback(frame, out_file)
    counts = frame["disposition"].value_counts().to_dict()
    note(f"wrote {len(frame):,} verdicts ({counts}) -> {out_file}")


@handoff_app.command("import-outcomes")
def import_outcomes(
    data: Annotated[Path, typer.Option(help="A source with outcomes (bundle, canonical, CRM).")],
    store: StoreOpt = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--map", help="Column roles of a flat lead file (`leadscore data map`)."),
    ] = None,
) -> None:
    """Outcome dates (SQL, won, lost) of every handed-over lead found in a source."""
    from datetime import UTC, datetime

    from leadscore.features.sources import load_data
    from leadscore.serving.store import HandoffStore

    crm, _ = load_data(data, mapping, None)
    count = HandoffStore.open(_store_url(store)).import_outcomes(
        crm.outcomes, f"import:{data.name}", datetime.now(UTC)
    )
    note(f"outcomes of {count:,} handed-over leads updated from {data}")


@handoff_app.command("simulate")
def simulate_reps(
    data: Annotated[Path, typer.Option(help="A source to play (e.g. the demo's fresh bundle).")],
    store: StoreOpt = None,
    model: Annotated[str, typer.Option(help="Model URI to serve.")] = DEFAULT_MODEL_URI,
    weeks: Annotated[int, typer.Option(min=1, max=26, help="Weeks of handoffs.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the reps' behaviour.")] = 7,
    max_leads: Annotated[int, typer.Option(min=1, help="At most this many leads.")] = 3000,
) -> None:
    """Play weeks of reps answering handoffs through the running API (the demo; into a store
    of its own, e.g. --store sqlite:///data/demo/handoffs.db). Prints the clock's end, which
    `report handoff --now` takes."""
    import time

    from leadscore.features.config import FeatureConfig
    from leadscore.features.sources import load_data
    from leadscore.serving.loader import load_scorer
    from leadscore.serving.settings import Settings
    from leadscore.serving.simulate import simulate

    started = time.perf_counter()
    scorer = load_scorer(model)
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    crm, _ = load_data(data, None, config)
    settings = Settings(model_uri=model, store_url=_store_url(store), record="routed")
    result = simulate(crm, config, settings, weeks, seed, max_leads)
    note(
        f"played {weeks} weeks ({result.start:%Y-%m-%d} to {result.now:%Y-%m-%d}) in "
        f"{time.perf_counter() - started:.1f} s: {result.scored:,} scores, "
        f"{result.handoffs:,} handoffs, {len(result.reps)} reps, {result.feedback:,} verdicts, "
        f"{result.outcomes:,} outcomes"
    )
    typer.echo(result.now.isoformat())


@report_app.command("handoff")
def report_handoff(
    store: StoreOpt = None,
    since: Annotated[
        str, typer.Option(help="Handoffs since: a duration back from --now (90d, 12w) or a date.")
    ] = "90d",
    now: Annotated[
        str | None, typer.Option(help="The report's moment, ISO-8601 (default: now).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as one HTML file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    brief: Annotated[
        bool, typer.Option(help="Print only the headline (the tables go to --html, --json).")
    ] = False,
    sla_file: Annotated[
        Path | None, typer.Option(envvar="LEADSCORE_SLA_FILE", help="SLA file (sla.yaml).")
    ] = None,
    handoff_file: Annotated[
        Path | None,
        typer.Option(envvar="LEADSCORE_HANDOFF_FILE", help="Rejection reasons (handoff.yaml)."),
    ] = None,
    criteria_file: Annotated[
        Path | None,
        typer.Option(envvar="LEADSCORE_CRITERIA_FILE", help="The current SQL criteria."),
    ] = None,
) -> None:
    """The handoff leak: acceptance rate, time to first action, leaked handoffs and the shared
    definition against the industry's numbers, then acceptance and conversion by tier, source,
    owner, criteria verdict and model version. Definitions are printed under it."""
    import json
    from datetime import UTC, datetime

    from leadscore.features.feedback import load_handoff_config
    from leadscore.serving.sla import calendar_for, load_sla
    from leadscore.serving.store import HandoffStore
    from leadscore.serving.store.report import (
        build_report,
        headline,
        render_html,
        render_text,
    )

    moment = parse_moment(now, "--now").replace(tzinfo=UTC) if now else datetime.now(UTC)
    start = _since(since, moment)
    sla = load_sla(sla_file)
    handoffs, outcomes = HandoffStore.open(_store_url(store), upgrade=False).frames(start)
    report = build_report(
        handoffs, outcomes, now=moment, since=start,
        current_criteria_version=_criteria_version(criteria_file),
        business_hours=lambda owner, a, b: calendar_for(sla, owner).between(a, b),
        dispositioned_within_days=sla.dispositioned_within_days,
        taxonomy=load_handoff_config(handoff_file),
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif brief:
        typer.echo("\n".join(headline(report)) or f"no handoffs since {start:%Y-%m-%d}")
    else:
        typer.echo(render_text(report))
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(report), encoding="utf-8")
        note(f"wrote {html}")


def _since(text: str, now: Any) -> Any:
    """--since: `90d`, `12w`, `36h` back from `now`, or an ISO date (from its start: a period
    since a day holds that day, unlike an as-of moment, which a date alone ends) or date-time."""
    from datetime import UTC, datetime, time, timedelta

    from leadscore.features.schema import date_only_moment

    units = {"d": "days", "w": "weeks", "h": "hours"}
    number, unit = text[:-1], text[-1:].lower()
    if unit in units and number.replace(".", "", 1).isdigit():
        return now - timedelta(**{units[unit]: float(number)})
    day = date_only_moment(text)
    if day is not None:
        return datetime.combine(day.date(), time.min, UTC)
    return parse_moment(text, "--since").replace(tzinfo=UTC)


def _criteria_version(path: Path | None) -> str:
    """The version written in the criteria file (no feature config needed to read it)."""
    from leadscore.features.criteria.rules import default_criteria_path
    from leadscore.features.yamlfile import parse_yaml, read_text

    file = path or default_criteria_path()
    data, _ = parse_yaml(read_text(file, "criteria file"), str(file))
    version = data.get("version") if isinstance(data, dict) else None
    if version is None:
        raise UsageProblem(f"{file}: no `version:` (the report compares scores against it)")
    return str(version)
