"""`leadscore score`: batch scoring of every open lead of a source."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress

from features.config import FeatureConfig
from features.contract import DataContractError
from features.labels import ALREADY_LOST, ALREADY_WON
from features.snapshot import as_of_after_creation, snapshot
from features.sources import load_source
from serving.loader import DEFAULT_MODEL_URI, load_scorer
from serving.runtime import ScorerError

console = Console(stderr=True, soft_wrap=True)  # errors stay on one line: greppable
CHUNK = 50_000


def _closed(outcomes: pd.DataFrame, as_of: pd.Series, lead_ids: pd.Series) -> pd.Series:
    """Why a lead is not a scoring case at its as_of (won or lost already), else missing."""
    by_lead = outcomes.set_index("lead_id")
    won = (
        lead_ids.map(by_lead["won_at"])
        if "won_at" in by_lead
        else pd.Series(pd.NaT, index=lead_ids.index)
    )
    lost = (
        lead_ids.map(by_lead["lost_at"])
        if "lost_at" in by_lead
        else pd.Series(pd.NaT, index=lead_ids.index)
    )
    reason = pd.Series(pd.NA, index=lead_ids.index, dtype="string")
    reason[(lost <= as_of).to_numpy()] = ALREADY_LOST
    reason[(won <= as_of).to_numpy()] = ALREADY_WON
    return reason


def score(
    data: Annotated[Path, typer.Option(help="A leadforge bundle or a canonical directory.")],
    out: Annotated[Path, typer.Option(help="Parquet file for the scores.")],
    model: Annotated[
        str, typer.Option(help="Model URI: models:/name@alias, models:/name/N or a path.")
    ] = DEFAULT_MODEL_URI,
    as_of_days: Annotated[
        float | None, typer.Option(help="Score each lead N x 24 h after creation.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Score every lead at one moment (default: now).")
    ] = None,
) -> None:
    """Score every open lead; closed or not-yet-created leads go to FILE.excluded.parquet."""
    if as_of_days is not None and as_of is not None:
        console.print("[red]error:[/] give at most one of --as-of-days and --as-of")
        raise typer.Exit(code=2)
    try:
        scorer = load_scorer(model)
        config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
        crm = load_source(data, config)
    except (ScorerError, DataContractError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    leads = crm.leads
    if as_of_days is not None:
        when = as_of_after_creation(leads, as_of_days)
    else:
        moment = pd.Timestamp(as_of) if as_of else pd.Timestamp(datetime.now(UTC))
        moment = moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment
        when = pd.Series(moment, index=leads.index)
    reason = _closed(crm.outcomes, when, leads["lead_id"])
    reason[(leads["created_at"] > when).to_numpy()] = "not_created_yet"
    excluded = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": when, "reason": reason})
    excluded = excluded[excluded["reason"].notna()]
    open_mask = reason.isna().to_numpy()
    crm.leads = leads[open_mask].reset_index(drop=True)
    when = when[open_mask].reset_index(drop=True)
    parts = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=len(crm.leads))
        rows = snapshot(crm, scorer.spec, when)
        for start in range(0, len(rows), CHUNK):
            parts.append(scorer.score_frame(rows.iloc[start : start + CHUNK]))
            progress.advance(task, min(CHUNK, len(rows) - start))
    scores = pd.concat(parts, ignore_index=True) if parts else scorer.score_frame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out, index=False)
    excluded_path = out.with_suffix(".excluded.parquet")
    excluded.to_parquet(excluded_path, index=False)
    tiers = scores["tier"].value_counts().reindex(["A", "B", "C", "D"]).fillna(0).astype(int)
    tier_text = ", ".join(f"{t} {n:,}" for t, n in tiers.items())
    reasons = ", ".join(f"{k}: {v}" for k, v in excluded["reason"].value_counts().items())
    typer.echo(
        f"scored {len(scores):,} leads with {scorer.meta.get('model_name', model)} "
        f"version {scorer.meta.get('version', '?')} -> {out}\n"
        f"tiers: {tier_text}; MQLs {int(scores['is_mql'].sum()):,}; "
        f"stale {int(scores['stale'].sum()):,}\n"
        f"excluded {len(excluded):,} -> {excluded_path} ({reasons or 'none'})"
    )


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the scoring API (settings from LEADSCORE_* variables; README "Scoring API")."""
    import atexit
    import os
    import shutil
    import tempfile

    import uvicorn
    from pydantic import ValidationError

    from serving.api.metrics import MULTIPROC_ENV
    from serving.auth import KeyConfigError, KeyRing
    from serving.settings import Settings

    try:
        settings = Settings()
        secret = settings.api_keys.get_secret_value() if settings.api_keys else None
        KeyRing.from_sources(secret, settings.api_keys_file)
    except (ValidationError, KeyConfigError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # each worker is a process: Prometheus metrics are added up across them from files
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="leadscore-metrics-")
        atexit.register(shutil.rmtree, os.environ[MULTIPROC_ENV], ignore_errors=True)
    console.print(f"serving {settings.model_uri} on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "serving.api:create_app", factory=True, host=host, port=port, workers=workers
    )


def try_lead(
    lead: Annotated[Path, typer.Option(help="A lead body (e.g. from `leadscore data lead`).")],
    explain: Annotated[bool, typer.Option(help="Ask for reasons.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the service.")] = 120,
) -> None:
    """Start the service on a free local port, score one lead over HTTP, print the answer, stop.

    A smoke check of a deployment's settings (LEADSCORE_* variables) and the `make demo` step.
    """
    import json
    import os
    import secrets
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = os.environ.get("LEADSCORE_DEMO_KEY") or f"demo-{secrets.token_hex(8)}"
    env = os.environ | {"LEADSCORE_API_KEYS": f"{key}:score+admin"}
    cmd = [sys.executable, "-m", "leadscore", "serve", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:  # bounded poll until the model is loaded
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if json.loads(r.read()).get("ready"):
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                err = server.stderr.read().decode() if server.stderr and server.poll() else ""
                console.print(f"[red]error:[/] the service did not become ready\n{err[-2000:]}")
                raise typer.Exit(code=1)
            time.sleep(0.25)
        request = urllib.request.Request(
            f"{base}/v1/score?explain={str(explain).lower()}", data=lead.read_bytes(),
            headers={"X-API-Key": key, "Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, answer = r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, json.loads(exc.read() or b"{}")
        console.print(f"POST {base}/v1/score -> {status} (key {key})")
        typer.echo(json.dumps(answer, indent=2))
        if status != 200:
            raise typer.Exit(code=1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
