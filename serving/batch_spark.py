"""Batch scoring on Spark: the snapshot computed by Spark SQL, scored on the executors.

:func:`score_spark` is :func:`~leadscore.serving.batch.score_sql` for a cluster: the compiled
snapshot of every open lead is scored where it is computed (``mapInPandas`` with the same
:class:`~leadscore.serving.runtime.Scorer` the API and the local batch use) and written by
Spark as partitioned Parquet to ``DIR/``; the leads left out, with why, go to the sibling
``DIR.excluded/`` (:func:`~leadscore.features.sinks.excluded_path`, as ``--out DIR/`` on the
other engines). Nothing passes through the driver but two counts.

The scorer travels as its saved model directory (the files :meth:`Scorer.save` writes, no
pickle) and is loaded once per Python worker.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from leadscore.features.engines import ROW, cases_view, ordered_snapshot_sql
from leadscore.features.sinks import excluded_path
from leadscore.features.sql import typed_rows
from leadscore.serving.batch import StreamedScores
from leadscore.serving.runtime import Scorer

if TYPE_CHECKING:
    from leadscore.features.spark import SparkEngine

# a worker's scorers, by the digest of their files (a worker process serves many tasks)
_LOADED: dict[str, Scorer] = {}


def scorer_files(scorer: Scorer) -> dict[str, bytes]:
    """The files of `scorer`'s model directory, as :meth:`Scorer.save` writes them."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = scorer.save(Path(tmp) / "model")
        return {p.name: p.read_bytes() for p in sorted(saved.iterdir()) if p.is_file()}


def _scorer_of(files: Mapping[str, bytes]) -> Scorer:
    """The scorer saved as `files`, loaded once per process."""
    digest = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(files.items())))
    key = digest.hexdigest()
    if key not in _LOADED:
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                (Path(tmp) / name).write_bytes(content)
            _LOADED[key] = Scorer.from_dir(tmp)
    return _LOADED[key]


def _score_partition(frames: Iterator[pd.DataFrame], files: dict[str, bytes]) -> Iterator[
        pd.DataFrame]:  # fmt: skip
    """Runs on the executors (mapInPandas): snapshot rows in, the scorer's rows out."""
    scorer = _scorer_of(files)
    for frame in frames:
        if len(frame):
            yield scorer.score_frame(typed_rows(frame, scorer.spec))


def _spark_type(dtype: object) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "M":
        return "timestamp_ntz"  # naive UTC, as the local path writes it
    return {"f": "double", "b": "boolean", "i": "bigint", "u": "bigint"}.get(kind, "string")


def _probe_rows(scorer: Scorer) -> pd.DataFrame:
    """One snapshot row with no activity and every optional value missing."""
    row: dict[str, list[Any]] = {"lead_id": ["probe"], "as_of": [pd.Timestamp(0)],
                                 "lead_age_days": [0.0]}  # fmt: skip
    for f in scorer.spec:
        if f.kind != "age":
            row[f.name] = [0 if f.kind in ("count", "exists") else None]
    return typed_rows(pd.DataFrame(row), scorer.spec)


def score_schema(scorer: Scorer) -> str:
    """The Spark DDL schema of ``scorer.score_frame``'s rows (read off one scored row: an
    empty frame leaves the dtype of text columns to pandas' guess)."""
    probe = scorer.score_frame(_probe_rows(scorer))
    return ", ".join(f"`{name}` {_spark_type(dtype)}" for name, dtype in probe.dtypes.items())


def score_spark(engine: SparkEngine, scorer: Scorer, out: Path | str) -> StreamedScores:
    """Score every lead open at its as_of on Spark, whose canonical views and ``moments`` are
    registered (:func:`~leadscore.features.engines.canonical_views`,
    :func:`~leadscore.features.engines.moments_view`): scores to the directory `out`
    (partitioned Parquet, replaced if present), the excluded leads with why to
    ``<out>.excluded/`` beside it. Returns what was written, counted."""
    from pyspark.sql import functions as F

    target = str(scorer.meta.get("target", "won"))
    cases_view(engine, target)
    engine.view("open_cases", f"SELECT lead_id, as_of, {ROW} FROM cases WHERE reason IS NULL")
    rows = engine.spark.sql(ordered_snapshot_sql(engine, scorer.spec, "open_cases"))
    scored = rows.mapInPandas(partial(_score_partition, files=scorer_files(scorer)),
                              score_schema(scorer))  # fmt: skip
    directory = str(out).rstrip("/") + "/"
    scored.write.mode("overwrite").parquet(directory)
    excluded = excluded_path(directory)
    engine.spark.sql(
        "SELECT lead_id, CAST(as_of AS TIMESTAMP_NTZ) AS as_of, reason FROM cases "
        f"WHERE reason IS NOT NULL ORDER BY {ROW}"
    ).write.mode("overwrite").parquet(excluded)
    result = StreamedScores(directory, excluded, str(scorer.meta.get("model_name") or ""),
                            str(scorer.meta.get("version", "")))  # fmt: skip
    written = engine.spark.read.parquet(directory)
    counts = written.groupBy("tier").agg(F.count("*"), F.sum(F.col("is_mql").cast("int")),
                                         F.sum(F.col("stale").cast("int")))  # fmt: skip
    for tier, count, mqls, stale in counts.collect():
        result.scored += int(count)
        result.tiers[str(tier)] += int(count)
        result.mqls += int(mqls or 0)
        result.stale += int(stale or 0)
    reasons = engine.spark.read.parquet(excluded).groupBy("reason").count().collect()
    result.excluded = Counter({str(r["reason"]): int(r["count"]) for r in reasons})
    return result
