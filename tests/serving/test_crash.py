"""kill -9 of the service in the middle of a burst of feedback: every acknowledged verdict is in
the store. This proves acknowledge-after-commit (the 201 is sent only after the transaction
committed), not durability through a power loss, which depends on the disk and its cache."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadscore.serving.store import HandoffStore
from leadscore.serving.store.store import ScoreRecord

KEY = "crash-key"
LEADS = 400
WRITERS = 4
KILL_AFTER = 60  # acknowledged verdicts before the kill


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if json.loads(r.read())["ready"]:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # polling a condition (readiness), bounded by the deadline
    raise AssertionError("the service did not become ready")


def _post(base: str, lead: str, key: str) -> int | None:
    """POST one verdict; its stored id when acknowledged (201), None when the service died."""
    body = json.dumps({"disposition": "accepted", "rep": "r1"}).encode()
    request = urllib.request.Request(
        f"{base}/v1/leads/{lead}/feedback", data=body, method="POST",
        headers={"X-API-Key": KEY, "Content-Type": "application/json", "Idempotency-Key": key},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 201
            return int(json.loads(r.read())["id"])
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


@pytest.mark.slow
def test_every_acknowledged_verdict_survives_kill_9(store_url: str, toy_model_dir: Path) -> None:
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)
    store = HandoffStore.open(store_url)
    store.record([
        ScoreRecord(lead_id=f"L{i}", handed_off_at=at, scored_at=at, action="route_to_sales",
                    tier="A", probability=0.5, due_at=at + timedelta(hours=4))
        for i in range(LEADS)
    ])  # fmt: skip
    port = _port()
    env = os.environ | {
        "LEADSCORE_MODEL_URI": str(toy_model_dir), "LEADSCORE_API_KEYS": f"{KEY}:feedback",
        "LEADSCORE_STORE_URL": store_url, "LEADSCORE_RELOAD_INTERVAL_SECONDS": "3600",
    }  # fmt: skip
    # one worker: the process killed is the one that serves (serve defaults to one per core)
    cmd = [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    acked: list[int] = []
    lock, enough = threading.Lock(), threading.Event()
    sent = [0] * WRITERS

    def writer(w: int) -> None:
        for i in range(w, LEADS, WRITERS):
            sent[w] += 1
            stored = _post(base, f"L{i}", f"k{i}")
            if stored is None:
                return
            with lock:
                acked.append(stored)
                if len(acked) >= KILL_AFTER:
                    enough.set()

    try:
        _wait_ready(base, server)
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        assert enough.wait(60), "the burst did not reach the kill point"
        os.kill(server.pid, signal.SIGKILL)
        for t in threads:
            t.join(30)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(10)
    assert server.returncode == -signal.SIGKILL
    stored = set(store.feedback_ids())
    print(f"kill -9 after {len(acked)} acknowledged of {sum(sent)} sent: {len(stored)} stored")
    assert len(acked) >= KILL_AFTER and sum(sent) < LEADS  # killed mid-burst
    assert set(acked) <= stored  # nothing acknowledged is lost
    assert len(stored) == len(set(store.export_feedback()["lead_id"]))  # one per lead
    store.close()
