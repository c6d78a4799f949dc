"""Batch scoring, (c) of the serving benchmark: the steps of ``leadscore score`` in-process
against raw ``Booster.predict`` on the same feature matrix.

The command's steps are the package's functions (``serving.loader.load_scorer``,
``features.sources.load_source``, ``serving.batch.score_source``, ``BatchScores.write``), run on
a synthetic canonical directory (``synthetic.write_canonical``); only the console output of the
command is left out. Its scores must be the calibrator applied to the raw booster's output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import common
import numpy as np
import pandas as pd
import synthetic
from http_load import Workspace
from reference_mlflow import TOLERANCE

from leadscore.features.config import FeatureConfig
from leadscore.features.snapshot import snapshot
from leadscore.features.sources import load_source
from leadscore.serving.batch import as_of_for, score_source
from leadscore.serving.loader import load_scorer


def bench_batch(
    ws: Workspace, model_uri: str, leads: int, events: int, repeats: int, seed: int,
    as_of_days: float,
) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """The steps of `leadscore score --as-of-days N`, in-process, against raw Booster.predict on
    the same feature matrix (timed interleaved, best of `repeats`); the result and the leads
    whose scores are not the calibrator applied to the raw booster's output."""
    import mlflow

    mlflow.set_tracking_uri(ws.tracking_uri)
    data = synthetic.write_canonical(ws.root / "batch", leads, events, seed)
    out = ws.root / "batch-scores.parquet"
    now = datetime.now(UTC).replace(tzinfo=None)  # unused with as_of_days, as in the command

    def ours() -> None:  # what `leadscore score --as-of-days N` runs, without its console
        scorer = load_scorer(model_uri)
        config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
        crm = load_source(data, config)
        score_source(crm, scorer, as_of_for(crm, as_of_days, now)).write(out)

    # the same feature matrix, built once, untimed (its phases timed once)
    scorer = load_scorer(model_uri)
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    with common.stopwatch() as load_validate:
        crm = load_source(data, config)
    with common.stopwatch() as snap:
        rows = snapshot(crm, scorer.spec, as_of_for(crm, as_of_days, now))
    with common.stopwatch() as score_frame:
        scorer.score_frame(rows)
    phases = {"load_validate_s": load_validate.seconds, "snapshot_s": snap.seconds,
              "score_frame_s": score_frame.seconds}  # fmt: skip
    x = scorer.encoding.frame(rows)

    def raw() -> np.ndarray:
        return np.asarray(scorer.booster.predict(x), dtype=np.float64)

    best, outputs = common.interleaved_best({"ours": ours, "raw": raw}, repeats)

    problems = []
    scores = pd.read_parquet(out)  # written by the warm-up and every timed run
    want = pd.Series(scorer.calibrator(outputs["raw"]), index=rows["lead_id"].to_numpy())
    if len(scores) != len(rows) or set(scores["lead_id"]) != set(want.index):
        problems.append(f"batch: score_source scored {len(scores):,} leads, expected "
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
        "leads": leads, "events": events, "scored": n, "as_of_days": as_of_days,
        "features": len(scorer.encoding.names), "trees": scorer.booster.num_trees(),
        "repeats": repeats,
        "leadscore_score": {"seconds": best["ours"], "rows_per_s": n / best["ours"]},
        "raw_booster": {"seconds": best["raw"], "rows_per_s": n / best["raw"]},
        "phases_once": phases,
    }  # fmt: skip
    return result, problems
