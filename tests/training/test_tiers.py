"""Tiers from the written policy: fixed probability cuts, shares of leads, or precision bands.

Fixed cuts (0.2, 0.08) leave B and C nearly empty on a world that converts at 5%; shares learned
on the calibration slice populate every tier at 5%, 20% and 40% alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from leadscore.serving.runtime import Thresholds, TierCuts
from leadscore.training.config import PolicyConfig, TierConfig
from leadscore.training.policy import compute_thresholds, tier_cuts

N = 4000


def world(base_rate: float, seed: int = 0) -> pd.DataFrame:
    """Calibrated scores around `base_rate` (a beta distribution), labels drawn from them."""
    rng = np.random.default_rng(seed)
    strength = 8.0
    p = rng.beta(base_rate * strength, (1 - base_rate) * strength, N)
    sources = rng.choice(["web", "sdr"], N)
    return pd.DataFrame({"p": p, "label": rng.random(N) < p, "lead_source": sources,
                         "lead_id": np.arange(N)})  # fmt: skip


def tiers_of(rows: pd.DataFrame, thresholds: Thresholds, cuts: TierCuts) -> pd.Series:
    mql = rows["p"] >= rows["lead_source"].map(thresholds.for_source)
    return pd.Series([cuts.tier(p, m) for p, m in zip(rows["p"], mql, strict=True)])


CAPACITY = PolicyConfig(kind="capacity", capacity=0.2, per_source_min_positives=10**6)


@pytest.mark.parametrize("base_rate", [0.05, 0.2, 0.4])
def test_shares_populate_every_tier_at_any_base_rate(base_rate: float) -> None:
    rows = world(base_rate)
    thresholds = compute_thresholds(rows, CAPACITY)
    cuts = tier_cuts(rows, thresholds, TierConfig(kind="share", b=0.2, c=0.3))
    shares = tiers_of(rows, thresholds, cuts).value_counts(normalize=True)
    # continuous scores: each tier holds its share to within a lead
    for tier, share in {"A": 0.2, "B": 0.2, "C": 0.3, "D": 0.3}.items():
        assert shares[tier] == pytest.approx(share, abs=1.5 / N), (tier, shares.to_dict())
    assert cuts.c <= cuts.b <= thresholds.global_threshold


def test_a_block_of_tied_scores_is_not_swallowed_by_the_tier_above() -> None:
    # an isotonic calibrator is flat between knots: here the lowest 35% of leads share one
    # probability, and the C cut (80% of leads above D) falls inside that block
    rows = world(0.05)
    low = rows["p"] <= rows["p"].quantile(0.35)
    rows.loc[low, "p"] = rows.loc[low, "p"].max()
    thresholds = compute_thresholds(rows, CAPACITY)
    cuts = tier_cuts(rows, thresholds, TierConfig(kind="share", b=0.3, c=0.3))
    shares = tiers_of(rows, thresholds, cuts).value_counts(normalize=True)
    # D cannot be 20% (the tie is 35%); the nearest split keeps the block in D, not C
    assert shares["D"] == pytest.approx(low.mean(), abs=1.5 / N)
    assert shares["C"] == pytest.approx(0.8 - 0.2 - 0.3 - (low.mean() - 0.2), abs=1.5 / N)


def test_fixed_cuts_leave_tiers_empty_on_a_rare_world() -> None:
    rows = world(0.05)
    thresholds = compute_thresholds(rows, CAPACITY)
    cuts = tier_cuts(rows, thresholds, TierConfig(kind="probability", b=0.2, c=0.08))
    assert cuts == TierCuts(0.2, 0.08)  # as written
    counts = tiers_of(rows, thresholds, cuts).value_counts()
    assert counts.get("B", 0) < 0.01 * N  # the MQL threshold is below 0.2 here


def test_precision_bands_keep_their_promise_and_are_the_widest_that_do() -> None:
    rows = world(0.2, seed=3)
    thresholds = compute_thresholds(rows, CAPACITY)
    cuts = tier_cuts(rows, thresholds, TierConfig(kind="precision", b=0.15, c=0.1))
    rest = rows[rows["p"] < thresholds.global_threshold].sort_values("p", ascending=False)
    for cut, promise in ((cuts.b, 0.15), (cuts.c, 0.1)):
        kept = rest[rest["p"] >= cut]
        assert kept["label"].mean() >= promise
        wider = rest.iloc[: len(kept) + 1]  # one lead more breaks it (or nothing is left)
        assert len(wider) == len(kept) or wider["label"].mean() < promise or cut == rest["p"].min()
    assert cuts.c <= cuts.b


def test_each_source_is_split_below_its_own_threshold() -> None:
    rows = world(0.2, seed=5)
    thresholds = Thresholds({"kind": "capacity"}, 0.3, {"sdr": 0.5})
    cuts = tier_cuts(rows, thresholds, TierConfig(kind="share", b=0.25, c=0.25))
    tiers = tiers_of(rows, thresholds, cuts)
    assert (tiers[rows["lead_source"] == "sdr"] == "A").sum() == (
        rows.query("lead_source == 'sdr'")["p"] >= 0.5
    ).sum()
    assert tiers.value_counts(normalize=True)["B"] == pytest.approx(0.25, abs=1.5 / N)


def test_all_mqls_leave_nothing_to_split() -> None:
    rows = world(0.2)
    cuts = tier_cuts(rows, Thresholds({"kind": "capacity"}, 0.0, {}), TierConfig(kind="share"))
    assert cuts == TierCuts(1.0, 1.0)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"kind": "share", "b": 0.6, "c": 0.5},
            "tier shares b + c must be at most 1, got 0.6 + 0.5",
        ),
        ({"kind": "probability", "b": 0.1, "c": 0.2}, "tier probability c must not exceed b"),
        ({"kind": "precision", "b": 0.1, "c": 0.2}, "tier precision c must not exceed b"),
        ({"kind": "deciles"}, "Input should be 'probability', 'share' or 'precision'"),
    ],
)
def test_bad_tier_settings_name_the_problem(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        TierConfig.model_validate(given)


@pytest.mark.slow
def test_training_learns_share_tiers_and_every_tier_is_used(train_bundle: Path) -> None:
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source
    from leadscore.features.spec import build_spec
    from leadscore.training.config import load_training_config
    from leadscore.training.data import build_training_set
    from leadscore.training.train import fit_scorer

    config = load_feature_config()
    cfg = load_training_config()
    cfg = cfg.model_copy(update={"tiers": TierConfig(kind="share", b=0.25, c=0.25)})
    ts = build_training_set(load_source(train_bundle, config), build_spec(config), cfg)
    fitted = fit_scorer(ts, config, cfg, progress=lambda _: None)
    held = fitted.held_out[fitted.held_out["lead_age_days"] == fitted.reference_age]
    thresholds, cuts = fitted.scorer.thresholds, fitted.scorer.tiers
    assert cuts != TierCuts(0.25, 0.25) and cuts.c <= cuts.b
    assert set(tiers_of(held, thresholds, cuts)) == {"A", "B", "C", "D"}
