"""Live drift: the scores and top features of the leads a model version scored, against the
training reference kept in its metadata.

A model trained with a drift reference (``meta["drift_reference"]``: bins and counts of the
calibrated score on the calibration slice and of the top features on the training snapshots)
gets a :class:`DriftRecorder` when it is swapped in. Every lead it scores adds one to one
bucket of each histogram (the score, each feature) of a Prometheus counter labelled
``{version, feature, bucket}``; the buckets are the reference's own bins
(:meth:`~leadscore.features.drift.Bins.locator`), so the labels come from a fixed set. The
bin lookups and the counter's children are prepared at swap time; a lead is a bisect or a dict
lookup per histogram into a list of this process, added to the counter at most
:data:`FLUSH_SECONDS` later (about 3 us a lead instead of 10 with an increment per histogram).

The comparison (:meth:`LiveDrift.report`) reads the counts summed across workers and computes
each histogram's PSI with :func:`~leadscore.features.drift.psi`. Below :data:`MIN_LEADS` leads
of a version it judges nothing (PSI on a few dozen leads is noise: with ten bins, 200 leads from
the reference's own distribution give a PSI around 0.05). Past it, a PSI of 0.2 or more
(shifted) is logged as a warning once per version and histogram: with several workers the
first to see it claims a marker file in the shared metrics directory, so the line is written
once, not once per worker.

Counts are per version: a new version starts at zero, a thresholds change of the same version
keeps counting (the same model and features), and a version served again later continues its
counts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio

from leadscore.features.drift import SHIFTED, STABLE, Bins, Kind, psi

log = logging.getLogger(__name__)

SCORE = "mql_probability"  # the score's histogram, beside the features' (never a feature name)
MIN_LEADS = 200  # leads of a version before its PSI is judged (see the module docstring)
FLUSH_SECONDS = 1.0  # a worker's leads reach the shared counts at most this much later
CHECK_SECONDS = 60.0  # how often each worker looks for a shifted PSI (0.2 or more) to log
Status = Literal["no_reference", "too_few_leads", "judged"]
Verdict = Literal["stable", "moderate", "shifted"]
Counts = Mapping[tuple[str, int], float]  # (histogram, bucket) -> leads, for one version


class CounterChild(Protocol):
    """One labelled child of a Prometheus counter."""

    def inc(self, amount: float = 1) -> None:
        """Add `amount`."""


class LabelledCounter(Protocol):
    """A Prometheus counter labelled ``version, feature, bucket``."""

    def labels(self, *values: str) -> CounterChild:
        """The child of these label values."""


@dataclass(frozen=True)
class Histogram:
    """The score or one feature: its reference bins and counts."""

    name: str
    kind: Kind
    bins: Bins
    reference: tuple[int, ...]


@dataclass(frozen=True)
class DriftReference:
    """What a model's traffic is compared with: the score's histogram, then the features'."""

    rows: int
    histograms: tuple[Histogram, ...]


def read_reference(
    meta: Mapping[str, Any], features: Collection[str] | None = None
) -> DriftReference | None:
    """The drift reference of a model's metadata; None when it has none. ValueError naming the
    field when it cannot be read, or (given the spec's feature names) names a feature the
    model does not build."""
    data = meta.get("drift_reference")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError(f"drift_reference: expected an object, got {type(data).__name__}")
    listed = data.get("features") or {}
    if not isinstance(listed, Mapping):
        raise ValueError("drift_reference.features: expected an object of feature: bins")
    histograms = [_histogram(SCORE, data.get("score"), "number")]
    for name, ref in listed.items():
        if name == SCORE or (features is not None and name not in features):
            raise ValueError(f"drift_reference.features: {name!r} is not a feature of the model")
        kind = ref.get("kind") if isinstance(ref, Mapping) else None
        histograms.append(_histogram(str(name), ref, kind))
    rows = data.get("rows", 0)
    if not isinstance(rows, int):
        raise ValueError(f"drift_reference.rows: expected a whole number, got {rows!r}")
    return DriftReference(rows, tuple(histograms))


def _histogram(name: str, ref: object, kind: object) -> Histogram:
    where = "drift_reference." + ("score" if name == SCORE else f"features.{name}")
    if not isinstance(ref, Mapping):
        raise ValueError(f"{where}: expected an object with kind, bins and counts")
    if kind not in ("number", "category"):
        raise ValueError(f"{where}.kind: expected 'number' or 'category', got {kind!r}")
    try:
        bins = Bins.from_dict({**ref, "kind": kind})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    counts = ref.get("counts")
    if (
        not isinstance(counts, list)
        or len(counts) != len(bins.labels)
        or not all(isinstance(c, int) and c >= 0 for c in counts)
    ):
        raise ValueError(f"{where}.counts: expected {len(bins.labels)} whole numbers >= 0")
    return Histogram(name, kind, bins, tuple(counts))


