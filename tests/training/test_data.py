"""The training table: exclusions, right-censoring, refusals, split by time."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.labels import NOT_FINAL
from leadscore.features.sources import load_source
from leadscore.features.spec import build_spec
from leadscore.training.config import TrainingConfig
from leadscore.training.data import TrainingDataError, build_training_set, time_split

pytestmark = pytest.mark.slow


def test_split_is_by_time_and_keeps_each_lead_in_one_slice(
    ri_bundle: Path, config: FeatureConfig
) -> None:
    crm = load_source(ri_bundle, config)
    ts = build_training_set(crm, build_spec(config), TrainingConfig(min_train_positives=10))
    per_lead = ts.rows.groupby("lead_id")["split"].nunique()
    assert (per_lead == 1).all()
    order = ["train", "stop", "calib", "test"]
    created = {s: ts.part(s)["created_at"] for s in order}
    for older, newer in itertools.pairwise(order):
        assert created[older].max() <= created[newer].min()
    assert set(ts.rows["lead_age_days"]) == {1.0, 7.0, 14.0, 30.0}
    assert ts.exclusions  # leads lost or won before as_of are not scoring cases


def test_right_censored_leads_are_excluded(ri_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(ri_bundle, config)
    created = crm.leads["created_at"]
    # the export was taken two days early: the newest leads' horizons have not ended
    crm.observation_end = created.max() + pd.Timedelta(days=88)
    censored = crm.leads.loc[created + pd.Timedelta(days=90) > crm.observation_end, "lead_id"]
    assert 0 < len(censored) < len(crm.leads)
    ts = build_training_set(crm, build_spec(config), TrainingConfig(min_train_positives=5))
    assert ts.exclusions[NOT_FINAL] > 0
    assert not set(censored) & set(ts.rows["lead_id"])


def test_sql_target_drops_opportunity_features(ri_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(ri_bundle, config)
    cfg = TrainingConfig.model_validate({"label": {"target": "sql"}, "min_train_positives": 5})
    ts = build_training_set(crm, build_spec(config), cfg)
    assert set(ts.dropped_features) == {
        "opportunity_opened", "opportunity_value", "days_since_opportunity_opened"
    }  # fmt: skip
    assert not set(ts.dropped_features) & set(ts.rows.columns)


def test_refuses_too_few_positives(ri_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(ri_bundle, config)
    with pytest.raises(
        TrainingDataError, match=r"train has \d+ positive snapshots .* at least 100000"
    ):
        build_training_set(crm, build_spec(config), TrainingConfig(min_train_positives=100000))


def test_refuses_a_single_class(ri_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(ri_bundle, config)
    crm.outcomes = crm.outcomes.assign(won_at=pd.NaT, sql_at=pd.NaT)
    with pytest.raises(TrainingDataError, match="scoring snapshots has label False"):
        build_training_set(crm, build_spec(config), TrainingConfig())


def test_refuses_a_source_without_dated_outcomes(sp_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(sp_bundle, config)
    with pytest.raises(TrainingDataError, match=r"no dated outcomes.*research_instructor"):
        build_training_set(crm, build_spec(config), TrainingConfig())


def test_time_split_fractions(ri_bundle: Path, config: FeatureConfig) -> None:
    crm = load_source(ri_bundle, config)
    counts = time_split(crm.leads, TrainingConfig()).value_counts()
    n = len(crm.leads)
    assert counts["train"] == round(0.65 * n)
    assert counts["test"] == n - round(0.8 * n)
