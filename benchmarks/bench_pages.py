"""The rep's lead card: server time of ``GET /app/leads/{id}``, against the scoring it shows.

Both are measured in-process through the ASGI app (``httpx.ASGITransport``, the app's lifespan
run; no sockets, no client process), one request at a time, interleaved card / reference /
card / reference..., after a warm-up. The lead is the synthetic example (about 20 events),
routed to sales and recorded once by scoring it, then signed in to as its rep.

* **Card**: ``GET /app/leads/{id}`` with the rep's session cookie: the store read and the page
  rendered from what was recorded.
* **Reference**: ``POST /v1/score?explain=true`` of the same lead body, the scoring work the
  card's content derives from (probability, reasons, criteria, action), on a second app serving
  the same model with recording off (so that a write behind each reference score does not
  compete with the card for the interpreter).
* **Reference with next steps**: the same with ``&next_steps=true``: the card also tries the
  playbook's steps on the stored lead with the served model, so this is all the model work the
  card does; what the card costs beyond it is the store read and the template.

The issue's target is a card under 50 ms (p99); it and the ratio are reported, never asserted.
Checks (the exit status is 1 when one fails): every request answered 200, each card names the
lead and shows the top reason the reference gives, and every reference score is the same.

    python benchmarks/bench_pages.py            # about half a minute
    python benchmarks/bench_pages.py --smoke    # a few seconds, for the tests
"""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import httpx
from http_load import Workspace

from leadscore.serving.api import create_app
from leadscore.serving.examples import synthetic_example
from leadscore.serving.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SCORE_KEY, REP_KEY = "bench-score-key", "bench-rep-key"
REP = "rep_bench"
LEAD_ID = "lead-bench-card"
CARD_TARGET_MS = 50.0
# https: the session cookie reaches the app whether or not it is marked Secure
BASE = "https://testserver"
REFERENCES = {  # name in the result -> the request, POSTed with the card's lead body
    "score_explain": "/v1/score?explain=true",
    "score_next_steps": "/v1/score?explain=true&next_steps=true",
}


def lead_body() -> dict[str, Any]:
    """The synthetic example lead (about 20 events; it routes to sales), owned by the rep."""
    body = synthetic_example()
    body["lead"] |= {"lead_id": LEAD_ID, "owner": REP}
    return body


def settings(model: Path, store: str, record: str) -> Settings:
    """The service's settings for the benchmark: the model, a store, the two keys."""
    return Settings(
        model_uri=str(model), store_url=store, record=record,
        api_keys=f"{SCORE_KEY}:score,{REP_KEY}:rep={REP}",
        reload_interval_seconds=3600,
    )  # fmt: skip


async def timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> tuple[
    float, httpx.Response
]:  # fmt: skip
    """One request; its seconds and its response."""
    t0 = time.perf_counter()
    response = await client.request(method, url, **kw)
    return time.perf_counter() - t0, response


def card_problems(response: httpx.Response, top_sentence: str) -> list[str]:
    """What is wrong with one card response: its status, or a missing lead id or top reason."""
    if response.status_code != 200:
        return [f"card: HTTP {response.status_code}: {response.text[:200]!r}"]
    problems = []
    if LEAD_ID not in response.text:
        problems.append(f"card: the page does not name the lead {LEAD_ID!r}")
    if html.escape(top_sentence, quote=False) not in response.text:
        problems.append(f"card: the top reason {top_sentence!r} is not on the page")
    return problems


def top_reason(score: dict[str, Any]) -> str:
    """The sentence of the strongest reason of a score (the first positive one, else the first
    negative one)."""
    reasons = score["reasons"]
    first = (reasons["positive"] or reasons["negative"])[0]
    return str(first["sentence"])


async def measure(args: argparse.Namespace, model: Path, ws: Workspace) -> dict[str, Any]:
    """Seed the card, sign in, then the interleaved timed requests; the result document."""
    cards = create_app(settings(model, f"sqlite:///{ws.root / 'cards.db'}", "routed"))
    scoring = create_app(settings(model, f"sqlite:///{ws.root / 'scores.db'}", "none"))
    body = lead_body()
    problems: Counter[str] = Counter()  # the same fault on every request is one line
    async with (
        cards.router.lifespan_context(cards),
        scoring.router.lifespan_context(scoring),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=cards), base_url=BASE) as rep,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=scoring), base_url=BASE,
                          headers={"X-API-Key": SCORE_KEY}) as scorer,
    ):  # fmt: skip
        seeded = await rep.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
        if seeded.status_code != 200:
            raise RuntimeError(f"scoring the card's lead failed: HTTP {seeded.status_code}")
        action = seeded.json()["recommended_action"]["action"]
        if action != "route_to_sales":
            raise RuntimeError(f"the example lead was not routed to sales ({action})")
        if not cards.state.loop.recorder.flush(10):
            raise RuntimeError("the handoff was not written within 10 s")
        login = await rep.post("/app/login", data={"api_key": REP_KEY})
        if login.status_code not in (200, 303) or "leadscore_session" not in rep.cookies:
            raise RuntimeError(f"signing in failed: HTTP {login.status_code}: {login.text[:200]}")
        card_url = f"/app/leads/{LEAD_ID}"
        top = top_reason(seeded.json())
        samples: dict[str, list[float]] = {name: [] for name in ("card", *REFERENCES)}
        probabilities = set()
        for i in range(args.warmup + args.requests):
            card_s, card = await timed(rep, "GET", card_url)
            problems.update(card_problems(card, top))
            if i >= args.warmup:
                samples["card"].append(card_s)
            for name, url in REFERENCES.items():
                score_s, score = await timed(scorer, "POST", url, json=body)
                if score.status_code != 200:
                    problems[f"{name}: HTTP {score.status_code}: {score.text[:200]!r}"] += 1
                else:
                    probabilities.add(score.json()["mql_probability"])
                if i >= args.warmup:
                    samples[name].append(score_s)
        if len(probabilities) > 1:
            problems[f"reference: the same lead scored {len(probabilities)} ways"] += 1
    result: dict[str, Any] = {"lead": {"lead_id": LEAD_ID, "events": len(body["events"])}}
    for name, seconds in samples.items():
        result[name] = common.percentiles(seconds, "ms") | {"requests": len(seconds)}
    result["problems"] = [p if n == 1 else f"{p} ({n} requests)" for p, n in problems.items()]
    return result


