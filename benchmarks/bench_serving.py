"""Serving speed against the references a user would otherwise deploy, timed in one run.

Trains a model on a generated leadforge bundle into a throwaway SQLite MLflow store, picks
leads with about 20 events each, then measures, with one load client (``http.client``,
keep-alive connections, the same for both servers), warm-up first:

* (a) ``leadscore serve --workers 1``: ``POST /v1/score?explain=true`` (reasons, SQL criteria,
  routing) at concurrency 1 (p50, p99) and 4 (throughput);
* (b) the same booster logged with MLflow's standard LightGBM flavor and served by
  ``mlflow models serve --env-manager local -w 1``, fed each lead's precomputed flat feature
  row (categories as integer codes, missing as null): it does less work than (a);
* (c) batch: ``leadscore score`` in-process (load, validate, snapshot, score, write; import time
  excluded) on synthetic canonical leads (100k) against raw ``Booster.predict`` on the same
  feature matrix.

Outputs must agree: (b) returns exactly our uncalibrated probability (``score_row`` in-process
on the same lead), (a)'s ``mql_probability`` is the calibrator applied to it, and (c)'s scores are
the calibrator applied to the raw booster's output. The script prints the ratios next to the
targets (p99 at concurrency 1 at most a quarter of (b)'s; throughput at concurrency 4 at least
5x (b)'s; batch at least half the raw booster's throughput) and writes them as JSON. Only the
agreement is judged: the script exits 1 when outputs disagree (or a server fails), never on a
missed target.

    python benchmarks/bench_serving.py                      # ~3 minutes on 2 cores
    python benchmarks/bench_serving.py --smoke              # well under a minute, for CI
    python benchmarks/bench_serving.py --reference-booster other.lgb   # must disagree
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import io
import itertools
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

SEED = 20241125
AS_OF_DAYS = 30
EVENTS_PER_LEAD = 20  # the leads posted to both servers have EVENTS_PER_LEAD +- EVENT_SLACK events
EVENT_SLACK = 2
BODIES = 64  # distinct leads cycled through by the load client
CONCURRENCY = 4
API_KEY = "bench-serving-key"
MODEL_NAME = "lead-scoring"
REFERENCE_EXPERIMENT = "bench-serving-reference"
TOLERANCE = 1e-12  # the same booster on the same float64 input: equal up to JSON round trips
READY_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# Targets of the issue: (ratio key, comparison, bound, description).
TARGETS = (
    ("p99_c1_ours_over_reference", "<=", 0.25, "(a) p99 at concurrency 1 / (b)'s"),
    ("rps_c4_ours_over_reference", ">=", 5.0, "(a) req/s at concurrency 4 / (b)'s"),
    ("batch_ours_over_raw_booster", ">=", 0.5, "(c) leadscore score rows/s / raw booster's"),
)


# ---------------------------------------------------------------------------------------------
# workspace, model and leads


@dataclass
class Workspace:
    """The scratch directory: bundle, MLflow store, server logs, batch data."""

    root: Path
    tracking_uri: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """A workspace in `root` with its own SQLite store; subprocess env without inherited
        ``LEADSCORE_*`` / ``MLFLOW_*`` settings, the venv's bin first on PATH."""
        root.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        inherited = os.environ.items()
        env = {k: v for k, v in inherited if not k.startswith(("LEADSCORE_", "MLFLOW_"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["MLFLOW_TRACKING_URI"] = uri
        env["PYTHONUNBUFFERED"] = "1"
        return cls(root, uri, env)

    def run(self, args: Sequence[str], log_name: str, timeout: float = 600.0) -> None:
        """Run a command in the workspace; raise with its log's tail when it fails."""
        log_path = self.root / log_name
        with log_path.open("w") as log:
            done = subprocess.run(
                list(args), cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def train_model(ws: Workspace, leads: int, seed: int) -> tuple[Path, str]:
    """Generate a bundle and train + register a model with the CLI; (bundle, model URI)."""
    bundle = ws.root / "bundle"
    ws.run([str(BIN / "leadscore"), "data", "generate", "--seed", str(seed), "--leads",
            str(leads), "--out", str(bundle)], "generate.log")  # fmt: skip
    ws.run([str(BIN / "leadscore"), "train", "--data", str(bundle)], "train.log")
    return bundle, f"models:/{MODEL_NAME}@champion"


def generate_bundle(ws: Workspace, leads: int, seed: int) -> Path:
    """A bundle for the lead bodies only (when an existing model directory is served)."""
    bundle = ws.root / "bundle"
    ws.run([str(BIN / "leadscore"), "data", "generate", "--seed", str(seed), "--leads",
            str(leads), "--out", str(bundle)], "generate.log")  # fmt: skip
    return bundle


def pick_bodies(bundle: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` API bodies of leads with about EVENTS_PER_LEAD events up to created + AS_OF_DAYS.

    Leads are drawn at random among those whose history up to as_of has EVENTS_PER_LEAD
    +- EVENT_SLACK events (the window widens if too few do); bodies as `leadscore data lead`
    writes them (:func:`leadscore.features.payload.lead_bodies`).
    """
    from leadscore.features.bodies import lead_bodies
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source

    config = load_feature_config()
    crm = load_source(bundle, config)
    as_of = crm.leads.set_index("lead_id")["created_at"] + pd.Timedelta(days=AS_OF_DAYS)
    ev = crm.events[crm.events["timestamp"] <= crm.events["lead_id"].map(as_of)]
    counts = ev.groupby("lead_id").size().reindex(as_of.index, fill_value=0)
    slack = EVENT_SLACK
    while True:
        ok = counts[(counts - EVENTS_PER_LEAD).abs() <= slack]
        if len(ok) >= n or slack > EVENTS_PER_LEAD:
            break
        slack += 1
    rng = np.random.default_rng(seed)
    chosen = [str(i) for i in rng.choice(ok.index.to_numpy(), size=min(n, len(ok)), replace=False)]
    return lead_bodies(crm, config, chosen, [as_of[i] for i in chosen])


# ---------------------------------------------------------------------------------------------
# expected outputs, computed in-process with the served model


@dataclass(frozen=True)
class Expected:
    """One lead as both servers must see it: its body, flat encoded row and raw probability."""

    lead_id: str
    body: bytes  # POST /v1/score
    reference_body: bytes  # POST /invocations (dataframe_split, one row)
    raw_probability: float  # the booster's uncalibrated output (Scorer.score_row)
    mql_probability: float  # the calibrator applied to it
    events: int


def reference_row(values: np.ndarray) -> list[float | None]:
    """An encoded feature row as JSON values: NaN (missing, unseen category) becomes null."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def reference_payload(names: Sequence[str], rows: Sequence[np.ndarray]) -> dict[str, Any]:
    """The ``dataframe_split`` body MLflow's scoring server reads."""
    return {"dataframe_split": {"columns": list(names), "data": [reference_row(r) for r in rows]}}


def expected_outputs(scorer: Any, bodies: Sequence[Mapping[str, Any]]) -> list[Expected]:
    """Parse each body as the API does, build its feature row and score it in-process."""
    from leadscore.features.config import FeatureConfig
    from leadscore.features.payload import payload_model
    from leadscore.serving.api.bodies import parse_lead

    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    model = payload_model(config)
    names = scorer.encoding.names
    out = []
    for body in bodies:
        parsed = parse_lead(model, body)
        row = scorer.feature_row(parsed.lead, parsed.account, parsed.contact, parsed.events,
                                 parsed.as_of)  # fmt: skip
        raw = float(scorer.score_row(row)["raw_probability"])
        encoded = scorer.encoding.row(row)
        out.append(
            Expected(
                lead_id=str(row["lead_id"]),
                body=json.dumps(body).encode(),
                reference_body=json.dumps(reference_payload(names, [encoded])).encode(),
                raw_probability=raw,
                mql_probability=float(scorer.calibrator(np.array([raw]))[0]),
                events=len(parsed.events),
            )
        )
    return out


def reference_problems(
    expected: Sequence[Expected], got: Sequence[float | None], tol: float = TOLERANCE
) -> list[str]:
    """Leads where the reference's output is not our uncalibrated probability."""
    problems = []
    for e, g in zip(expected, got, strict=True):
        if g is None or not math.isclose(g, e.raw_probability, rel_tol=0.0, abs_tol=tol):
            problems.append(
                f"reference != ours (uncalibrated) for {e.lead_id}: "
                f"mlflow {g!r}, leadscore {e.raw_probability!r}"
            )
    return problems


def api_problems(
    expected: Sequence[Expected], got: Sequence[Mapping[str, Any] | None], tol: float = TOLERANCE
) -> list[str]:
    """Leads where the API's answer is not the calibrator applied to our raw probability
    (or lacks the reasons and criteria it was asked for)."""
    problems = []
    for e, g in zip(expected, got, strict=True):
        if g is None:
            problems.append(f"API gave no answer for {e.lead_id}")
            continue
        p = g.get("mql_probability")
        if g.get("lead_id") != e.lead_id:
            problems.append(f"API answered {g.get('lead_id')!r} for {e.lead_id}")
        elif not isinstance(p, float) or not math.isclose(p, e.mql_probability, rel_tol=0.0,
                                                          abs_tol=tol):  # fmt: skip
            problems.append(
                f"API mql_probability != calibrator(raw) for {e.lead_id}: "
                f"API {p!r}, in-process {e.mql_probability!r}"
            )
        elif not g.get("reasons") or not (g.get("sql_criteria") or {}).get("criteria"):
            problems.append(f"API answer for {e.lead_id} lacks reasons or SQL criteria")
    return problems


# ---------------------------------------------------------------------------------------------
# servers and the load client


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """One keep-alive HTTP/1.1 connection to a loopback server (the load client of both)."""

    def __init__(self, port: int, headers: Mapping[str, str] | None = None):
        self.port = port
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)

    def connect(self) -> None:
        """Open the connection now (so that it is not timed with the first request)."""
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and read the whole response; (status, body)."""
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@dataclass
class Server:
    """A server subprocess in its own session (stopped as a process group)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    ready_path: str
    log: Path

    def wait_ready(self, deadline: float) -> None:
        """Poll `ready_path` until 200, the process exits, or the deadline passes."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{_tail(self.log)}"
                )
            client = Client(self.port)
            try:
                status, _ = client.request("GET", self.ready_path)
                if status == 200:
                    return
            except OSError:
                pass
            finally:
                client.close()
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s:\n{_tail(self.log)}"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after 15 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


def start_server(
    ws: Workspace, name: str, args: Sequence[str], env: Mapping[str, str], port: int, ready: str
) -> Server:
    """Start a server command in the workspace (logs to NAME.log)."""
    log = ws.root / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            list(args), cwd=ws.root, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Server(name, proc, port, ready, log)


@contextlib.contextmanager
def servers(ws: Workspace, model_uri: str, reference_uri: str) -> Iterator[tuple[Server, Server]]:
    """Run ``leadscore serve`` and ``mlflow models serve`` (one worker each) side by side."""
    started: list[Server] = []
    try:
        ours_port, ref_port = free_port(), free_port()
        env = ws.env | {"LEADSCORE_MODEL_URI": model_uri, "LEADSCORE_API_KEYS": f"{API_KEY}:score"}
        ours_cmd = [str(BIN / "leadscore"), "serve", "--host", "127.0.0.1",
                    "--port", str(ours_port), "--workers", "1"]  # fmt: skip
        ref_cmd = [str(BIN / "mlflow"), "models", "serve", "-m", reference_uri,
                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(ref_port),
                   "-w", "1"]  # fmt: skip
        started.append(start_server(ws, "leadscore-serve", ours_cmd, env, ours_port, "/readyz"))
        started.append(start_server(ws, "mlflow-serve", ref_cmd, ws.env, ref_port, "/ping"))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for server in started:
            server.wait_ready(deadline)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def log_reference(ws: Workspace, booster: Any, names: Sequence[str]) -> str:
    """Log `booster` with MLflow's LightGBM flavor into the workspace store; its model URI."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    mlflow.set_tracking_uri(ws.tracking_uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(REFERENCE_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            REFERENCE_EXPERIMENT, artifact_location=(ws.root / "reference-artifacts").as_uri()
        )
    )
    signature = ModelSignature(
        inputs=Schema([ColSpec(DataType.double, n) for n in names]),
        outputs=Schema([ColSpec(DataType.double)]),
    )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.lightgbm.log_model(
            booster, name="reference", signature=signature,
            pip_requirements=[f"lightgbm=={lgb.__version__}"],  # skip requirement inference
        )  # fmt: skip
    return str(info.model_uri)


# ---------------------------------------------------------------------------------------------
# load


@dataclass
class Load:
    """Latencies (seconds) and wall time of a number of requests at some concurrency."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Load) -> None:
        """Pool another round's requests into this one."""
        self.latencies += other.latencies
        self.wall_s += other.wall_s
        self.errors += other.errors

    def summary(self) -> dict[str, Any]:
        """Requests, p50 / p99 / mean latency (ms) and throughput (requests/s)."""
        ms = np.asarray(self.latencies) * 1e3 if self.latencies else np.array([math.nan])
        n = len(self.latencies)
        return {
            "concurrency": self.concurrency,
            "requests": n,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()),
            "requests_per_s": n / self.wall_s if self.wall_s > 0 else math.nan,
            "errors": len(self.errors),
        }


def run_load(
    port: int, path: str, bodies: Sequence[bytes], total: int, concurrency: int,
    headers: Mapping[str, str] | None = None,
) -> Load:  # fmt: skip
    """`total` requests cycling through `bodies`, from `concurrency` threads with one keep-alive
    connection each; wall time from all connections open to the last answer."""
    load = Load(concurrency)
    counter = itertools.count()
    lock = threading.Lock()
    clients = [Client(port, headers) for _ in range(concurrency)]
    for c in clients:
        c.connect()
    start = threading.Barrier(concurrency + 1)

    def work(client: Client) -> None:
        mine: list[float] = []
        errors: list[str] = []
        start.wait()
        while (i := next(counter)) < total:
            t0 = time.perf_counter()
            try:
                status, data = client.request("POST", path, bodies[i % len(bodies)])
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{path}: {exc!r}")
                break
            mine.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"{path}: HTTP {status}: {data[:200]!r}")
        with lock:
            load.latencies += mine
            load.errors += errors

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S * total)
    load.wall_s = time.perf_counter() - t0
    for c in clients:
        c.close()
    if any(t.is_alive() for t in threads):
        load.errors.append(f"{path}: load threads did not finish")
    return load


def ask_each(
    port: int, path: str, bodies: Sequence[bytes], headers: Mapping[str, str] | None = None
) -> tuple[list[Any], list[str]]:
    """Post each body once (one connection); the parsed JSON answers (None when not 200)."""
    client = Client(port, headers)
    answers: list[Any] = []
    errors = []
    try:
        for body in bodies:
            status, data = client.request("POST", path, body)
            if status == 200:
                answers.append(json.loads(data))
            else:
                answers.append(None)
                errors.append(f"{path}: HTTP {status}: {data[:300]!r}")
    finally:
        client.close()
    return answers, errors


def reference_predictions(answers: Sequence[Any]) -> list[float | None]:
    """The one prediction of each ``/invocations`` answer (None when missing)."""
    out: list[float | None] = []
    for a in answers:
        preds = a.get("predictions") if isinstance(a, dict) else None
        value = preds[0] if isinstance(preds, list) and len(preds) == 1 else None
        out.append(float(value) if isinstance(value, int | float) else None)
    return out


def bench_online(
    ours: Server, ref: Server, expected: Sequence[Expected], requests: int, warmup: int,
    rounds: int,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """Check both servers' answers, then time them: rounds alternate between the servers
    (concurrency 1, then 4), so a burst of load from elsewhere slows both alike."""
    score_path = "/v1/score?explain=true"
    key = {"X-API-Key": API_KEY}
    ours_bodies = [e.body for e in expected]
    ref_bodies = [e.reference_body for e in expected]

    answers, problems = ask_each(ours.port, score_path, ours_bodies, key)
    problems += api_problems(expected, answers)
    ref_answers, errors = ask_each(ref.port, "/invocations", ref_bodies)
    problems += errors + reference_problems(expected, reference_predictions(ref_answers))

    targets = {
        "leadscore": (ours.port, score_path, ours_bodies, key),
        "mlflow": (ref.port, "/invocations", ref_bodies, None),
    }
    for port, path, bodies, headers in targets.values():  # warm-up, untimed
        run_load(port, path, bodies, warmup, 1, headers)
        run_load(port, path, bodies, warmup, CONCURRENCY, headers)
    pooled = {(n, c): Load(c) for n in targets for c in (1, CONCURRENCY)}
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for concurrency in (1, CONCURRENCY):
            for name, (port, path, bodies, headers) in targets.items():
                pooled[name, concurrency].add(
                    run_load(port, path, bodies, per_round, concurrency, headers)
                )
    result: dict[str, Any] = {}
    for (name, concurrency), load in pooled.items():
        result.setdefault(name, {})[f"c{concurrency}"] = load.summary()
        problems += sorted(set(load.errors))
    return result, problems


# ---------------------------------------------------------------------------------------------
# batch


def _bench_snapshot() -> ModuleType:
    """benchmarks/bench_snapshot.py (its numpy synthesiser of canonical leads)."""
    path = Path(__file__).with_name("bench_snapshot.py")
    spec = importlib.util.spec_from_file_location("bench_snapshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_canonical(directory: Path, leads: int, events: int, seed: int) -> Path:
    """Synthetic canonical tables (Parquet) of `leads` leads and `events` events."""
    from leadscore.features.config import load_feature_config

    synth = _bench_snapshot()
    rng = np.random.default_rng(seed)
    config = load_feature_config()
    raw = synth.synth_entities(rng, leads, config)
    lead_frame = raw["leads"]
    raw["events"] = synth.synth_events(
        rng, lead_frame["lead_id"].to_numpy(dtype=object),
        lead_frame["created_at"].to_numpy(dtype="datetime64[ns]"),
        synth.spread(rng, events, leads), horizon_days=synth.EVENT_HORIZON_DAYS,
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in raw.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    end = pd.Timestamp(lead_frame["created_at"].max()) + pd.Timedelta(days=90)
    (directory / "source.yaml").write_text(f"observation_end: '{end.isoformat()}'\n")
    return directory


def bench_batch(
    ws: Workspace, model_uri: str, leads: int, events: int, repeats: int, seed: int
) -> tuple[dict[str, Any], list[str]]:
    """`leadscore score` in-process against raw Booster.predict on the same feature matrix."""
    import mlflow

    from leadscore.features.config import FeatureConfig
    from leadscore.features.snapshot import as_of_after_creation, snapshot
    from leadscore.features.sources import load_source
    from leadscore.serving.cli import score
    from leadscore.serving.loader import load_scorer

    mlflow.set_tracking_uri(ws.tracking_uri)
    data = write_canonical(ws.root / "batch", leads, events, seed)
    out = ws.root / "batch-scores.parquet"

    def ours() -> None:
        quiet = io.StringIO()  # its summary and progress bar
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            score(data=data, out=out, model=model_uri, as_of_days=float(AS_OF_DAYS), as_of=None)

    # the same feature matrix, built once, untimed
    scorer = load_scorer(model_uri)
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    crm = load_source(data, config)
    phases["load_validate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = snapshot(crm, scorer.spec, as_of_after_creation(crm.leads, AS_OF_DAYS))
    phases["snapshot_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.score_frame(rows)
    phases["score_frame_s"] = time.perf_counter() - t0
    x = scorer.encoding.frame(rows)

    def raw() -> np.ndarray:
        return np.asarray(scorer.booster.predict(x), dtype=np.float64)

    ours()  # warm-up (and the output checked below)
    raw_out = raw()
    best = {"ours": math.inf, "raw": math.inf}
    for _ in range(repeats):  # interleaved, best of `repeats`
        for name, fn in (("ours", ours), ("raw", raw)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)

    problems = []
    scores = pd.read_parquet(out)
    want = pd.Series(scorer.calibrator(raw_out), index=rows["lead_id"].to_numpy())
    if len(scores) != len(rows) or set(scores["lead_id"]) != set(want.index):
        problems.append(f"batch: leadscore score scored {len(scores):,} leads, expected "
                        f"{len(rows):,} (the open leads of the snapshot)")  # fmt: skip
    else:
        got = scores.set_index("lead_id")["mql_probability"].reindex(want.index).to_numpy()
        diff = np.abs(got - want.to_numpy())
        if not np.all(diff <= TOLERANCE):
            bad = int((diff > TOLERANCE).sum())
            problems.append(f"batch: {bad:,} scores != calibrator(raw booster); max difference "
                            f"{float(np.nanmax(diff)):.3g}")  # fmt: skip
    n = len(rows)
    result = {
        "leads": leads,
        "events": events,
        "scored": n,
        "as_of_days": AS_OF_DAYS,
        "features": len(scorer.encoding.names),
        "trees": scorer.booster.num_trees(),
        "repeats": repeats,
        "leadscore_score": {"seconds": best["ours"], "rows_per_s": n / best["ours"]},
        "raw_booster": {"seconds": best["raw"], "rows_per_s": n / best["raw"]},
        "phases_once": phases,
    }
    return result, problems


# ---------------------------------------------------------------------------------------------
# report


def ratios_of(online: Mapping[str, Any], batch: Mapping[str, Any] | None) -> dict[str, float]:
    """The ratios the targets are stated in."""
    ours, ref = online["leadscore"], online["mlflow"]
    c4 = f"c{CONCURRENCY}"
    out = {
        "p99_c1_ours_over_reference": ours["c1"]["p99_ms"] / ref["c1"]["p99_ms"],
        "p50_c1_ours_over_reference": ours["c1"]["p50_ms"] / ref["c1"]["p50_ms"],
        "rps_c4_ours_over_reference": ours[c4]["requests_per_s"] / ref[c4]["requests_per_s"],
    }
    if batch:
        raw = batch["raw_booster"]["rows_per_s"]
        out["batch_ours_over_raw_booster"] = batch["leadscore_score"]["rows_per_s"] / raw
        phases = batch["phases_once"]
        features_and_score = batch["scored"] / (phases["snapshot_s"] + phases["score_frame_s"])
        out["batch_snapshot_and_score_over_raw_booster"] = features_and_score / raw
    return out


def judge(ratios: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Each target with its measured ratio and whether it is met (reported, never asserted)."""
    out = {}
    for key, op, bound, label in TARGETS:
        if key in ratios:
            value = ratios[key]
            met = value <= bound if op == "<=" else value >= bound
            out[key] = {"label": label, "value": value, "target": f"{op} {bound:g}", "met": met}
    return out


def print_report(result: Mapping[str, Any]) -> None:
    """The tables: latency and throughput of (a) and (b), batch (c), ratios against targets."""
    online = result["online"]
    c4 = f"c{CONCURRENCY}"
    b = result["bodies"]
    print(f"\nonline: {b['count']} distinct leads, {b['events_mean']:.1f} events each on "
          f"average ({b['events_min']}-{b['events_max']}); one worker each")  # fmt: skip
    header = (f"{'server':<44}{'p50 ms':>8}{'p99 ms':>8}{'req/s c1':>10}"
              f"{'p50 ms c4':>11}{'req/s c4':>10}")  # fmt: skip
    print(header)
    print("-" * len(header))
    labels = {
        "leadscore": "(a) leadscore serve POST /v1/score?explain",
        "mlflow": "(b) mlflow models serve (lightgbm flavor)",
    }
    for name, label in labels.items():
        s1, s4 = online[name]["c1"], online[name][c4]
        print(f"{label:<44}{s1['p50_ms']:>8.2f}{s1['p99_ms']:>8.2f}{s1['requests_per_s']:>10.0f}"
              f"{s4['p50_ms']:>11.2f}{s4['requests_per_s']:>10.0f}")  # fmt: skip
    batch = result.get("batch")
    if batch:
        print(f"\nbatch: {batch['scored']:,} leads, {batch['events']:,} events, "
              f"{batch['features']} features, {batch['trees']} trees; "
              f"best of {batch['repeats']}")  # fmt: skip
        print(f"{'(c) leadscore score in-process (features incl.)':<52}"
              f"{batch['leadscore_score']['seconds']:>8.2f} s"
              f"{batch['leadscore_score']['rows_per_s']:>12,.0f} rows/s")  # fmt: skip
        print(f"{'    raw Booster.predict on the feature matrix':<52}"
              f"{batch['raw_booster']['seconds']:>8.2f} s"
              f"{batch['raw_booster']['rows_per_s']:>12,.0f} rows/s")  # fmt: skip
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s"
                           for k, v in batch["phases_once"].items())  # fmt: skip
        print(f"    phases of ours (timed once, separately): {phases}")
    print(f"\n{'ratio':<46}{'value':>8}  {'target':<8}")
    for key, value in result["ratios"].items():
        judged = result["targets"].get(key)
        verdict = ""
        if judged:
            verdict = f"{judged['target']:<8}  {'PASS' if judged['met'] else 'MISS'}"
        print(f"{key:<46}{value:>8.3f}  {verdict}")


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes for CI; judges agreement")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/serving.json")
    p.add_argument("--requests", type=int, default=2000,
                   help="timed requests per server and concurrency")  # fmt: skip
    p.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    p.add_argument("--rounds", type=int, default=2, help="alternations between the servers")
    p.add_argument("--work", type=Path, help="scratch directory (kept; default: a temp dir)")
    p.add_argument("--train-leads", type=int, default=3000, help="leads of the training bundle")
    p.add_argument("--batch-leads", type=int, default=100_000)
    p.add_argument("--batch-events", type=int, default=None,
                   help=f"default: {EVENTS_PER_LEAD} per lead")  # fmt: skip
    p.add_argument("--batch-repeats", type=int, default=3)
    p.add_argument("--skip-batch", action="store_true", help="measure (a) and (b) only")
    p.add_argument("--model-dir", type=Path,
                   help="serve this leadscore model directory instead of training one")  # fmt: skip
    p.add_argument("--reference-booster", type=Path,
                   help="LightGBM model file to serve as (b) instead of ours (the agreement "
                        "check must then fail)")  # fmt: skip
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    if args.smoke:
        args.train_leads, args.batch_leads = 400, 3000
        args.requests, args.warmup, args.rounds, args.batch_repeats = 40, 10, 1, 1
    if args.batch_events is None:
        args.batch_events = EVENTS_PER_LEAD * args.batch_leads
    return args


def run(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    """Every measurement; the result document and the disagreements."""
    import lightgbm as lgb
    import mlflow

    from leadscore.serving.loader import load_scorer

    started = time.perf_counter()
    if args.model_dir:
        bundle = generate_bundle(ws, args.train_leads, args.seed)
        model_uri = str(args.model_dir.resolve())
    else:
        bundle, model_uri = train_model(ws, args.train_leads, args.seed)
    print(f"model ready in {time.perf_counter() - started:.1f} s: {model_uri} ({ws.root})")
    mlflow.set_tracking_uri(ws.tracking_uri)
    scorer = load_scorer(model_uri)
    bodies = pick_bodies(bundle, BODIES, args.seed)
    expected = expected_outputs(scorer, bodies)
    booster = (
        lgb.Booster(model_file=str(args.reference_booster))
        if args.reference_booster
        else scorer.booster
    )
    reference_uri = log_reference(ws, booster, scorer.encoding.names)
    events = [e.events for e in expected]
    result: dict[str, Any] = {
        "smoke": args.smoke,
        "model": {
            "uri": model_uri, "version": scorer.meta.get("version"),
            "trees": scorer.booster.num_trees(), "features": len(scorer.encoding.names),
            "calibrator": scorer.calibrator.method, "train_leads": args.train_leads,
        },
        "reference": {"uri": reference_uri, "flavor": "mlflow.lightgbm",
                      "booster": str(args.reference_booster or "the served model's")},
        "bodies": {"count": len(expected), "events_mean": float(np.mean(events)),
                   "events_min": int(min(events)), "events_max": int(max(events)),
                   "as_of_days": AS_OF_DAYS},
        "load": {"requests": args.requests, "warmup": args.warmup, "rounds": args.rounds,
                 "concurrency": [1, CONCURRENCY], "client": "http.client keep-alive, threads"},
    }  # fmt: skip
    with servers(ws, model_uri, reference_uri) as (ours, ref):
        print(f"servers ready: leadscore :{ours.port}, mlflow :{ref.port}; measuring ...")
        online, problems = bench_online(
            ours, ref, expected, args.requests, args.warmup, args.rounds
        )
    result["online"] = online
    batch = None
    if not args.skip_batch:
        print(f"batch: {args.batch_leads:,} synthetic leads, {args.batch_events:,} events ...")
        batch, batch_problems = bench_batch(
            ws, model_uri, args.batch_leads, args.batch_events, args.batch_repeats, args.seed
        )
        problems += batch_problems
        result["batch"] = batch
    result["ratios"] = ratios_of(online, batch)
    result["targets"] = judge(result["ratios"])
    return result, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON; 1 when outputs disagree."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.work:
            root = args.work.resolve()
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_serving-")))
        ws = Workspace.create(root)
        try:
            result, problems = run(args, ws)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"\nBENCHMARK FAILED: {exc}")
            return 1
    import fastapi
    import lightgbm
    import mlflow

    result |= {
        "versions": {"python": platform.python_version(), "mlflow": mlflow.__version__,
                     "lightgbm": lightgbm.__version__, "fastapi": fastapi.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "agree": not problems,
        "problems": problems,
    }  # fmt: skip
    print_report(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    if problems:
        print("\nOUTPUTS DISAGREE:", *problems[:20], sep="\n  ")
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more")
        return 1
    print("outputs agree: mlflow == leadscore uncalibrated; API == calibrator(raw); "
          "batch == calibrator(raw booster)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
