"""Model updates without downtime: watch the registry, load beside, smoke-score, swap.

MLflow's own server resolves its model once at start-up (MLflow issue #4039). Here a
background task polls the registry every `LEADSCORE_RELOAD_INTERVAL_SECONDS`: when the alias
(`champion`) points at another version, or that version's `leadscore.thresholds` tag changed
(`leadscore policy set`), the new model is built next to the one serving
(:func:`~leadscore.serving.api.service.build_served` loads it and scores the example lead), then
installed with one assignment. Requests read the holder once, so in-flight requests finish on
the version they started with. A version that fails to load or to score is refused, logged,
counted and shown in `/v1/model` and `/readyz`; the old one keeps serving and the refused
version is not retried until the registry changes again. `POST /v1/admin/reload` forces a
check. A registry that cannot be read (gone, locked, no answer within its timeout) gives the
result `error` with a detail starting `registry unavailable`, never `unchanged`; a version
that could not be fetched for that reason is tried again at the next check, not refused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from leadscore.serving.loader import thresholds_from_tag
from leadscore.serving.registry import THRESHOLDS_TAG, UNAVAILABLE, resolve
from leadscore.serving.runtime import Scorer

log = logging.getLogger(__name__)

Stamp = tuple[str, int]  # (registry version, thresholds revision)


def registry_stamp(uri: str) -> Stamp | None:
    """What a registry URI points at now; None for a path or run URI (nothing to watch)."""
    registered = resolve(uri)
    if registered is None:
        return None
    tag = registered.tags.get(THRESHOLDS_TAG)
    return registered.version, thresholds_from_tag(tag).revision if tag else 0


def unavailable(exc: object) -> str:
    """The one-line detail of a check that could not read the registry."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if UNAVAILABLE in text:
        text = text[text.index(UNAVAILABLE) + len(UNAVAILABLE) :].lstrip(": ")
    return f"{UNAVAILABLE}: {text}"


def served_stamp(scorer: Scorer) -> Stamp:
    """The stamp of a loaded scorer (version recorded by the loader, thresholds revision)."""
    return str(scorer.meta.get("version", "")), scorer.thresholds.revision


@dataclass
class CheckResult:
    """One look at the registry."""

    checked_at: str
    result: str  # unchanged | swapped | refused | not_watched | error
    detail: str
    serving: Stamp | None
    registry: Stamp | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class ModelWatcher:
    """Polls the registry and hot-swaps the served model; one check at a time."""

    def __init__(
        self,
        uri: str,
        current: Callable[[], Scorer | None],
        install: Callable[[], bool],
        refused_error: Callable[[], str | None],
        on_result: Callable[[CheckResult], None] = lambda _: None,
    ):
        self.uri = uri
        self._current = current
        self._install = install
        self._refused_error = refused_error
        self._on_result = on_result
        self._lock = threading.Lock()
        self._refused: Stamp | None = None
        self.last: CheckResult | None = None

    def check(self, force: bool = False) -> CheckResult:
        """Compare the registry with what is served; load, verify and swap if they differ.

        Blocking (registry calls, downloads): run it in a worker thread.
        """
        with self._lock:
            result = self._check(force)
            self.last = result
        self._on_result(result)
        return result

    def _check(self, force: bool) -> CheckResult:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        scorer = self._current()
        serving = served_stamp(scorer) if scorer else None
        try:
            target = registry_stamp(self.uri)
        except Exception as exc:  # registry down: keep serving what we have
            log.warning("model watcher: cannot read the registry: %s", exc)
            return CheckResult(now, "error", unavailable(exc), serving, None)
        if target is None:
            detail = f"{self.uri} is not a registry URI"
            return CheckResult(now, "not_watched", detail, serving, None)
        if target == serving:
            detail = "serving what the registry names"
            return CheckResult(now, "unchanged", detail, serving, target)
        if target == self._refused and not force:
            return CheckResult(now, "refused", self._refused_error() or "refused", serving, target)
        if self._install():
            self._refused = None
            new = self._current()
            stamp = served_stamp(new) if new else None
            log.info("model watcher: now serving %s (was %s)", stamp, serving)
            return CheckResult(now, "swapped", f"now serving {stamp}", stamp, target)
        error = self._refused_error() or "refused"
        if UNAVAILABLE in error:  # the registry failed mid-way, not the model: try it again
            return CheckResult(now, "error", unavailable(error), serving, target)
        self._refused = target
        return CheckResult(now, "refused", error, serving, target)

    async def run(self, interval: float) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            await anyio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(self.check)
            except Exception:  # a watcher that dies silently would be worse than a log line
                log.exception("model watcher: check failed")