def ratios_of(result: dict[str, Any]) -> dict[str, float]:
    """The card over each reference, at p50 and p99."""
    card = result["card"]
    return {f"card_{p}_over_{name}": card[f"{p}_ms"] / result[name][f"{p}_ms"]
            for name in REFERENCES for p in ("p50", "p99")}  # fmt: skip


def run(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    """Build or take the model, measure; the result document and the problems."""
    started = time.perf_counter()
    model = args.model_dir.resolve() if args.model_dir else toy_model(ws)
    try:
        measured = asyncio.run(measure(args, model, ws))
    except ExceptionGroup as group:  # the app's lifespan task group wraps what we raise
        raise first_leaf(group) from None
    problems = measured.pop("problems")
    card_p99 = measured["card"]["p99_ms"]
    result = {
        "smoke": args.smoke, "model": str(model),
        "load": {"requests": args.requests, "warmup": args.warmup, "concurrency": 1,
                 "client": "httpx.ASGITransport in-process, card and references interleaved"},
        **measured, "ratios": ratios_of(measured),
        "target": {"card_p99_ms": CARD_TARGET_MS, "met": card_p99 < CARD_TARGET_MS},
        "seconds": time.perf_counter() - started,
    }  # fmt: skip
    return result, problems


def first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first exception inside a (nested) exception group."""
    first = group.exceptions[0]
    return first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def toy_model(ws: Workspace) -> Path:
    """The test suite's toy scorer (trained in about a second), saved in the workspace."""
    sys.path.insert(0, str(ROOT))  # tests/ is a package of the checkout, not installed
    from tests.serving.leads import build_toy_model

    return build_toy_model(ws.root / "model")


def print_report(result: dict[str, Any]) -> None:
    """The table, the ratios and the target."""
    print(f"\nlead card of {result['lead']['lead_id']} ({result['lead']['events']} events), "
          f"{result['load']['requests']} requests each after {result['load']['warmup']} "
          "warm-up, in-process, interleaved")  # fmt: skip
    common.print_table(
        [("request", 52), ("p50 ms", 9, ".2f"), ("p99 ms", 9, ".2f"), ("mean ms", 9, ".2f")],
        [(label, result[k]["p50_ms"], result[k]["p99_ms"], result[k]["mean_ms"])
         for k, label in (("card", "GET /app/leads/{id}"),
                          *((name, f"POST {url}") for name, url in REFERENCES.items()))],
    )  # fmt: skip
    common.print_ratios(result["ratios"], {})
    target = result["target"]
    print(f"\ncard p99 {result['card']['p99_ms']:.2f} ms, target under {target['card_p99_ms']:g}"
          f" ms: {'PASS' if target['met'] else 'MISS'}")  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="small counts for the tests (seconds)")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/pages.json")
    p.add_argument("--requests", type=int, default=400, help="timed requests of each kind")
    p.add_argument("--warmup", type=int, default=40, help="untimed requests of each kind first")
    p.add_argument(
        "--model-dir", type=Path, help="serve this leadscore model directory (default: a toy model)"
    )
    p.add_argument("--work", type=Path, help="scratch directory (kept; default: a temp dir)")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.warmup = 30, 5
    if args.requests < 1 or args.warmup < 0:
        p.error("--requests must be at least 1 and --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report, write the JSON; 1 when a check fails."""
    args = parse_args(argv)
    outcome = Workspace.run_in(args.work, "bench_pages-", lambda ws: run(args, ws))
    if outcome is None:
        return 1
    result, problems = outcome
    return common.conclude(
        result, problems, ("fastapi", "starlette", "jinja2", "httpx", "sqlalchemy"),
        args.json_out, print_report,
        "checks pass: every request answered 200; each card names the lead and shows the top "
        "reason of the reference's score",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