class DriftRecorder:
    """Counts one version's leads into its reference buckets; built once at swap time.

    A lead is counted in a list of this process (a bin lookup and an addition per histogram)
    and the list is added to the Prometheus counter at most :data:`FLUSH_SECONDS` later: by the
    next lead after that, by the monitor's periodic flush, or before this process reads the
    counts. A counter increment costs about a microsecond (a lock and a memory-mapped write
    with several workers), six of them per lead more than the rest of the recording.
    """

    def __init__(self, version: str, reference: DriftReference, counter: LabelledCounter):
        self.version = version
        self.reference = reference
        self._children: list[CounterChild] = []
        plan: list[tuple[str, Callable[[object], int], int]] = []
        for h in reference.histograms:
            plan.append((h.name, h.bins.locator(), len(self._children)))
            self._children += [
                counter.labels(version, h.name, str(i)) for i in range(len(h.reference))
            ]
        _, self._locate_score, self._score_at = plan[0]
        self._features = plan[1:]
        self._pending = [0] * len(self._children)
        self._lock = threading.Lock()  # leads are scored on the event loop and worker threads
        self._due = time.monotonic() + FLUSH_SECONDS

    def record(self, row: Mapping[str, Any], probability: float) -> None:
        """Count one scored lead: its calibrated probability and its feature row."""
        with self._lock:
            pending = self._pending
            pending[self._score_at + self._locate_score(probability)] += 1
            for name, locate, at in self._features:
                pending[at + locate(row.get(name))] += 1
            if time.monotonic() >= self._due:
                self._flush()

    def flush(self) -> None:
        """Add the leads counted so far to the Prometheus counter."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        pending = self._pending
        for i, n in enumerate(pending):
            if n:
                self._children[i].inc(n)
                pending[i] = 0
        self._due = time.monotonic() + FLUSH_SECONDS


@dataclass(frozen=True)
class HistogramDrift:
    """One histogram of a version's traffic against its reference."""

    name: str
    kind: Kind
    psi: float | None  # None below MIN_LEADS (or when the reference is empty)
    labels: tuple[str, ...]
    reference_share: tuple[float, ...]
    live_count: tuple[int, ...]

    @property
    def verdict(self) -> Verdict | None:
        """stable, moderate or shifted (the usual reading of the index); None when not judged."""
        if self.psi is None:
            return None
        return "stable" if self.psi < STABLE else "moderate" if self.psi < SHIFTED else "shifted"


@dataclass(frozen=True)
class DriftReport:
    """A served version's drift: whether it can be judged, and each histogram."""

    status: Status
    detail: str
    leads: int
    reference_rows: int | None
    histograms: tuple[HistogramDrift, ...] = ()


