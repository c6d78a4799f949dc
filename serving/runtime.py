"""The scorer runtime: one object that turns canonical leads into calibrated MQL scores.

The API, `leadscore score` and the MLflow pyfunc all execute this module; training imports it
only to assemble and save what it learned. A model directory holds no pickle:

* ``model.lgb``: the LightGBM booster in its text format;
* ``scorer.json``: feature spec, input encoding (learned vocabularies, band orders),
  calibrator, thresholds and tier cut points, and metadata (trained ages, data window).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.features.errors import LeadscoreError
from leadscore.features.online import OnlineBuilder
from leadscore.features.spec import Feature, FeatureSpec

BOOSTER_FILE = "model.lgb"
SCORER_FILE = "scorer.json"
FORMAT_VERSION = 1
TIERS = ("A", "B", "C", "D")


class ScorerError(LeadscoreError, ValueError):
    """A model directory cannot be served by this code (missing file, unknown format)."""


# ---------------------------------------------------------------------------------------------
# input encoding


@dataclass(frozen=True)
class Encoding:
    """How feature values become the model's numeric input, one column per spec feature.

    Numbers, counts and booleans pass through as floats (missing -> NaN). Ordered bands become
    their rank in the declared order. Nominal categories become their index in the
    vocabulary learned at training (a LightGBM categorical). A category outside its
    vocabulary is NaN for the model and reported as unseen.
    """

    names: tuple[str, ...]
    vocabularies: dict[str, tuple[str, ...]]  # nominal and ordinal features
    categorical: tuple[str, ...]  # nominal features (LightGBM categorical_feature)

    @classmethod
    def learn(cls, spec: FeatureSpec, rows: pd.DataFrame, min_count: int = 1) -> Encoding:
        """Learn nominal vocabularies from training rows; take band orders from the spec."""
        vocab: dict[str, tuple[str, ...]] = {}
        nominal = []
        for f in spec:
            if f.dtype == "ordinal" and f.categories:
                vocab[f.name] = tuple(f.categories)
            elif f.dtype in ("category", "ordinal"):
                counts = rows[f.name].dropna().astype(str).value_counts()
                learned = sorted(str(v) for v, n in counts.items() if n >= min_count)
                declared = list(f.categories or ())
                vocab[f.name] = tuple(declared + [v for v in learned if v not in declared])
                nominal.append(f.name)
        return cls(tuple(spec.names), vocab, tuple(nominal))

    def frame(self, rows: pd.DataFrame) -> np.ndarray:
        """Encode a DataFrame of snapshot rows (batch path)."""
        out = np.empty((len(rows), len(self.names)), dtype=np.float64)
        for j, name in enumerate(self.names):
            col = rows[name]
            if name in self.vocabularies:
                codes = pd.Categorical(col.astype(object), categories=self.vocabularies[name]).codes
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                numeric = pd.to_numeric(col, errors="coerce")
                out[:, j] = numeric.to_numpy(dtype="float64", na_value=np.nan)
        return out

    def row(self, values: Mapping[str, Any]) -> np.ndarray:
        """Encode one feature row (one-lead path, no pandas); equal to :meth:`frame`."""
        out = np.empty(len(self.names), dtype=np.float64)
        index = self._index
        for j, name in enumerate(self.names):
            value = values.get(name)
            if name in index:
                code = index[name].get(None if value is None else str(value))
                out[j] = math.nan if code is None else code
            elif value is None:
                out[j] = math.nan
            else:
                out[j] = float(value)
        return out

    def unseen(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Category values of one row that the model never saw (feature -> value)."""
        return {
            name: str(values[name])
            for name, vocab in self._index.items()
            if values.get(name) is not None and str(values[name]) not in vocab
        }

    @property
    def _index(self) -> dict[str, dict[str | None, int]]:
        cached: dict[str, dict[str | None, int]] | None = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {n: {v: i for i, v in enumerate(vs)} for n, vs in self.vocabularies.items()}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "names": list(self.names),
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "categorical": list(self.categorical),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Encoding:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(data["names"]),
            {k: tuple(v) for k, v in data["vocabularies"].items()},
            tuple(data["categorical"]),
        )


