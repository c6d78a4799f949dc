"""Servers in subprocesses and one HTTP load client, for the serving benchmark.

A :class:`Workspace` is a scratch directory with its own environment for subprocesses; a
:class:`Server` is a command started there in its own session (stopped as a process group);
:func:`run_load` posts bodies over keep-alive ``http.client`` connections from a number of
threads and records each request's latency. The same client measures every server.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file (or a note that there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


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

    @classmethod
    def run_in(
        cls,
        work: Path | None,
        prefix: str,
        run: Callable[[Workspace], tuple[dict[str, Any], list[str]]],
    ) -> tuple[dict[str, Any], list[str]] | None:
        """`run` in a workspace at `work` (kept) or in a temporary directory (removed); None,
        with the reason printed, when it raises a benchmark failure."""
        with contextlib.ExitStack() as stack:
            if work:
                root = work.resolve()
            else:
                root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
            try:
                return run(cls.create(root))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"\nBENCHMARK FAILED: {exc}")
                return None

    def run(self, args: Sequence[str], log_name: str, timeout: float = 600.0) -> None:
        """Run a command in the workspace; raise with its log's tail when it fails."""
        log_path = self.root / log_name
        with log_path.open("w") as log:
            done = subprocess.run(
                list(args), cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{tail(log_path)}")

    def start_server(
        self, name: str, args: Sequence[str], env: Mapping[str, str], ready: str
    ) -> Server:
        """Start a server command on a free port (an argument ``{port}`` becomes it); logs to
        NAME.log; ready when GET `ready` answers 200."""
        port = common.free_port()
        cmd = [str(port) if a == "{port}" else a for a in args]
        log = self.root / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd, cwd=self.root, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return Server(name, proc, port, ready, log)


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
                    f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}"
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
            f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s:\n{tail(self.log)}"
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


@contextlib.contextmanager
def running(
    ws: Workspace, *servers: tuple[str, Sequence[str], Mapping[str, str], str]
) -> Iterator[list[Server]]:
    """Start servers side by side, each (name, args, env, ready path) as
    :meth:`Workspace.start_server` takes; yield them once all are ready; stop them all."""
    started: list[Server] = []
    try:
        for name, args, env, ready in servers:
            started.append(ws.start_server(name, args, env, ready))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for server in started:
            server.wait_ready(deadline)
        yield started
    finally:
        for server in started:
            server.stop()


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
        n = len(self.latencies)
        summary: dict[str, Any] = {"concurrency": self.concurrency, "requests": n}
        summary |= common.percentiles(self.latencies, "ms")
        summary["requests_per_s"] = n / self.wall_s if self.wall_s > 0 else float("nan")
        summary["errors"] = len(self.errors)
        return summary


# One request of a load: the client to send it on and its index -> (label, status, body).
Ask = Callable[["Client", int], tuple[str, int, bytes]]
# What an answer means: None when it is what was expected, else the problem in words.
Check = Callable[[int, int, bytes], str | None]


def run_requests(
    port: int, total: int, concurrency: int, ask: Ask, check: Check,
    headers: Mapping[str, str] | None = None,
) -> Load:  # fmt: skip
    """Requests 0..`total`-1, each sent by `ask` and judged by `check`, from `concurrency`
    threads with one keep-alive connection each; wall time from all connections open to the
    last answer."""
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
                label, status, data = ask(client, i)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"request {i}: {exc!r}")
                break
            mine.append(time.perf_counter() - t0)
            problem = check(i, status, data)
            if problem:
                errors.append(f"{label}: {problem}")
        with lock:
            load.latencies += mine
            load.errors += errors

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S * max(1, total))
    load.wall_s = time.perf_counter() - t0
    for c in clients:
        c.close()
    if any(t.is_alive() for t in threads):
        load.errors.append("load threads did not finish")
    return load


def run_load(
    port: int, path: str, bodies: Sequence[bytes], total: int, concurrency: int,
    headers: Mapping[str, str] | None = None,
) -> Load:  # fmt: skip
    """`total` POSTs to `path` cycling through `bodies` (:func:`run_requests`); any answer
    but 200 is an error."""

    def ask(client: Client, i: int) -> tuple[str, int, bytes]:
        return (path, *client.request("POST", path, bodies[i % len(bodies)]))

    def check(_i: int, status: int, data: bytes) -> str | None:
        return None if status == 200 else f"HTTP {status}: {data[:200]!r}"

    return run_requests(port, total, concurrency, ask, check, headers)


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
