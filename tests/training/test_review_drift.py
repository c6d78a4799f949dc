"""The review's data drift on quarters made from one leadforge world (issue 15, must show).

The reference is one draw of leads; the next quarter is new leads of the same world, 91 days
later. Unshifted, no feature should pass PSI 0.1 (only sampling noise separates them); with
the lead-source mix and the company sizes changed on purpose, those two features come first.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.drift import STABLE
from leadscore.features.sources import load_source
from leadscore.features.sources.quarters import shift_bundle
from leadscore.features.spec import build_spec
from leadscore.training.review import data_drift, feature_kinds, snapshot_at_age
from tests.conftest import _generate

pytestmark = pytest.mark.slow

SEED, FIRST, BOTH = 11, 800, 1600  # leadforge repeats the first leads of a seed at a larger size
AGE = 30
SOURCE_MIX = {"sdr_outbound": 0.7, "inbound_marketing": 0.2, "partner_referral": 0.1}
BANDS = {"employee_band": {"200-499": "1000-1999"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("review")
    first = _generate(root / "first", "research_instructor", SEED, FIRST)
    both = _generate(root / "both", "research_instructor", SEED, BOTH)
    return {
        "first": first,
        "next": _shifted(both, root / "next"),
        "drifted": _shifted(both, root / "drifted", source_mix=SOURCE_MIX, band_shift=BANDS),
    }


def _shifted(src: Path, out: Path, **changes: object) -> Path:
    shift_bundle(src, out, days=91, seed=2, **changes)  # type: ignore[arg-type]
    return out


def _snapshots(
    world: dict[str, Path], config: FeatureConfig, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = build_spec(config)
    ref = snapshot_at_age(load_source(world["first"], config), spec, AGE)
    cur = snapshot_at_age(load_source(world[name], config), spec, AGE)
    cur = cur[~cur["lead_id"].isin(ref["lead_id"])]  # only the new leads
    assert len(cur) > 300
    return ref, cur


def test_an_unshifted_next_quarter_passes_no_feature_over_0_1(
    world: dict[str, Path], config: FeatureConfig
) -> None:
    ref, cur = _snapshots(world, config, "next")
    assert cur["as_of"].min() > ref["as_of"].max()  # truly a later quarter
    rows = data_drift(ref, cur, build_spec(config))
    assert len(rows) == len(feature_kinds(build_spec(config)))
    assert max(r.drift.psi for r in rows) < STABLE, [
        (r.drift.feature, r.drift.psi) for r in rows[:3]
    ]


def test_a_shifted_quarter_ranks_the_shifted_features_first(
    world: dict[str, Path], config: FeatureConfig
) -> None:
    ref, cur = _snapshots(world, config, "drifted")
    spec = build_spec(config)
    importance = {"lead_source": 5.0, "industry": 9.0, "employee_band": 0.0}
    rows = data_drift(ref, cur, spec, importance, top=2)
    assert {r.drift.feature for r in rows[:2]} == {"lead_source", "employee_band"}
    assert all(r.drift.verdict == "shifted" for r in rows[:2])
    ranks = {r.drift.feature: r.importance_rank for r in rows}
    assert (ranks["industry"], ranks["lead_source"], ranks["employee_band"]) == (1, 2, None)
    band = next(r.drift for r in rows if r.drift.feature == "employee_band")
    assert band.vanished_values == ("200-499",)  # every such company moved up a band


def test_training_keeps_the_reference_the_service_will_compare_with(
    train_bundle: Path, config: FeatureConfig
) -> None:
    from leadscore.features.drift import Bins
    from leadscore.training.config import load_training_config
    from leadscore.training.data import build_training_set
    from leadscore.training.train import fit_scorer

    cfg = load_training_config()
    ts = build_training_set(load_source(train_bundle, config), build_spec(config), cfg)
    fitted = fit_scorer(ts, config, cfg, progress=lambda _: None)
    kept = fitted.scorer.meta["drift_reference"]
    train = ts.part("train")
    assert kept["rows"] == len(train)
    assert sum(kept["score"]["counts"]) == len(fitted.held_out)
    # importance: mean |log-odds contribution| over the training snapshots, either family
    contrib = fitted.scorer.contributions_frame(train)
    gain = dict(zip(fitted.scorer.encoding.names, abs(contrib).mean(axis=0), strict=True))
    kinds = feature_kinds(ts.spec)
    expected = sorted((n for n in gain if gain[n] > 0 and n in kinds), key=lambda n: (-gain[n], n))
    assert list(kept["features"]) == expected[:5]
    for name, ref in kept["features"].items():
        bins = Bins.from_dict(ref)
        assert ref["counts"] == bins.counts(train[name]).tolist()
        assert sum(ref["counts"]) == len(train)
