"""The handoff store's speed: feedback writes through the API, and what recording costs scoring.

Each measurement is set against a reference timed in the same run, interleaved with it, by the
same load client as the serving benchmark (``http_load.py``; keep-alive ``http.client``
connections from threads). The service is ``leadscore serve --workers 1`` serving a toy model
(scoring is not what is measured here).

* **Feedback writes**: handoffs are recorded directly with ``HandoffStore.record``, then each
  gets one verdict, ``POST /v1/leads/{id}/feedback`` with its own ``Idempotency-Key``: at
  concurrency 1 (p50, p99) and 4 (records/s), on SQLite and on PostgreSQL (a fresh database made
  from ``LEADSCORE_TEST_PG_URL``, dropped afterwards; skipped, with the reason, when it cannot be
  reached). Reference: the floor of a durable write, the same number of one-row inserts each
  committed on its own by the raw driver in-process (``sqlite3`` configured as the store's
  engine: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``; ``psycopg`` in autocommit). Between
  the two, to show where the time goes: the same verdicts written by calling
  ``HandoffStore.add_feedback`` in-process (the route's store call, without HTTP).
* **Recording**: ``POST /v1/score`` of leads that route, each with its own lead id, at
  concurrency 1 on two servers that differ only in ``LEADSCORE_RECORD`` (``routed`` and
  ``none``), runs alternating A/B/A/B...; p50, p99 and the on/off ratio.

Checks (the exit status is 1 when one fails, never on a ratio): every acknowledged verdict is
in the store under its lead and key (and nothing else is), the reference wrote what it was
asked to, the recording server's store holds exactly one handoff per distinct routed lead it
scored, and the other none.

    python benchmarks/bench_handoffs.py            # 3-4 minutes on 2 cores
    python benchmarks/bench_handoffs.py --smoke    # well under a minute, for the tests
    python benchmarks/bench_handoffs.py --no-postgres
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import os
import secrets
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import http_load
from http_load import BIN, Load, Server, Workspace

from leadscore.serving.examples import synthetic_example
from leadscore.serving.store import HandoffStore
from leadscore.serving.store.store import ROUTED, FeedbackInput, ScoreRecord

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://leadscore:leadscore@127.0.0.1:5432/leadscore_test"
API_KEY = "bench-handoffs-key"
CONCURRENCY = 4
SCORE_PATH = "/v1/score"
HANDED_OFF_AT = datetime(2026, 3, 2, 14, tzinfo=UTC)

# ---------------------------------------------------------------------------------------------
# feedback through the API


@dataclass(frozen=True)
class Verdict:
    """One feedback request: the lead, its idempotency key and the JSON body."""

    lead_id: str
    key: str
    body: bytes

    @property
    def path(self) -> str:
        """The route it is posted to."""
        return f"/v1/leads/{self.lead_id}/feedback"


@dataclass(frozen=True)
class Ack:
    """A verdict the service acknowledged (201) and the id it said it stored it under."""

    lead_id: str
    key: str
    feedback_id: int


def verdicts(backend: str, lead_ids: Sequence[str]) -> list[Verdict]:
    """One verdict per lead, every third a rejection with a reason; keys unique in the run."""
    out = []
    for i, lead in enumerate(lead_ids):
        body: dict[str, Any] = {"disposition": "accepted", "rep": f"rep_{i % 7}"}
        if i % 3 == 2:
            body = {"disposition": "rejected", "reason": "no_budget", "rep": f"rep_{i % 7}"}
        out.append(Verdict(lead, f"{backend}-{lead}", json.dumps(body).encode()))
    return out


def prerecord(store: HandoffStore, lead_ids: Sequence[str]) -> None:
    """A routed handoff for each lead, written directly into the store (one transaction)."""
    store.record([
        ScoreRecord(lead_id=lead, handed_off_at=HANDED_OFF_AT, scored_at=HANDED_OFF_AT,
                    action="route_to_sales", tier="A", probability=0.5,
                    due_at=HANDED_OFF_AT + timedelta(hours=4))
        for lead in lead_ids
    ])  # fmt: skip


def post_verdicts(port: int, sent: Sequence[Verdict], concurrency: int) -> tuple[Load, list[Ack]]:
    """Post each verdict once from `concurrency` threads (``http_load.run_requests``), each with
    its own path and Idempotency-Key; the latencies and what was acknowledged."""
    acks: list[Ack] = []  # appended from several threads: list.append is atomic

    def ask(client: http_load.Client, i: int) -> tuple[str, int, bytes]:
        verdict = sent[i]
        client.headers["Idempotency-Key"] = verdict.key  # this thread's connection only
        return (verdict.path, *client.request("POST", verdict.path, verdict.body))

    def check(i: int, status: int, data: bytes) -> str | None:
        if status != 201:
            return f"HTTP {status}: {data[:200]!r}"
        verdict = sent[i]
        acks.append(Ack(verdict.lead_id, verdict.key, int(json.loads(data)["id"])))
        return None

    load = http_load.run_requests(
        port, len(sent), concurrency, ask, check, {"X-API-Key": API_KEY}
    )
    return load, acks


def stored_feedback(store: HandoffStore) -> dict[int, tuple[str, str | None]]:
    """Every feedback record in the store: id -> (lead id, idempotency key)."""
    from sqlalchemy import select

    from leadscore.serving.store.tables import Feedback

    with store.engine.connect() as conn:
        rows = conn.execute(select(Feedback.id, Feedback.lead_id, Feedback.idempotency_key))
        return {int(i): (lead, key) for i, lead, key in rows}


def agreement_problems(
    backend: str, acked: Sequence[Ack], stored: Mapping[int, tuple[str, str | None]]
) -> list[str]:
    """Each acknowledged verdict must be stored under the id, lead and key it was acknowledged
    with, and the store must hold nothing that was not acknowledged."""
    problems = []
    for ack in acked:
        row = stored.get(ack.feedback_id)
        if row is None:
            problems.append(
                f"{backend}: acknowledged feedback {ack.feedback_id} (lead {ack.lead_id!r}) "
                "is not in the store"
            )
        elif row != (ack.lead_id, ack.key):
            problems.append(
                f"{backend}: feedback {ack.feedback_id} is stored for lead {row[0]!r} key "
                f"{row[1]!r}, but was acknowledged for lead {ack.lead_id!r} key {ack.key!r}"
            )
    extra = sorted(set(stored) - {a.feedback_id for a in acked})
    if extra:
        problems.append(
            f"{backend}: {len(extra)} stored feedback records were never acknowledged "
            f"(ids {extra[:5]})"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# the floor of a durable write: one row per commit with the raw driver


class SqliteFloor:
    """One-row transactions with ``sqlite3``, configured as the store's engine configures it."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path, isolation_level=None)  # we BEGIN, as the store does
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS reference_writes (id INTEGER PRIMARY KEY, lead_id TEXT,"
            " disposition TEXT, rep TEXT, decided_at TEXT, idempotency_key TEXT UNIQUE)"
        )
        self.written = 0

    def write(self, n: int) -> list[float]:
        """Insert and commit `n` rows one at a time; the seconds each took."""
        seconds = []
        for _ in range(n):
            self.written += 1
            row = (f"L{self.written}", "accepted", "rep_1", datetime.now(UTC).isoformat(),
                   f"ref-{self.written}")  # fmt: skip
            t0 = time.perf_counter()
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO reference_writes (lead_id, disposition, rep, decided_at, "
                "idempotency_key) VALUES (?, ?, ?, ?, ?)", row,
            )  # fmt: skip
            self.conn.execute("COMMIT")
            seconds.append(time.perf_counter() - t0)
        return seconds

    def count(self) -> int:
        """Rows in the reference table."""
        return int(self.conn.execute("SELECT count(*) FROM reference_writes").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PostgresFloor:
    """One-row inserts with ``psycopg`` in autocommit mode (each its own transaction)."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(libpq_url(url), autocommit=True)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS reference_writes (id BIGSERIAL PRIMARY KEY, "
            "lead_id TEXT, disposition TEXT, rep TEXT, decided_at TIMESTAMPTZ, "
            "idempotency_key TEXT UNIQUE)"
        )
        self.written = 0

    def write(self, n: int) -> list[float]:
        """Insert `n` rows one at a time (autocommit); the seconds each took."""
        seconds = []
        for _ in range(n):
            self.written += 1
            row = (f"L{self.written}", "accepted", "rep_1", datetime.now(UTC),
                   f"ref-{self.written}")  # fmt: skip
            t0 = time.perf_counter()
            self.conn.execute(
                "INSERT INTO reference_writes (lead_id, disposition, rep, decided_at, "
                "idempotency_key) VALUES (%s, %s, %s, %s, %s)", row,
            )  # fmt: skip
            seconds.append(time.perf_counter() - t0)
        return seconds

    def count(self) -> int:
        """Rows in the reference table."""
        row = self.conn.execute("SELECT count(*) FROM reference_writes").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


Floor = SqliteFloor | PostgresFloor


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it: the driver suffix dropped."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url` (whose role may create databases),
    dropped on exit; yields its SQLAlchemy URL. Raises ``psycopg.Error`` when it cannot."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"leadscore_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def safe_url(url: str) -> str:
    """The URL with its password hidden (for the report)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@dataclass
class Backend:
    """One store the feedback benchmark writes to: its URL, the store opened in this process,
    its reference, and the verdicts of each phase (each on leads of its own)."""

    name: str
    url: str
    store: HandoffStore
    floor: Floor
    warm: list[Verdict]
    c1: list[Verdict]
    c4: list[Verdict]
    in_process: list[Verdict]

    @classmethod
    def prepare(
        cls, name: str, url: str, floor: Floor, args: argparse.Namespace,
        stack: contextlib.ExitStack,
    ) -> Backend:  # fmt: skip
        """Open the store, record the handoffs the verdicts answer, cut the verdicts into the
        warm-up, the API's at concurrency 1 and 4, and the in-process store calls."""
        store = stack.enter_context(contextlib.closing(HandoffStore.open(url)))
        sizes = (args.warmup, args.feedback_c1, args.feedback_c4, args.feedback_c1)
        leads = [f"fb-{i:06d}" for i in range(sum(sizes))]
        prerecord(store, leads)
        sent = verdicts(name, leads)
        bounds = list(itertools.accumulate(sizes, initial=0))
        parts = [sent[a:b] for a, b in itertools.pairwise(bounds)]
        return cls(name, url, store, floor, *parts)


def store_calls(store: HandoffStore, sent: Sequence[Verdict]) -> tuple[list[float], list[Ack]]:
    """The verdicts written by calling ``HandoffStore.add_feedback`` in-process, as the route
    does but without HTTP; the seconds of each call and what was stored."""
    seconds, acks = [], []
    for verdict in sent:
        body = json.loads(verdict.body)
        now = datetime.now(UTC)
        given = FeedbackInput(disposition=body["disposition"], decided_at=now,
                              reason=body.get("reason"), rep=body.get("rep"))  # fmt: skip
        t0 = time.perf_counter()
        record, _ = store.add_feedback(verdict.lead_id, given, verdict.key, now)
        seconds.append(time.perf_counter() - t0)
        acks.append(Ack(verdict.lead_id, verdict.key, int(record["id"])))
    return seconds, acks


def chunks(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    """`items` cut into `parts` consecutive slices of nearly equal length."""
    bounds = [round(i * len(items) / parts) for i in range(parts + 1)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def bench_feedback(
    backends: Sequence[Backend], servers: Mapping[str, Server], rounds: int
) -> tuple[dict[str, Any], dict[str, list[Ack]], list[str]]:
    """Warm up, then time rounds that alternate the reference, the in-process store call, and
    the API at concurrency 1 and at 4, for each backend in turn; summaries, acknowledgements,
    errors."""
    acks: dict[str, list[Ack]] = {b.name: [] for b in backends}
    problems: list[str] = []
    for b in backends:  # warm-up, untimed (its verdicts are checked like the others)
        b.floor.write(max(1, len(b.warm)))
        load, acked = post_verdicts(servers[b.name].port, b.warm, 1)
        acks[b.name] += acked
        problems += load.errors
    levels = (("reference", 1), ("store_call", 1), ("c1", 1), ("c4", CONCURRENCY))
    pooled = {(b.name, level): Load(c) for b in backends for level, c in levels}
    parts = {b.name: [chunks(sent, rounds) for sent in (b.c1, b.c4, b.in_process)]
             for b in backends}  # fmt: skip
    for r in range(rounds):
        for b in backends:
            c1, c4, in_process = (part[r] for part in parts[b.name])
            with common.stopwatch() as sw:
                seconds = b.floor.write(len(c1))
            pooled[b.name, "reference"].add(Load(1, seconds, sw.seconds))
            with common.stopwatch() as sw:
                seconds, acked = store_calls(b.store, in_process)
            pooled[b.name, "store_call"].add(Load(1, seconds, sw.seconds))
            acks[b.name] += acked
            for level, sent, concurrency in (("c1", c1, 1), ("c4", c4, CONCURRENCY)):
                load, acked = post_verdicts(servers[b.name].port, sent, concurrency)
                pooled[b.name, level].add(load)
                acks[b.name] += acked
    result: dict[str, Any] = {}
    for (name, level), load in pooled.items():
        result.setdefault(name, {})[level] = load.summary()
        problems += sorted(set(load.errors))
    return result, acks, problems


# ---------------------------------------------------------------------------------------------
# the cost of recording


def score_bodies(prefix: str, n: int) -> list[bytes]:
    """`n` copies of the example lead (it routes), each under its own lead id."""
    base = synthetic_example()
    out = []
    for i in range(n):
        body = copy.deepcopy(base)
        body["lead"]["lead_id"] = f"{prefix}-{i:06d}"
        out.append(json.dumps(body).encode())
    return out


def stored_handoffs(url: str) -> list[str]:
    """The lead id of every handoff in the store (one entry per handoff)."""
    from sqlalchemy import select

    from leadscore.serving.store.tables import Handoff

    store = HandoffStore.open(url, upgrade=False)
    try:
        with store.engine.connect() as conn:
            return [str(lead) for lead in conn.scalars(select(Handoff.lead_id))]
    finally:
        store.close()


def handoff_problems(label: str, expected: set[str], stored: Sequence[str]) -> list[str]:
    """The store must hold exactly one handoff for each expected lead, and no other."""
    counts = Counter(stored)
    problems = []
    missing = sorted(expected - set(counts))
    if missing:
        problems.append(f"{label}: {len(missing)} routed leads have no handoff ({missing[:5]})")
    doubled = sorted(lead for lead, n in counts.items() if n > 1)
    if doubled:
        problems.append(f"{label}: {len(doubled)} leads have several handoffs ({doubled[:5]})")
    unexpected = sorted(set(counts) - expected)
    if unexpected:
        problems.append(
            f"{label}: {len(unexpected)} handoffs of leads that were not routed there "
            f"({unexpected[:5]})"
        )
    return problems


def bench_recording(
    on: Server, off: Server, warm: Sequence[bytes], timed: Sequence[bytes], rounds: int
) -> tuple[dict[str, Any], set[str], list[str]]:
    """Both servers warmed up alike, then runs alternating recording on / off at concurrency
    1, each on leads the recording server has not scored before; finally, which of the leads
    route (asked of the server that does not record). Summaries, the routed leads the
    recording server saw, errors."""
    key = {"X-API-Key": API_KEY}
    problems: list[str] = []
    for server in (on, off):
        problems += http_load.run_load(server.port, SCORE_PATH, warm, len(warm), 1, key).errors
    pooled = {"on": Load(1), "off": Load(1)}
    runs = []
    for part in chunks(timed, rounds):
        for mode, server in (("on", on), ("off", off)):
            load = http_load.run_load(server.port, SCORE_PATH, part, len(part), 1, key)
            runs.append({"recording": mode} | load.summary())
            pooled[mode].add(load)
            problems += sorted(set(load.errors))
    result = {mode: load.summary() for mode, load in pooled.items()} | {"runs": runs}
    answers, errors = http_load.ask_each(off.port, SCORE_PATH, [*warm, *timed], key)
    problems += errors
    routed = {a["lead_id"] for a in answers
              if a and a["recommended_action"]["action"] in ROUTED}  # fmt: skip
    result["routed_leads"] = len(routed)
    return result, routed, problems


# ---------------------------------------------------------------------------------------------
# the run


def ratios_of(feedback: Mapping[str, Any], recording: Mapping[str, Any]) -> dict[str, float]:
    """Ours over the reference: latency ratios above 1 and throughput ratios below 1 are the
    price over the floor; recording on over off."""
    out = {}
    for name, levels in feedback.items():
        ref = levels["reference"]
        out[f"feedback_{name}_p50_c1_ours_over_reference"] = levels["c1"]["p50_ms"] / ref["p50_ms"]
        out[f"feedback_{name}_p99_c1_ours_over_reference"] = levels["c1"]["p99_ms"] / ref["p99_ms"]
        out[f"feedback_{name}_rps_c1_ours_over_reference"] = (
            levels["c1"]["requests_per_s"] / ref["requests_per_s"]
        )
        out[f"feedback_{name}_rps_c4_ours_over_reference"] = (
            levels["c4"]["requests_per_s"] / ref["requests_per_s"]
        )
        out[f"feedback_{name}_p50_store_call_over_reference"] = (
            levels["store_call"]["p50_ms"] / ref["p50_ms"]
        )
    on, off = recording["on"], recording["off"]
    out["score_p50_c1_recording_on_over_off"] = on["p50_ms"] / off["p50_ms"]
    out["score_p99_c1_recording_on_over_off"] = on["p99_ms"] / off["p99_ms"]
    return out


def print_report(result: Mapping[str, Any]) -> None:
    """The tables: feedback writes per backend against the floor, scoring with recording on
    and off, the ratios."""
    print(
        "\nfeedback: POST /v1/leads/{id}/feedback, one verdict per request, each with its own "
        "Idempotency-Key; reference: one-row insert + commit, raw driver, in-process"
    )
    rows = []
    for name, levels in result["feedback"].items():
        if "skipped" in levels:
            print(f"  {name}: skipped ({levels['skipped']})")
            continue
        ours1, ours4, ref = levels["c1"], levels["c4"], levels["reference"]
        rows.append((f"{name}, leadscore serve", ours1["p50_ms"], ours1["p99_ms"],
                     ours1["requests_per_s"], ours4["requests_per_s"]))  # fmt: skip
        call = levels["store_call"]
        rows.append((f"{name}, add_feedback in-process", call["p50_ms"], call["p99_ms"],
                     call["requests_per_s"], float("nan")))  # fmt: skip
        rows.append((f"{name}, raw driver (floor)", ref["p50_ms"], ref["p99_ms"],
                     ref["requests_per_s"], float("nan")))  # fmt: skip
    common.print_table(
        [("writer", 34), ("p50 ms", 9, ".2f"), ("p99 ms", 9, ".2f"), ("rec/s c1", 10, ".0f"),
         (f"rec/s c{CONCURRENCY}", 10, ".0f")], rows,
    )  # fmt: skip
    rec = result["recording"]
    print(f"\nscoring: POST {SCORE_PATH} at concurrency 1, {rec['routed_leads']} routed leads "
          "recorded; runs alternate on/off")  # fmt: skip
    common.print_table(
        [("LEADSCORE_RECORD", 34), ("p50 ms", 9, ".2f"), ("p99 ms", 9, ".2f"),
         ("req/s", 10, ".0f")],
        [(label, rec[mode]["p50_ms"], rec[mode]["p99_ms"], rec[mode]["requests_per_s"])
         for mode, label in (("on", "routed (recording on)"), ("off", "none (recording off)"))],
    )  # fmt: skip
    per_run = ", ".join(f"{r['recording']} {r['p99_ms']:.2f}" for r in rec["runs"])
    print(f"p99 ms of each run in order: {per_run}")
    common.print_ratios(result["ratios"], {})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="small counts for the tests (< 60 s)")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/handoffs.json")
    p.add_argument(
        "--feedback-c1",
        type=int,
        default=1000,
        help="timed verdicts per backend at concurrency 1 (and reference writes)",
    )
    p.add_argument(
        "--feedback-c4",
        type=int,
        default=2000,
        help=f"timed verdicts per backend at concurrency {CONCURRENCY}",
    )
    p.add_argument(
        "--scores", type=int, default=2000, help="timed /v1/score requests per recording mode"
    )
    p.add_argument("--warmup", type=int, default=100, help="untimed requests first")
    p.add_argument("--rounds", type=int, default=4, help="alternations (at least 2: A/B/A/B)")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("LEADSCORE_TEST_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL role that may create databases (default: "
        "$LEADSCORE_TEST_PG_URL, else %(default)s)",
    )
    p.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    p.add_argument(
        "--model-dir", type=Path, help="serve this leadscore model directory (default: a toy model)"
    )
    p.add_argument("--work", type=Path, help="scratch directory (kept; default: a temp dir)")
    args = p.parse_args(argv)
    if args.smoke:
        args.feedback_c1, args.feedback_c4, args.scores, args.warmup = 40, 80, 60, 10
        args.rounds = 2
    if args.rounds < 2:
        p.error("--rounds must be at least 2 (runs alternate A/B/A/B)")
    return args


def toy_model(ws: Workspace) -> Path:
    """The test suite's toy scorer (trained in about a second), saved in the workspace."""
    sys.path.insert(0, str(ROOT))  # tests/ is a package of the checkout, not installed
    from tests.serving.leads import build_toy_model

    return build_toy_model(ws.root / "model")


def skip_postgres(url: str, exc: Exception) -> str:
    """Say that the PostgreSQL row is skipped and why; the reason."""
    said = " ".join(str(exc).split()) or type(exc).__name__
    reason = f"cannot use {safe_url(url)}: {said}"
    print(f"PostgreSQL row skipped: {reason}")
    return reason


def open_backends(
    args: argparse.Namespace, ws: Workspace, stack: contextlib.ExitStack
) -> tuple[list[Backend], dict[str, Any]]:
    """SQLite, and PostgreSQL in a fresh database unless it is off or unreachable; the
    backends ready to write, and what the report says of each."""
    about: dict[str, Any] = {}
    sqlite_url = f"sqlite:///{ws.root / 'feedback.db'}"
    floor: Floor = stack.enter_context(contextlib.closing(SqliteFloor(ws.root / "reference.db")))
    backends = [Backend.prepare("sqlite", sqlite_url, floor, args, stack)]
    about["sqlite"] = {"store": sqlite_url, "reference_driver": "sqlite3, WAL, synchronous=FULL"}
    if args.no_postgres:
        about["postgres"] = {"skipped": "--no-postgres"}
        return backends, about
    try:
        import psycopg
    except ImportError as exc:  # the [postgres] extra is not installed
        return backends, about | {"postgres": {"skipped": skip_postgres(args.pg_url, exc)}}
    try:
        pg_url = stack.enter_context(fresh_postgres(args.pg_url))
    except psycopg.Error as exc:
        return backends, about | {"postgres": {"skipped": skip_postgres(args.pg_url, exc)}}
    floor = stack.enter_context(contextlib.closing(PostgresFloor(pg_url)))
    backends.append(Backend.prepare("postgres", pg_url, floor, args, stack))
    about["postgres"] = {"store": safe_url(pg_url), "reference_driver": "psycopg, autocommit"}
    return backends, about


def run(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    """Every measurement and check; the result document and the problems."""
    started = time.perf_counter()
    model = args.model_dir.resolve() if args.model_dir else toy_model(ws)
    result: dict[str, Any] = {
        "smoke": args.smoke, "model": str(model),
        "load": {"feedback_c1": args.feedback_c1, "feedback_c4": args.feedback_c4,
                 "scores": args.scores, "warmup": args.warmup, "rounds": args.rounds,
                 "concurrency": [1, CONCURRENCY], "client": "http.client keep-alive, threads"},
    }  # fmt: skip
    with contextlib.ExitStack() as stack:
        backends, about = open_backends(args, ws, stack)
        score_urls = {m: f"sqlite:///{ws.root / f'score_{m}.db'}" for m in ("on", "off")}
        env = ws.env | {"LEADSCORE_MODEL_URI": str(model),
                        "LEADSCORE_API_KEYS": f"{API_KEY}:score+feedback",
                        "LEADSCORE_RELOAD_INTERVAL_SECONDS": "3600"}  # fmt: skip
        cmd = [str(BIN / "leadscore"), "serve", "--host", "127.0.0.1", "--port", "{port}",
               "--workers", "1"]  # fmt: skip
        specs = [(f"feedback-{b.name}", cmd,
                  env | {"LEADSCORE_STORE_URL": b.url, "LEADSCORE_RECORD": "none"}, "/readyz")
                 for b in backends]  # fmt: skip
        specs += [(f"score-{mode}", cmd, env | {"LEADSCORE_STORE_URL": score_urls[mode],
                   "LEADSCORE_RECORD": record}, "/readyz")
                  for mode, record in (("on", "routed"), ("off", "none"))]  # fmt: skip
        warm = score_bodies("warm", args.warmup)
        timed = score_bodies("lead", args.scores)
        print(f"prepared in {time.perf_counter() - started:.1f} s ({ws.root}); starting "
              f"{len(specs)} servers ...")  # fmt: skip
        with http_load.running(ws, *specs) as started_servers:
            servers = {s.name: s for s in started_servers}
            print("servers ready; measuring feedback writes ...")
            feedback, acks, problems = bench_feedback(
                backends, {b.name: servers[f"feedback-{b.name}"] for b in backends}, args.rounds
            )
            print("measuring /v1/score with recording on and off ...")
            recording, routed, errors = bench_recording(
                servers["score-on"], servers["score-off"], warm, timed, args.rounds
            )
            problems += errors
        # the servers have stopped: the recorder wrote its queue on shutdown
        for b in backends:
            problems += agreement_problems(b.name, acks[b.name], stored_feedback(b.store))
            if b.floor.count() != b.floor.written:
                problems.append(f"{b.name} reference: {b.floor.count()} rows after "
                                f"{b.floor.written} commits")  # fmt: skip
            feedback[b.name]["acknowledged"] = len(acks[b.name])
            feedback[b.name] |= about[b.name]
        problems += handoff_problems("recording on", routed, stored_handoffs(score_urls["on"]))
        problems += handoff_problems("recording off", set(), stored_handoffs(score_urls["off"]))
        if not routed:
            problems.append("recording on: no scored lead was routed, nothing was recorded")
    result["ratios"] = ratios_of(feedback, recording)
    for name, info in about.items():
        feedback.setdefault(name, info)
    result |= {"feedback": feedback, "recording": recording}
    return result, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON; 1 when a check fails."""
    args = parse_args(argv)
    outcome = Workspace.run_in(args.work, "bench_handoffs-", lambda ws: run(args, ws))
    if outcome is None:
        return 1
    result, problems = outcome
    return common.conclude(
        result, problems, ("sqlalchemy", "psycopg", "fastapi", "uvicorn"),
        args.json_out, print_report,
        "checks pass: every acknowledged verdict is stored; one handoff per routed lead "
        "recorded, none when recording is off", versions={"sqlite": sqlite3.sqlite_version},
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
