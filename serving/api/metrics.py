"""Prometheus metrics of the scoring API, on a registry of the app's own.

* ``leadscore_requests_total{route,method,status}`` and
  ``leadscore_request_duration_seconds{route,method,status}``: every request, by route
  template (``/v1/score``, never a raw path; ``unmatched`` when no route matched), method
  (one of :data:`METHODS`, any other is ``other``) and status; a client that went away before
  its response is counted with status ``499`` (nginx's "client closed request"). Every label
  comes from a fixed set, so no client can grow the exposition;
* ``leadscore_scores_total{tier}``: scored leads by tier;
* ``leadscore_model_info{name,version,alias}``: 1 for the served model;
* ``leadscore_model_checks_total{result}``: model watcher checks (swapped, refused, ...);
* ``leadscore_handoffs_waiting``, ``leadscore_handoffs_breached`` (waiting, untouched, past the
  SLA deadline) and ``leadscore_handoff_acceptance_rate{tier}``: read from the handoff store at
  scrape time, so several workers report the store's numbers once instead of adding them up;
* ``leadscore_handoff_records_submitted_total``, ``..._written_total``, ``..._dropped_total``
  (over the queue bound), ``leadscore_handoff_record_failures_total`` (write attempts the store
  refused; retried) and ``leadscore_handoff_records_queued``: the handoff recorder's counts,
  pushed by its writer thread after each pass and at scrape time (each worker has a recorder,
  so with several workers they are added up like the request counters);
* ``leadscore_drift_observations_total{version,feature,bucket}``: leads scored by each model
  version, by histogram (``feature``: ``mql_probability`` for the calibrated score, or one of
  the model's top features) and bucket (the index of a bin of the model's drift reference; see
  :mod:`leadscore.serving.live_drift`; each worker adds its leads within a second, and before
  it answers a scrape). Only a model with a drift reference has them; a new version starts
  its own series at zero and the series of the versions before are kept (in multiprocess mode
  a series lives in every worker's file, so no worker could remove it);
* ``leadscore_drift_psi{version,feature}``: each histogram's PSI for the served version against
  its reference, computed at scrape time from the counts summed across workers, and only once
  the version has scored enough leads to judge (:data:`~leadscore.serving.live_drift.MIN_LEADS`).

With several workers (``leadscore serve --workers N``) each worker is a process; the serve
command points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory and `/metrics` then adds up
every worker's values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OTHER_METHOD = "other"
DISCONNECTED = 499  # nginx's "client closed request": the client left before its response
CONTENT_TYPE = CONTENT_TYPE_LATEST
DRIFT_OBSERVATIONS, DRIFT_PSI = "leadscore_drift_observations", "leadscore_drift_psi"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreGauges(Collector):
    """Handoff gauges computed from the store when scraped (`read` returns
    :meth:`HandoffStore.gauges` or None while the store is off)."""

    def __init__(self, read: Callable[[], dict[str, Any] | None]):
        self.read = read

    def collect(self) -> Iterator[Metric]:
        """The gauges; nothing when the store is off."""
        data = self.read()
        if data is None:
            return
        yield GaugeMetricFamily(
            "leadscore_handoffs_waiting", "Handed-over leads without a verdict.",
            value=data["waiting"],
        )  # fmt: skip
        yield GaugeMetricFamily(
            "leadscore_handoffs_breached",
            "Handed-over leads without a verdict or touch, past their SLA deadline.",
            value=data["breached"],
        )
        rate = GaugeMetricFamily(
            "leadscore_handoff_acceptance_rate",
            "Accepted / dispositioned handoffs, by tier at handoff.", labels=["tier"],
        )  # fmt: skip
        for tier, counts in sorted(data["by_tier"].items()):
            total = counts["accepted"] + counts["rejected"]
            if total:
                rate.add_metric([tier], counts["accepted"] / total)
        yield rate


class DriftGauges(Collector):
    """The served version's PSI per histogram, computed when scraped (`read` returns
    ``(version, feature, psi)`` triples: nothing until the version can be judged)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, float]]]):
        self.read = read

    def collect(self) -> Iterator[Metric]:
        """The gauge; no sample while there is nothing to judge."""
        family = GaugeMetricFamily(
            DRIFT_PSI, "Population stability index of the served version's scored leads against "
            "its training reference, by histogram (the score or a top feature).",
            labels=["version", "feature"],
        )  # fmt: skip
        for version, feature, value in self.read():
            family.add_metric([version, feature], value)
        yield family


class RecorderCounts(Protocol):
    """What :meth:`Recorder.counts` returns (read without importing the store here)."""

    submitted: int
    written: int
    dropped: int
    failed_batches: int
    queued: int


