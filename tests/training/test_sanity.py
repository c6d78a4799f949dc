"""Sanity checks name their cause; the headline age follows how fast deals close."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import FeatureConfig
from leadscore.features.sources import from_frames
from leadscore.training.data import TrainingDataError
from leadscore.training.sanity import check_source, reference_age


def _crm(days_to_win: np.ndarray, config: FeatureConfig, *, late_rate: float | None = None,
         end: str | None = "2025-06-30", late_event: bool = True) -> object:  # fmt: skip
    n = len(days_to_win)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) * 0.5, unit="D")
    won = created + pd.to_timedelta(days_to_win, unit="D")
    if late_rate is not None:  # the newest fifth converts at another rate
        newest = np.arange(n) >= n - n // 5
        keep = np.random.default_rng(0).uniform(size=n) < late_rate
        won = won.where(~newest | keep)
    leads = pd.DataFrame({"lead_id": [f"l{i}" for i in range(n)], "created_at": created,
                          "source": "web"})  # fmt: skip
    outcomes = pd.DataFrame({"lead_id": leads["lead_id"], "won_at": won})
    events = pd.DataFrame({"event_id": ["e1"], "lead_id": ["l0"], "type": ["touch"],
                           "timestamp": [pd.Timestamp("2026-01-01")]})  # fmt: skip
    tables = {"leads": leads, "outcomes": outcomes} | ({"events": events} if late_event else {})
    return from_frames(tables, config, observation_end=pd.Timestamp(end) if end else None)


def test_fast_deals_move_the_headline_age(config: FeatureConfig) -> None:
    days = np.where(np.arange(400) % 4 == 0, np.random.default_rng(1).uniform(3, 25, 400), np.nan)
    crm = _crm(days, config)
    age, why = reference_age(crm, "won", 90, (1, 7, 14, 30), 30)  # type: ignore[arg-type]
    assert age in (1, 7, 14) and why is not None and "median converter" in why
    with pytest.raises(TrainingDataError, match="deals close fast here"):
        reference_age(_crm(np.where(np.arange(400) % 4 == 0, 0.5, np.nan), config),  # type: ignore[arg-type]
                      "won", 90, (1, 7), 7)  # fmt: skip
    slow = _crm(np.where(np.arange(400) % 4 == 0, 70.0, np.nan), config)
    assert reference_age(slow, "won", 90, (1, 30), 30) == (30, None)  # type: ignore[arg-type]


def test_each_check_names_its_cause(config: FeatureConfig) -> None:
    days = np.where(np.arange(400) % 3 == 0, 40.0, np.nan)
    days[5] = -3  # won before it was created
    notes = check_source(_crm(days, config, late_rate=0.1), "won", 90)  # type: ignore[arg-type]
    text = " | ".join(notes)
    assert "1 lead(s) have won_at before their created_at (e.g. l5)" in text
    assert "1 event(s) are dated after the observation end" in text
    assert "the conversion rate moves from" in text and "more than 2x" in text
    unfinished = check_source(_crm(days, config, end=None, late_event=False),  # type: ignore[arg-type]
                              "won", 90)  # fmt: skip
    assert any("no observation_end given" in n for n in unfinished)
