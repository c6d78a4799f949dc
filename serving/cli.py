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
from leadscore.serving.registry import DEFAULT_MODEL_URI


def score(
    data: Annotated[Path, typer.Option(help="A leadforge bundle or a canonical directory.")],
    out_file: Annotated[Path, typer.Option("--out", help="Parquet file for the scores.")],
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
) -> None:
    """Score every open lead; closed or not-yet-created leads go to FILE.excluded.parquet."""
    from datetime import UTC, datetime

    if as_of_days is not None and as_of is not None:
        raise UsageProblem("give at most one of --as-of-days and --as-of")
    moment = parse_moment(as_of, "--as-of") if as_of else datetime.now(UTC).replace(tzinfo=None)

    from rich.progress import Progress

    from leadscore.features.config import FeatureConfig
    from leadscore.features.sources import load_data
    from leadscore.serving.batch import as_of_for, score_source
    from leadscore.serving.loader import load_scorer

    note(f"loading {model} ...")
    scorer = load_scorer(model)
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    note(f"reading {data} ...")
    crm, _ = load_data(data, mapping, config)
    when = as_of_for(crm, as_of_days, moment)
    with Progress(console=err(), transient=True) as progress:
        task = progress.add_task("scoring", total=len(crm.leads))
        result = score_source(crm, scorer, when, lambda n: progress.advance(task, n))
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


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the scoring API (settings from LEADSCORE_* variables; see the docs' API page)."""
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
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # each worker is a process: Prometheus metrics are added up across them from files
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="leadscore-metrics-")
        atexit.register(shutil.rmtree, os.environ[MULTIPROC_ENV], ignore_errors=True)
    note(f"serving {settings.model_uri} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "leadscore.serving.api:create_app", factory=True, host=host, port=port, workers=workers
    )


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
    cmd = [sys.executable, "-m", "leadscore", "serve", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(server, base, timeout)
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


def _wait_ready(server: subprocess.Popen[bytes], base: str, timeout: float) -> None:
    """Poll /readyz until a model is served; fail at once when the service says it cannot load
    one, or when it exits."""
    import json
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline
        reason = None
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
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