class RecorderMetrics:
    """The handoff recorder's counters as Prometheus metrics, updated from its counts (which
    only grow) by the difference since the last update; safe from any thread."""

    def __init__(self, registry: CollectorRegistry):
        name = "leadscore_handoff_records"
        self.submitted = Counter(
            f"{name}_submitted", "Scores queued for the handoff store.", registry=registry
        )
        self.written = Counter(
            f"{name}_written", "Handoff records committed to the store.", registry=registry
        )
        self.dropped = Counter(
            f"{name}_dropped", "Queued handoff records dropped over the queue bound.",
            registry=registry,
        )  # fmt: skip
        self.failures = Counter(
            "leadscore_handoff_record_failures",
            "Handoff record writes the store refused (the records are retried).",
            registry=registry,
        )
        self.queued = Gauge(
            f"{name}_queued", "Handoff records waiting for the writer.", registry=registry,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self._lock = threading.Lock()
        self._seen = (0, 0, 0, 0)
        self.read: Callable[[], RecorderCounts] | None = None

    def update(self) -> None:
        """Bring the metrics up to the recorder's counts (no-op without a recorder)."""
        read = self.read
        if read is None:
            return
        with self._lock:
            counts = read()
            now = (counts.submitted, counts.written, counts.dropped, counts.failed_batches)
            for counter, before, after in zip(
                (self.submitted, self.written, self.dropped, self.failures), self._seen, now,
                strict=True,
            ):  # fmt: skip
                if after > before:
                    counter.inc(after - before)
            self._seen = now
            self.queued.set(counts.queued)


class Metrics:
    """The app's metrics; one instance per app (tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "leadscore_requests", "HTTP requests.", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "leadscore_request_duration_seconds", "HTTP request latency.",
            ["route", "method", "status"], buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.scores = Counter(
            "leadscore_scores", "Scored leads by tier.", ["tier"], registry=self.registry
        )
        self.reloads = Counter(
            "leadscore_model_checks", "Model watcher checks by result (swapped, refused, ...).",
            ["result"], registry=self.registry,
        )  # fmt: skip
        self.model = Gauge(
            "leadscore_model_info", "The served model (value 1).", ["name", "version", "alias"],
            registry=self.registry, multiprocess_mode="liveall",
        )  # fmt: skip
        self.drift = Counter(
            DRIFT_OBSERVATIONS,
            "Scored leads by model version, histogram (the score or a top feature) and bucket "
            "of the model's drift reference.",
            ["version", "feature", "bucket"], registry=self.registry,
        )  # fmt: skip
        self.recorder = RecorderMetrics(self.registry)
        self.store: StoreGauges | None = None
        self.drift_gauges: DriftGauges | None = None
        self._drift_flush: Callable[[], None] = lambda: None
        # the request metrics' children by labels: looked up once, not on every request
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def watch_store(self, read: Callable[[], dict[str, Any] | None]) -> None:
        """Report the handoff store's gauges (computed at scrape time)."""
        self.store = StoreGauges(read)
        self.registry.register(self.store)

    def watch_drift(
        self, read: Callable[[], Iterable[tuple[str, str, float]]], flush: Callable[[], None]
    ) -> None:
        """Report the served version's PSI per histogram (computed at scrape time); `flush`
        adds the leads this process counted but has not yet added to the counter (called
        before every scrape)."""
        self.drift_gauges = DriftGauges(read)
        self._drift_flush = flush
        self.registry.register(self.drift_gauges)

    def drift_counts(self, version: str) -> dict[tuple[str, int], float]:
        """One version's drift counts by (feature, bucket): all workers' added up in
        multiprocess mode (read from their files, as `/metrics` reads them), else this app's."""
        if os.environ.get(MULTIPROC_ENV):
            families: Iterable[Metric] = MultiProcessCollector(None).collect()
        else:
            families = self.drift.collect()
        counts: dict[tuple[str, int], float] = {}
        total = DRIFT_OBSERVATIONS + "_total"
        for family in families:
            if family.name != DRIFT_OBSERVATIONS:
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name == total and labels.get("version") == version:
                    key = (labels["feature"], int(labels["bucket"]))
                    counts[key] = counts.get(key, 0.0) + sample.value
        return counts

    def watch_recorder(self, read: Callable[[], RecorderCounts]) -> Callable[[], None]:
        """Report the handoff recorder's counts (`read` returns them); returns the function
        that brings the metrics up to date, for the recorder to call after each pass (they are
        also brought up to date at every scrape)."""
        self.recorder.read = read
        self.recorder.update()
        return self.recorder.update

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request (an unknown method is counted as ``other``)."""
        labels = (route, method if method in METHODS else OTHER_METHOD, str(status))
        children = self._children.get(labels)
        if children is None:  # bounded: every label comes from a fixed set
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def served(self, name: str | None, version: str | None, alias: str | None) -> None:
        """Record which model is served (replacing the previous one)."""
        self.model.clear()
        self.model.labels(name or "", version or "", alias or "").set(1)

    def render(self) -> bytes:
        """The text exposition format; all workers' values in multiprocess mode."""
        self.recorder.update()
        self._drift_flush()
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            for collector in (self.store, self.drift_gauges):
                if collector is not None:
                    registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)
