"""Scoring on Spark (`serving.batch_spark`) equals the local batch path, lead by lead.

A leadforge world goes through canonical Parquet to Spark, is scored there by the toy scorer
(``mapInPandas``) and written as partitioned Parquet; the local path
(:func:`~leadscore.serving.batch.score_source`) scores the same world in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from leadscore.features.config import load_feature_config
from leadscore.features.engines import canonical_views, moments_view
from leadscore.features.snapshot import as_of_after_creation
from leadscore.features.sources import load_source
from leadscore.features.sources.canonical import write_canonical
from leadscore.features.spark import SparkEngine, spark_session
from leadscore.serving.batch import score_source
from leadscore.serving.batch_spark import score_schema, score_spark
from leadscore.serving.runtime import Scorer

pytestmark = pytest.mark.slow  # Spark


@pytest.fixture(scope="session")
def spark() -> Any:
    """The process's Spark session (one per test session: later calls reuse it)."""
    return spark_session()


def test_schema_is_the_score_frame(toy_model_dir: Path) -> None:
    scorer = Scorer.from_dir(toy_model_dir)
    schema = score_schema(scorer)
    assert schema.startswith("`lead_id` string, `as_of` timestamp_ntz, `lead_age_days` double")
    assert "`is_mql` boolean" in schema and "`mql_probability` double" in schema


def test_spark_scores_equal_the_local_batch(
    spark: Any, ri_bundle: Path, toy_model_dir: Path, tmp_path: Path
) -> None:
    config = load_feature_config()
    scorer = Scorer.from_dir(toy_model_dir)
    crm = load_source(ri_bundle, config)
    days = 21
    local = score_source(crm, scorer, as_of_after_creation(crm.leads, days))
    root = write_canonical(crm, tmp_path / "canonical")
    engine = SparkEngine(session=spark)
    try:
        start = time.perf_counter()
        canonical_views(engine, root, config)
        moments_view(engine, days, None)
        written = score_spark(engine, scorer, tmp_path / "scores")
        print(f"\nSpark scoring of {len(crm.leads)} leads: {time.perf_counter() - start:.1f} s")
    finally:
        engine.close()
    assert written.excluded_path == str(tmp_path / "scores.excluded") + "/"
    scores = pd.read_parquet(tmp_path / "scores").set_index("lead_id").sort_index()
    expected = local.scores.set_index("lead_id").sort_index()
    assert scores.index.tolist() == expected.index.astype(str).tolist()
    np.testing.assert_allclose(scores["mql_probability"], expected["mql_probability"],
                               rtol=0, atol=1e-9)  # fmt: skip
    for col in ("tier", "is_mql", "stale", "threshold", "model_version"):
        assert scores[col].tolist() == expected[col].tolist(), col
    assert (scores["as_of"] == expected["as_of"]).all()
    excluded = pd.read_parquet(written.excluded_path)
    assert len(local.excluded) > 0  # the comparison below is not vacuous
    assert excluded["lead_id"].tolist() == local.excluded["lead_id"].astype(str).tolist()
    assert excluded["reason"].tolist() == local.excluded["reason"].astype(str).tolist()
    assert (excluded["as_of"].to_numpy() == local.excluded["as_of"].to_numpy()).all()
    assert written.scored == len(scores) and written.tier_counts() == local.tier_counts()
    assert dict(written.excluded) == local.excluded["reason"].value_counts().to_dict()