# ---------------------------------------------------------------------------------------------
# calibration, thresholds, tiers


@dataclass(frozen=True)
class Calibrator:
    """Maps the booster's raw probability to a calibrated one.

    `isotonic`: piecewise-linear through (x, y) knots (as scikit-learn's IsotonicRegression
    predicts, clipped at the ends); `sigmoid`: Platt scaling on the raw log-odds,
    ``1 / (1 + exp(-(a * logit(p) + b)))``; `none`: identity.
    """

    method: str = "none"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        if self.method == "sigmoid":
            clipped = np.clip(raw, 1e-12, 1 - 1e-12)
            logit = np.log(clipped / (1 - clipped))
            return 1.0 / (1.0 + np.exp(-(self.a * logit + self.b)))
        return raw


@dataclass(frozen=True)
class Thresholds:
    """The MQL threshold on the calibrated probability: global, or per lead source.

    `revision` counts policy changes made after training (`leadscore policy set`).
    """

    policy: dict[str, Any]
    global_threshold: float
    by_source: dict[str, float] = field(default_factory=dict)
    revision: int = 0

    def for_source(self, source: str | None) -> float:
        """The threshold that applies to a lead of `source`."""
        return self.by_source.get(str(source), self.global_threshold)


@dataclass(frozen=True)
class TierCuts:
    """`A` exactly when the lead is an MQL; `B`, `C`, `D` split the rest by probability."""

    b: float = 0.2
    c: float = 0.08

    def tier(self, probability: float, is_mql: bool) -> str:
        """The tier letter of one lead."""
        if is_mql:
            return "A"
        return "B" if probability >= self.b else "C" if probability >= self.c else "D"


# ---------------------------------------------------------------------------------------------
# the scorer


