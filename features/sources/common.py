"""What every CRM adapter needs: numbers into the declared bands, job titles into role and
seniority, and the mapping file each source reads its field names from.

Adapters (Salesforce, HubSpot, flat files) turn an export into canonical raw frames and hand
them to :func:`~leadscore.features.sources.canonical.from_frames`; these helpers keep them from
writing the same rules three times.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from leadscore.features.configdir import config_file
from leadscore.features.yamlfile import load_yaml

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMbB]?)")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}


def band_bounds(band: str) -> tuple[float, float]:
    """The numbers a band label covers: ``200-499`` -> (200, 499), ``2000+`` -> (2000, inf),
    ``<$1M`` -> (-inf, 1e6), ``$10M-$50M`` -> (1e7, 5e7)."""
    numbers = [float(n) * _SCALE[s.lower()] for n, s in _NUMBER.findall(band.replace(",", ""))]
    text = band.strip()
    if not numbers:
        raise ValueError(f"band {band!r} names no number")
    if text.startswith("<"):
        return -math.inf, numbers[0]
    if text.endswith("+"):
        return numbers[0], math.inf
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    return numbers[0], numbers[1]


def to_band(values: pd.Series, order: Sequence[str]) -> pd.Series:
    """Numbers (employees, revenue) as the declared band each falls in; missing when the value
    is missing or outside every band. A value between two bands' bounds (499.5) goes to the
    higher one: bands are read as [low, next band's low)."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    lows = np.array([band_bounds(b)[0] for b in order])
    out = np.full(len(numbers), None, dtype=object)
    for i, band in enumerate(order):
        upper = lows[i + 1] if i + 1 < len(order) else band_bounds(band)[1] + 1e-9
        inside = (numbers >= lows[i]) & (numbers < upper)
        if i == len(order) - 1 and math.isinf(band_bounds(band)[1]):
            inside = numbers >= lows[i]
        out[inside] = band
    return pd.Series(out, index=values.index, dtype="string")


def number_in(band: str) -> float:
    """A representative number inside a band (for writers): its lower bound, or just under the
    upper bound of an open-below band."""
    low, high = band_bounds(band)
    if math.isinf(low):
        return high / 2
    return low


class TitleRule(BaseModel):
    """One pattern (a case-insensitive regular expression) and what a matching title means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    role_function: str | None = None
    seniority: str | None = None
    buyer_role: str | None = None


class TitleRules(BaseModel):
    """`titles.yaml`: job titles into role, seniority and buyer role, first match per field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[TitleRule, ...] = Field(default=())

    def classify(self, titles: pd.Series) -> pd.DataFrame:
        """`role_function`, `seniority`, `buyer_role` for each title (missing when no rule
        names it); the first rule that matches and names a field wins for that field."""
        text = titles.astype("string").fillna("").tolist()
        out = pd.DataFrame(index=titles.index, columns=["role_function", "seniority",
                                                         "buyer_role"], dtype="string")  # fmt: skip
        for rule in self.rules:
            search = re.compile(rule.pattern, re.IGNORECASE).search
            hit = np.fromiter((search(s) is not None for s in text), dtype=bool, count=len(text))
            for column in out.columns:
                value = getattr(rule, column)
                if value is not None:
                    fill = hit & out[column].isna().to_numpy()
                    out.loc[fill, column] = value
        return out


def load_title_rules(path: Path | None = None) -> TitleRules:
    """`titles.yaml` (default: in the config directory)."""
    return load_yaml(path or config_file("titles.yaml"), TitleRules, "job title rules")
