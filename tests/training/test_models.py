"""Calibrator choice: never reverses the ranking, keeps raw probabilities on thin evidence."""

from __future__ import annotations

import numpy as np

from leadscore.training.models import choose_calibrator


def _data(n: int, slope: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.05, 0.95, n)
    p = 1 / (1 + np.exp(-slope * (raw - 0.5) * 6))
    y = (rng.uniform(size=n) < p).astype(int)
    return raw, y, np.arange(n).astype(str)


def test_reversed_signal_never_yields_a_reversing_sigmoid() -> None:
    raw, y, groups = _data(2000, slope=-1.0)  # the booster ranks backwards on this slice
    cal, _ = choose_calibrator(raw, y, groups, ("sigmoid", "none"))
    assert cal.method == "none" or (cal.method == "sigmoid" and cal.a > 0)
    out = cal(np.array([0.1, 0.9]))
    assert out[1] >= out[0]  # monotone non-decreasing, whatever was chosen


def test_too_few_positive_leads_keeps_raw_probabilities() -> None:
    raw, y, groups = _data(300, slope=1.0)
    cal, scores = choose_calibrator(raw, y, groups, ("isotonic", "sigmoid", "none"),
                                    min_positive_leads=10_000)  # fmt: skip
    assert cal.method == "none"
    assert list(scores) == ["none"]


def test_miscalibrated_scores_get_a_calibrator() -> None:
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.0, 1.0, 4000)
    y = (rng.uniform(size=4000) < raw * 0.3).astype(int)  # raw overstates by ~3x
    methods = ("isotonic", "sigmoid", "none")
    groups = np.arange(4000).astype(str)
    cal, scores = choose_calibrator(raw, y, groups, methods, min_positive_leads=50)
    assert cal.method in ("isotonic", "sigmoid")
    assert scores[cal.method] < scores["none"]
    assert abs(float(np.mean(cal(raw))) - float(y.mean())) < 0.02