@dataclass
class Scorer:
    """Everything needed to score a lead, loaded from one model directory."""

    spec: FeatureSpec
    encoding: Encoding
    booster: lgb.Booster
    calibrator: Calibrator
    thresholds: Thresholds
    tiers: TierCuts
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # one lead's feature row, no DataFrame: the spec's one-lead builder, compiled once
        self.feature_row = OnlineBuilder(self.spec).row

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the booster (text) and `scorer.json`; no pickle."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / BOOSTER_FILE))
        payload = {
            "format_version": FORMAT_VERSION,
            "spec": json.loads(self.spec.to_json()),
            "encoding": self.encoding.to_dict(),
            "calibrator": asdict(self.calibrator),
            "thresholds": asdict(self.thresholds),
            "tiers": asdict(self.tiers),
            "meta": self.meta,
        }
        (path / SCORER_FILE).write_text(json.dumps(payload, indent=1, default=str))
        return path

    @classmethod
    def from_dir(cls, directory: Path | str) -> Scorer:
        """Load a model directory written by :meth:`save`."""
        path = Path(directory)
        for name in (BOOSTER_FILE, SCORER_FILE):
            if not (path / name).is_file():
                raise ScorerError(f"{path}: not a leadscore model directory ({name} missing)")
        data = json.loads((path / SCORER_FILE).read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ScorerError(
                f"{path}: model format {data.get('format_version')!r}; this code serves "
                f"format {FORMAT_VERSION}"
            )
        spec = FeatureSpec.from_json(json.dumps(data["spec"]))
        encoding = Encoding.from_dict(data["encoding"])
        if list(encoding.names) != spec.names:
            raise ScorerError(f"{path}: encoding and spec list different features")
        cal = data["calibrator"]
        return cls(
            spec=spec,
            encoding=encoding,
            booster=lgb.Booster(model_file=str(path / BOOSTER_FILE)),
            calibrator=Calibrator(
                cal["method"], tuple(cal["x"]), tuple(cal["y"]), cal["a"], cal["b"]
            ),
            thresholds=Thresholds(**data["thresholds"]),
            tiers=TierCuts(**data["tiers"]),
            meta=data["meta"],
        )

    # -- scoring ------------------------------------------------------------------------------

    @property
    def oldest_trained_age(self) -> float:
        """Snapshots older than this are extrapolation: reported as `stale`."""
        return float(max(self.meta.get("trained_ages") or [math.inf]))

    def raw_frame(self, rows: pd.DataFrame) -> np.ndarray:
        """Uncalibrated booster probabilities for snapshot rows."""
        return np.asarray(self.booster.predict(self.encoding.frame(rows)), dtype=np.float64)

    def score_frame(self, rows: pd.DataFrame, sources: Sequence[Any] | None = None) -> pd.DataFrame:
        """Score snapshot rows (batch): probability, threshold, is_mql, tier, stale."""
        probability = self.calibrator(self.raw_frame(rows))
        src = rows["lead_source"] if sources is None else pd.Series(list(sources))
        threshold = np.array([self.thresholds.for_source(s) for s in src.tolist()])
        is_mql = probability >= threshold
        tiers = [self.tiers.tier(p, m) for p, m in zip(probability, is_mql, strict=True)]
        return pd.DataFrame(
            {
                "lead_id": rows["lead_id"].to_numpy(),
                "as_of": rows["as_of"].to_numpy(),
                "lead_age_days": rows["lead_age_days"].to_numpy(),
                "stale": rows["lead_age_days"].to_numpy() > self.oldest_trained_age,
                "mql_probability": probability,
                "tier": tiers,
                "is_mql": is_mql,
                "threshold": threshold,
                "model_version": str(self.meta.get("version", "")),
            }
        )

    def score_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Score one feature row (one-lead path)."""
        x = self.encoding.row(row).reshape(1, -1)
        # One thread: LightGBM's default pool makes one-row predictions ~100x slower on a busy
        # 2-core machine, and a worker serves one request at a time anyway.
        raw = float(np.asarray(self.booster.predict(x, num_threads=1))[0])
        probability = float(self.calibrator(np.array([raw]))[0])
        threshold = self.thresholds.for_source(row.get("lead_source"))
        is_mql = probability >= threshold
        age = float(row["lead_age_days"])
        return {
            "lead_id": row.get("lead_id"),
            "lead_age_days": age,
            "stale": age > self.oldest_trained_age,
            "mql_probability": probability,
            "raw_probability": raw,
            "tier": self.tiers.tier(probability, is_mql),
            "is_mql": bool(is_mql),
            "threshold": threshold,
            "unknown_categories": self.encoding.unseen(row),
        }

    def feature(self, name: str) -> Feature:
        """A feature of this model's spec by name."""
        return self.spec[name]

    # -- contributions (reasons) -------------------------------------------------------------

    def contributions(self, row: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """Log-odds contributions of one feature row (LightGBM `pred_contrib`) and the base.

        One value per spec feature, in model input order, plus the model's base value (the
        expected raw score); contributions plus base equal the row's raw log-odds.
        """
        x = self.encoding.row(row).reshape(1, -1)
        out = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1))[0]
        return np.asarray(out[:-1], dtype=np.float64), float(out[-1])

    @property
    def base_value(self) -> float:
        """The booster's base value: the raw log-odds before any feature is known."""
        cached: float | None = self.__dict__.get("_base_value")
        if cached is None:
            empty = {name: None for name in self.encoding.names}
            cached = self.contributions(empty)[1]
            self.__dict__["_base_value"] = cached
        return cached

    def probability_at(self, log_odds: float) -> float:
        """The calibrated probability of a raw log-odds score."""
        raw = 1.0 / (1.0 + math.exp(-log_odds)) if log_odds >= -700 else 0.0
        return float(self.calibrator(np.array([raw]))[0])

    @property
    def base_probability(self) -> float:
        """p0: the calibrated probability at the base value (where reasons start from)."""
        return self.probability_at(self.base_value)
