"""The population stability index and the bins it is counted over."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadscore.features.drift import (
    MISSING,
    OTHER,
    SHARE_FLOOR,
    Bins,
    drift_table,
    feature_drift,
    fit_bins,
    psi,
)


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected, rel=1e-12)
    assert psi([50, 50], [50, 50]) == 0.0
    assert psi([10, 0], [10, 0]) == 0.0


def test_an_empty_bin_counts_at_the_floor() -> None:
    # shares 1/0 -> 0.5/0.5: the empty bin is SHARE_FLOOR, so the index is large and finite
    expected = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - SHARE_FLOOR) * math.log(0.5 / SHARE_FLOOR)
    assert psi([4, 0], [1, 1]) == pytest.approx(expected, rel=1e-12)


def test_mismatched_or_empty_counts() -> None:
    with pytest.raises(ValueError, match="one length"):
        psi([1, 2], [1, 2, 3])
    assert math.isnan(psi([0, 0], [1, 2]))


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=12))
def test_psi_is_never_negative_and_symmetric(pairs: list[tuple[int, int]]) -> None:
    ref, cur = [a for a, _ in pairs], [b for _, b in pairs]
    value = psi(ref, cur)
    if sum(ref) == 0 or sum(cur) == 0:
        assert math.isnan(value)
    else:
        assert value >= 0
        assert value == pytest.approx(psi(cur, ref), abs=1e-9)


def test_number_bins_edges_at_the_reference_quantiles() -> None:
    bins = fit_bins(pd.Series([1.0, 2.0, 3.0, 4.0]), "number", deciles=2)
    assert bins.edges == (2.0,)  # the median, as a value the reference has
    # 2.0 sits on the edge: the lower bin; "x" is not a number: missing, as is None
    counts = bins.counts(pd.Series([2.0, 3.0, None, "x", 1.0], dtype=object))
    assert counts.tolist() == [2.0, 1.0, 2.0]
    assert bins.labels == ["(-inf, 2]", "(2, inf]", MISSING]


def test_ties_are_merged_into_one_edge() -> None:
    bins = fit_bins(pd.Series([0.0] * 80 + [1.0] * 20), "number")
    assert bins.edges == (0.0, 1.0)


def test_category_bins_count_new_and_missing_values() -> None:
    bins = fit_bins(pd.Series(["a", "b", "a", None]), "category")
    assert bins.values == ("a", "b")
    counts = bins.counts(pd.Series(["a", "c", "c", None, "b"]))
    assert counts.tolist() == [1.0, 1.0, 2.0, 1.0]
    assert bins.labels == ["a", "b", OTHER, MISSING]


def test_same_distribution_is_stable_and_a_shift_is_not() -> None:
    rng = np.random.default_rng(7)
    ref = pd.Series(rng.normal(0, 1, 5000))
    same = feature_drift("x", ref, pd.Series(rng.normal(0, 1, 5000)), "number")
    moved = feature_drift("x", ref, pd.Series(rng.normal(1, 1, 5000)), "number")
    assert same.psi < 0.02 and same.verdict == "stable"
    # two unit normals one sd apart: the symmetrised KL divergence is 1; deciles catch most
    assert 0.6 < moved.psi < 1.1 and moved.verdict == "shifted"


def test_feature_drift_reports_new_vanished_and_missing() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    cur = pd.Series(["a"] * 40 + ["c"] * 40 + [None] * 20)
    row = feature_drift("band", ref, cur, "category")
    assert row.new_values == ("c",) and row.vanished_values == ("b",)
    assert (row.missing_before, row.missing_after) == (0.0, 0.2)
    assert row.reference_share == (0.5, 0.5, 0.0, 0.0)
    assert row.current_share == (0.4, 0.0, 0.4, 0.2)


def test_drift_table_ranks_the_shifted_feature_first() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    ref = pd.DataFrame({"steady": rng.normal(0, 1, n), "moved": rng.normal(0, 1, n),
                        "kind": rng.choice(["x", "y"], n)})  # fmt: skip
    cur = pd.DataFrame({"steady": rng.normal(0, 1, n), "moved": rng.normal(0.8, 1, n),
                        "kind": rng.choice(["x", "y"], n, p=[0.7, 0.3])})  # fmt: skip
    rows = drift_table(ref, cur, {"steady": "number", "moved": "number", "kind": "category"})
    assert [r.feature for r in rows] == ["moved", "kind", "steady"]
    with pytest.raises(KeyError, match="absent"):
        drift_table(ref, cur, {"absent": "number"})


def test_bins_without_reference_values() -> None:
    bins = fit_bins(pd.Series([None, None], dtype=float), "number")
    assert bins == Bins("number")
    assert bins.counts(pd.Series([1.0, None])).tolist() == [1.0, 1.0]


def test_bins_round_trip_through_json() -> None:
    import json

    from leadscore.features.drift import reference

    for values, kind in ((pd.Series([3.0, 1.0, 2.0, None, 5.5]), "number"),
                         (pd.Series(["b", "a", None, "b"]), "category")):  # fmt: skip
        bins = fit_bins(values, kind)  # type: ignore[arg-type]
        assert Bins.from_dict(json.loads(json.dumps(bins.to_dict()))) == bins
        kept = reference(values, kind)  # type: ignore[arg-type]
        assert sum(kept["counts"]) == len(values)  # type: ignore[arg-type]
        assert kept["counts"] == bins.counts(values).tolist()
    with pytest.raises(ValueError, match="bins of kind 'deciles'"):
        Bins.from_dict({"kind": "deciles"})
    with pytest.raises(ValueError, match="'edges' must be a list"):
        Bins.from_dict({"kind": "number", "edges": 3})


def test_one_value_at_a_time_lands_in_the_bin_counts_gives_it() -> None:
    numbers = Bins("number", edges=(0.0, 2.0, 5.0))
    locate = numbers.locator()
    # on an edge: that edge's bin; past the last: the open bin; not a number: missing (3)
    given = [-1.0, 0.0, 0.5, 2.0, 2.1, 5.0, 9.0, math.inf, None, math.nan, pd.NA, "x", "3"]
    assert [locate(v) for v in given] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 2]
    flags = Bins("category", values=("False", "True"))
    assert [flags.locator()(v) for v in (True, False, None, "maybe")] == [1, 0, 3, 2]


@given(
    st.lists(st.one_of(st.none(), st.floats(), st.integers(-5, 5), st.booleans(),
                       st.text(max_size=3)), max_size=40),
    st.lists(st.floats(-10, 10), max_size=5),
)  # fmt: skip
def test_locator_agrees_with_counts(values: list[object], edges: list[float]) -> None:
    series = pd.Series(values, dtype=object)
    numbers = Bins("number", edges=tuple(sorted(set(edges))))
    categories = fit_bins(pd.Series([str(v) for v in values[:5]]), "category")
    for bins in (numbers, categories):
        locate = bins.locator()
        located = np.bincount([locate(v) for v in values], minlength=len(bins.labels))
        assert located.tolist() == bins.counts(series).tolist()
