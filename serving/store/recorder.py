"""Recording handoffs behind the response: the scoring path only queues, one thread writes.

`/v1/score` answers in a few milliseconds; a durable commit (SQLite ``synchronous=FULL``, an
fsync) costs as much. So a score that routes a lead is queued and a writer thread
commits the queue every ``interval`` seconds, up to 16 records a transaction. What a crash can
lose: the scores queued since the last commit, at most ``interval`` plus the commits' time of
handoffs (0.25 s by default; the documentation states 1 s as the bound). Those leads are
recorded again by their next score. Feedback never goes through here: it is committed before
it is acknowledged.

If the store is unreachable the batch stays queued and is retried; above ``max_queue``
records the oldest are dropped and counted (``leadscore_handoff_records_dropped_total``).
:meth:`Recorder.counts` says what it has done; ``on_pass`` (when set) is called by the writer
thread after each pass, to push those counts to the metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadscore.serving.store.store import ROUTED, HandoffStore, RecordMode, ScoreRecord

log = logging.getLogger(__name__)

# a pending score: the response (a frozen pydantic model), the lead fields it needs and the
# request's lead body (the parsed JSON, by reference: the request path copies nothing)
Pending = tuple[Any, Mapping[str, Any], datetime, Mapping[str, Any] | None]
Build = Callable[[Any, Mapping[str, Any], datetime, Mapping[str, Any] | None], ScoreRecord]
# The writer shares the GIL with the requests: it yields after building each record (a few
# tenths of a millisecond) and after each commit, so that a request rarely waits for the
# interpreter's 5 ms switch interval. A commit costs far more than a record (a transaction, an
# fsync: measured 2026-12-02, about 1.5 ms of writer CPU a record at 4 records a commit, 0.7 at
# 16), so records are committed 16 at a time; the fsyncs run without the GIL.
_SLICE = 16


@dataclass
class RecorderStats:
    """What the recorder has done (for /metrics and tests)."""

    written: int = 0
    failed_batches: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class RecorderCounts:
    """A snapshot of the recorder: scores queued so far, written, dropped (over the queue bound),
    failed write attempts (retried) and records waiting now."""

    submitted: int
    written: int
    dropped: int
    failed_batches: int
    queued: int


class Recorder:
    """Queue scores that hand leads over; a daemon thread writes them in batches."""

    def __init__(
        self,
        store: HandoffStore,
        build: Build,
        mode: RecordMode = "routed",
        interval: float = 0.25,
        max_queue: int = 100_000,
    ):
        self.store, self.build, self.mode = store, build, mode
        self.interval, self.max_queue = interval, max_queue
        self.stats = RecorderStats()
        self._queue: deque[Pending] = deque()
        self._lock = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_pass: Callable[[], None] | None = None  # called by the writer after each pass

    def wants(self, action: str) -> bool:
        """Whether a score with this recommended action is recorded (cheap; request path)."""
        return self.mode == "all" or (self.mode == "routed" and action in ROUTED)

    def submit(
        self,
        response: Any,
        lead: Mapping[str, Any],
        handed_off_at: datetime,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one score (never blocks on the database). `body` is the lead's request body,
        kept by reference and read by the writer thread: the caller must not change it."""
        with self._lock:
            self._queue.append((response, lead, handed_off_at, body))
            self._submitted += 1
            if len(self._queue) > self.max_queue:
                self._queue.popleft()
                self.stats.dropped += 1
                self._done += 1
                self._lock.notify_all()

    def counts(self) -> RecorderCounts:
        """What the recorder has done so far (cheap; any thread)."""
        with self._lock:
            return RecorderCounts(
                submitted=self._submitted, written=self.stats.written,
                dropped=self.stats.dropped, failed_batches=self.stats.failed_batches,
                queued=len(self._queue),
            )  # fmt: skip

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="handoff-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._write()  # anything queued after the thread's last pass
        self._report()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every score submitted so far is written (or dropped); False on
        timeout. For tests, the demo and shutdown, never the request path."""
        with self._lock:
            target = self._submitted
            return self._lock.wait_for(lambda: self._done >= target, timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()
            self._report()

    def _report(self) -> None:
        if self.on_pass is None:
            return
        try:
            self.on_pass()
        except Exception:  # the metrics must never stop the writer
            log.exception("could not report the recorder's counts")

    def _write(self) -> None:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        for start in range(0, len(batch), _SLICE):
            if not self._write_slice(batch[start : start + _SLICE]):
                with self._lock:  # back to the queue, in order, to be retried
                    self._queue.extendleft(reversed(batch[start:]))
                return

    def _write_slice(self, items: list[Pending]) -> bool:
        """Build and commit a few records; False (logged) when the store refuses them."""
        try:
            records = []
            for item in items:
                records.append(self.build(*item))
                time.sleep(0)  # hand the GIL to the request path between records
            self.store.record(records, self.mode)
        except Exception:  # keep serving; the caller re-queues and the next pass retries
            self.stats.failed_batches += 1
            log.exception("could not record %d handoffs (will retry)", len(items))
            return False
        with self._lock:
            self.stats.written += len(items)
            self._done += len(items)
            self._lock.notify_all()
        time.sleep(0)  # hand the GIL to the request path between slices
        return True