class LiveDrift:
    """The service's drift monitor: starts a recorder per swapped-in version and compares the
    counts it reads (`read_counts(version)`: summed across workers) with the reference.

    `shared_dir` (the multiprocess metrics directory, when workers share one) holds the markers
    that keep each warning to one line across workers; without it, one line per process.
    """

    def __init__(
        self,
        counter: LabelledCounter,
        read_counts: Callable[[str], Counts],
        shared_dir: Path | str | None = None,
        min_leads: int = MIN_LEADS,
    ):
        self.counter = counter
        self.read_counts = read_counts
        self.shared_dir = Path(shared_dir) if shared_dir else None
        self.min_leads = min_leads
        self._warned: set[tuple[str, str]] = set()
        self._recorders: dict[str, DriftRecorder] = {}  # every version this process served

    def start(
        self, version: str | None, meta: Mapping[str, Any], features: Collection[str] | None = None
    ) -> DriftRecorder | None:
        """The recorder of a version being swapped in (the one it had, when it comes back or
        only its thresholds changed); None when its model has no readable reference (logged:
        the model serves as before, untracked)."""
        try:
            reference = read_reference(meta, features)
        except ValueError as exc:
            log.warning("live drift off for version %s: %s", version, exc)
            return None
        if reference is None:
            return None
        label = version or ""
        recorder = self._recorders.get(label)
        if recorder is None or recorder.reference != reference:
            recorder = self._recorders[label] = DriftRecorder(label, reference, self.counter)
        return recorder

    def flush(self) -> None:
        """Add every recorder's pending leads to the counter (this process's)."""
        for recorder in list(self._recorders.values()):
            recorder.flush()

    def report(
        self,
        recorder: DriftRecorder | None,
        meta: Mapping[str, Any],
        features: Collection[str] | None = None,
    ) -> DriftReport:
        """The served version's drift from the counts summed across workers; a PSI of 0.2 or
        more is logged (once per version and histogram)."""
        if recorder is None:
            return DriftReport("no_reference", _why_untracked(meta, features), 0, None)
        recorder.flush()  # this process's own leads, up to now; the other workers' within 1 s
        counts = self.read_counts(recorder.version)
        reference = recorder.reference
        live = [[int(counts.get((h.name, i), 0)) for i in range(len(h.reference))]
                for h in reference.histograms]  # fmt: skip
        leads = sum(live[0])  # every lead lands in one bucket of the score
        judged = leads >= self.min_leads
        rows = tuple(
            HistogramDrift(
                h.name, h.kind, _psi(h.reference, got) if judged else None,
                tuple(h.bins.labels), _shares(h.reference), tuple(got),
            )
            for h, got in zip(reference.histograms, live, strict=True)
        )  # fmt: skip
        if not judged:
            detail = (f"too few leads to judge: {leads} scored by version {recorder.version}, "
                      f"at least {self.min_leads} needed")  # fmt: skip
            return DriftReport("too_few_leads", detail, leads, reference.rows, rows)
        self._warn(recorder.version, rows, leads)
        shifted = [r.name for r in rows if r.verdict == "shifted"]
        detail = (f"{len(shifted)} of {len(rows)} histograms shifted (PSI {SHIFTED:g} or more): "
                  + ", ".join(shifted) if shifted else f"every PSI under {SHIFTED:g}")  # fmt: skip
        return DriftReport("judged", f"{leads} leads: {detail}", leads, reference.rows, rows)

    def psi_values(self, recorder: DriftRecorder | None) -> list[tuple[str, str, float]]:
        """(version, histogram, PSI) of the served version once it can be judged (for the
        ``leadscore_drift_psi`` gauge); nothing before."""
        if recorder is None:
            return []
        report = self.report(recorder, {})
        return [(recorder.version, r.name, r.psi) for r in report.histograms if r.psi is not None]

    def check(self, recorder: DriftRecorder | None) -> None:
        """Log any shifted PSI (0.2 or more) not logged yet (what the periodic check runs)."""
        if recorder is not None:
            self.report(recorder, {})

    async def run(
        self, current: Callable[[], DriftRecorder | None], interval: float = CHECK_SECONDS
    ) -> None:
        """Until cancelled: flush every :data:`FLUSH_SECONDS` (so an idle worker's last leads
        are counted too) and check the served version every `interval` seconds (so a warning
        is written even when nobody scrapes `/metrics` or asks `/v1/model/drift`)."""
        checked = anyio.current_time()
        while True:
            await anyio.sleep(FLUSH_SECONDS)
            try:
                self.flush()
                if anyio.current_time() - checked >= interval:
                    checked = anyio.current_time()
                    await anyio.to_thread.run_sync(self.check, current())
            except Exception:  # a monitor that dies silently would be worse than a log line
                log.exception("live drift: check failed")

    def _warn(self, version: str, rows: tuple[HistogramDrift, ...], leads: int) -> None:
        for r in rows:
            if r.verdict == "shifted" and self._claim(version, r.name):
                log.warning(
                    "live drift: %s of model version %s has PSI %.3f (%g or more: shifted) "
                    "on %d leads since the version was swapped in",
                    r.name, version, r.psi, SHIFTED, leads,
                )  # fmt: skip

    def _claim(self, version: str, name: str) -> bool:
        """True the first time (this process, or any worker sharing the directory) asks."""
        key = (version, name)
        if key in self._warned:
            return False
        self._warned.add(key)
        if self.shared_dir is None:
            return True
        digest = hashlib.sha256(f"{version}\0{name}".encode()).hexdigest()[:24]
        try:  # O_EXCL: exactly one worker creates it (the name does not end in .db: not read)
            os.close(os.open(self.shared_dir / f"drift-warned-{digest}", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        except OSError as exc:  # a directory we cannot write to: warn from every worker
            log.debug("live drift: no warning marker (%s)", exc)
        return True


def _why_untracked(meta: Mapping[str, Any], features: Collection[str] | None) -> str:
    try:
        if read_reference(meta, features) is None:
            return ("the model has no drift reference (models trained before references were "
                    "kept): nothing to compare with")  # fmt: skip
    except ValueError as exc:
        return f"the model's drift reference cannot be read: {exc}"
    return "this version's leads are not being counted"  # a wiring fault: start() was not called


def _psi(reference: tuple[int, ...], live: list[int]) -> float | None:
    value = psi(reference, live)
    return None if math.isnan(value) else value


def _shares(counts: tuple[int, ...]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total if total else 0.0 for c in counts)
