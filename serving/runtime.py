"""The scorer runtime: one object that turns canonical leads into calibrated MQL scores.

The API, `leadscore score` and the MLflow pyfunc all execute this module; training imports it
only to assemble and save what it learned. A model directory holds no pickle:

* ``model.lgb``: the LightGBM booster in its text format (family ``lightgbm``);
* ``scorer.json``: feature spec, input encoding (learned vocabularies, band orders),
  calibrator, thresholds and tier cut points, and metadata (trained ages, data window); for
  family ``logistic`` also the regression itself, as numbers (:mod:`leadscore.serving.linear`).

Both families go through the same code: an encoded row, a raw probability (the sigmoid of the
model's log-odds), per-feature log-odds contributions that add up to it, the calibrator, the
thresholds and tiers.
"""

from __future__ import annotations

import ctypes
import json
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.features.errors import LeadscoreError
from leadscore.features.online import OnlineBuilder
from leadscore.features.spec import Feature, FeatureSpec
from leadscore.serving.linear import LinearModel

BOOSTER_FILE = "model.lgb"
SCORER_FILE = "scorer.json"
FORMAT_VERSION = 1
Family = Literal["lightgbm", "logistic"]
FAMILIES: tuple[Family, ...] = ("lightgbm", "logistic")
TIERS = ("A", "B", "C", "D")
# Log-odds margin within which base + sum(contributions) may differ from predict's raw score:
# float rounding over a few thousand trees stays under 1e-12; 1e-9 leaves room to spare.
PARITY_LOG_ODDS = 1e-9
# LightGBM C API constants (c_api.h)
_PREDICT_NORMAL, _PREDICT_CONTRIB, _DTYPE_FLOAT64 = 0, 3, 1


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
                # an Arrow hash lookup (pd.Categorical with unseen values is deprecated, and
                # its conversion to object cost most of the batch's encoding time)
                out[:, j] = self._codes(name, col)
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

    def _codes(self, name: str, col: pd.Series) -> np.ndarray:
        """Each value's index in the vocabulary of `name`, NaN when missing or unseen."""
        values = pa.array(col.astype("string[pyarrow]"))  # zero-copy when it already is
        found = pc.index_in(values, value_set=self._lookup(name))
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.float64)

    def _lookup(self, name: str) -> pa.Array:
        cached: dict[str, pa.Array] | None = self.__dict__.get("_lookup_cache")
        if cached is None:
            cached = {n: pa.array(vs, type=pa.string()) for n, vs in self.vocabularies.items()}
            object.__setattr__(self, "_lookup_cache", cached)
        return cached[name]

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
    ``1 / (1 + exp(-(a * logit(p) + b)))``; `beta`: beta calibration (Kull et al., 2017),
    ``logit(q) = a * ln(p) - b * ln(1 - p) + c`` with a, b >= 0; `none`: identity.
    """

    method: str = "none"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        if self.method == "sigmoid":
            clipped = np.clip(raw, 1e-12, 1 - 1e-12)
            logit = np.log(clipped / (1 - clipped))
            return 1.0 / (1.0 + np.exp(-(self.a * logit + self.b)))
        if self.method == "beta":
            clipped = np.clip(raw, 1e-12, 1 - 1e-12)
            logit = self.a * np.log(clipped) - self.b * np.log1p(-clipped) + self.c
            return 1.0 / (1.0 + np.exp(-logit))
        return raw

    @property
    def monotone(self) -> bool:
        """Whether a higher raw probability never moves the calibrated one both ways."""
        if self.method == "beta":
            return self.a >= 0 and self.b >= 0
        if self.method != "isotonic":
            return True
        steps = np.diff(np.asarray(self.y, dtype=np.float64))
        return bool(np.all(steps >= 0) or np.all(steps <= 0))


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

    def tiers(self, probability: np.ndarray, is_mql: np.ndarray) -> list[str]:
        """The tier letters of many leads (:meth:`tier` element-wise)."""
        letters = np.select([is_mql, probability >= self.b, probability >= self.c],
                            ["A", "B", "C"], default="D")  # fmt: skip
        return letters.tolist()


# ---------------------------------------------------------------------------------------------
# the scorer


@dataclass
class Scorer:
    """Everything needed to score a lead, loaded from one model directory.

    The model is a LightGBM `booster` or a logistic regression (`linear`), exactly one.
    """

    spec: FeatureSpec
    encoding: Encoding
    booster: lgb.Booster | None
    calibrator: Calibrator
    thresholds: Thresholds
    tiers: TierCuts
    meta: dict[str, Any] = field(default_factory=dict)
    linear: LinearModel | None = None

    def __post_init__(self) -> None:
        if (self.booster is None) == (self.linear is None):
            raise ScorerError("a scorer needs exactly one model: a booster or a linear model")
        # one lead's feature row, no DataFrame: the spec's one-lead builder, compiled once
        self.feature_row = OnlineBuilder(self.spec).row

    @property
    def family(self) -> Family:
        """The model family: ``lightgbm`` or ``logistic``."""
        return "lightgbm" if self.booster is not None else "logistic"

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the booster (text) and `scorer.json`; no pickle."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if self.booster is not None:
            self.booster.save_model(str(path / BOOSTER_FILE))
        payload = {
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "spec": json.loads(self.spec.to_json()),
            "encoding": self.encoding.to_dict(),
            "calibrator": asdict(self.calibrator),
            "thresholds": asdict(self.thresholds),
            "tiers": asdict(self.tiers),
            "meta": self.meta,
        }
        if self.linear is not None:
            payload["linear"] = self.linear.to_dict()
        (path / SCORER_FILE).write_text(json.dumps(payload, indent=1, default=str))
        return path

    @classmethod
    def from_dir(cls, directory: Path | str) -> Scorer:
        """Load a model directory written by :meth:`save`."""
        path = Path(directory)
        if not (path / SCORER_FILE).is_file():
            raise ScorerError(f"{path}: not a leadscore model directory ({SCORER_FILE} missing)")
        data = json.loads((path / SCORER_FILE).read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ScorerError(
                f"{path}: model format {data.get('format_version')!r}; this code serves "
                f"format {FORMAT_VERSION}"
            )
        family = data.get("family", "lightgbm")  # models saved before logistic had no family
        if family not in FAMILIES:
            raise ScorerError(f"{path}: model family {family!r}; this code serves {FAMILIES}")
        if family == "lightgbm" and not (path / BOOSTER_FILE).is_file():
            raise ScorerError(f"{path}: not a leadscore model directory ({BOOSTER_FILE} missing)")
        linear = None
        if family == "logistic":
            try:
                linear = LinearModel.from_dict(data["linear"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ScorerError(f"{path}: {SCORER_FILE}: bad logistic model ({exc})") from None
        spec = FeatureSpec.from_json(json.dumps(data["spec"]))
        encoding = Encoding.from_dict(data["encoding"])
        if list(encoding.names) != spec.names:
            raise ScorerError(f"{path}: encoding and spec list different features")
        cal = data["calibrator"]
        return cls(
            spec=spec,
            encoding=encoding,
            booster=lgb.Booster(model_file=str(path / BOOSTER_FILE)) if linear is None else None,
            calibrator=Calibrator(
                cal["method"],
                tuple(cal["x"]),
                tuple(cal["y"]),
                cal["a"],
                cal["b"],
                cal.get("c", 0.0),  # models saved before beta calibration have no `c`
            ),
            thresholds=Thresholds(**data["thresholds"]),
            tiers=TierCuts(**data["tiers"]),
            meta=data["meta"],
            linear=linear,
        )

    # -- scoring ------------------------------------------------------------------------------

    @property
    def oldest_trained_age(self) -> float:
        """Snapshots older than this are extrapolation: reported as `stale`."""
        return float(max(self.meta.get("trained_ages") or [math.inf]))

    def raw_frame(self, rows: pd.DataFrame) -> np.ndarray:
        """Uncalibrated model probabilities for snapshot rows."""
        x = self.encoding.frame(rows)
        if self.linear is not None:
            return np.asarray(_sigmoid_array(self.linear.log_odds(x)), dtype=np.float64)
        assert self.booster is not None
        return np.asarray(self.booster.predict(x), dtype=np.float64)

    def contributions_frame(self, rows: pd.DataFrame) -> np.ndarray:
        """Log-odds contributions of snapshot rows (rows x features, the base left out)."""
        x = self.encoding.frame(rows)
        if self.linear is not None:
            return self.linear.contributions_frame(x)
        assert self.booster is not None
        return np.asarray(self.booster.predict(x, pred_contrib=True))[:, :-1]

    def importance(self, rows: pd.DataFrame) -> dict[str, float]:
        """Each feature's mean absolute log-odds contribution over `rows` (either family)."""
        mean = np.abs(self.contributions_frame(rows)).mean(axis=0) if len(rows) else None
        return {n: float(mean[j]) if mean is not None else 0.0
                for j, n in enumerate(self.encoding.names)}  # fmt: skip

    def score_frame(self, rows: pd.DataFrame, sources: Sequence[Any] | None = None) -> pd.DataFrame:
        """Score snapshot rows (batch): probability, threshold, is_mql, tier, stale."""
        probability = self.calibrator(self.raw_frame(rows))
        src = rows["lead_source"] if sources is None else pd.Series(list(sources), dtype=object)
        # one lookup per distinct source, not per lead (a batch has a handful of sources)
        codes, distinct = pd.factorize(src.astype(object), use_na_sentinel=False)
        by_code = np.array([self.thresholds.for_source(s) for s in distinct], dtype=np.float64)
        threshold = by_code[codes] if len(codes) else np.empty(0)
        is_mql = probability >= threshold
        tiers = self.tiers.tiers(probability, is_mql)
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
        return self._scored(row, self._predict_raw(self.encoding.row(row)))

    def score_row_explained(
        self, row: Mapping[str, Any]
    ) -> tuple[dict[str, Any], np.ndarray, float]:
        """:meth:`score_row` and :meth:`contributions` of one row from one booster call.

        The raw probability is the link function applied to base + sum(contributions); it
        differs from ``predict``'s only by rounding (far below :data:`PARITY_LOG_ODDS`), so
        when the probability lies so near a threshold or tier cut that the rounding could
        flip the decision, the plain ``predict`` decides, as :meth:`score_row` would. A
        booster whose link is not a plain sigmoid is asked twice.
        """
        x = self.encoding.row(row)
        contrib, base = self._contributions(x)
        scale = self._sigmoid_scale
        if scale is None:
            return self._scored(row, self._predict_raw(x)), contrib, base
        log_odds = math.fsum([*contrib.tolist(), base])
        grid = [_sigmoid(scale * (log_odds + d)) for d in (-PARITY_LOG_ODDS, 0.0, PARITY_LOG_ODDS)]
        low, mid, high = (float(p) for p in self.calibrator(np.array(grid)))
        threshold = self.thresholds.for_source(row.get("lead_source"))
        # the calibrator is monotone: same decision at both ends, same for all in between
        if self._decision(low, threshold) != self._decision(high, threshold):
            return self._scored(row, self._predict_raw(x)), contrib, base
        return self._scored(row, grid[1], mid), contrib, base

    def _predict_raw(self, x: np.ndarray) -> float:
        if self.linear is not None:
            return float(_sigmoid_array(self.linear.log_odds(x.reshape(1, -1)))[0])
        assert self.booster is not None
        fast = self._row_predictors
        if fast is not None:
            return float(fast[0](x)[0])
        # One thread: LightGBM's default pool makes one-row predictions ~100x slower on a busy
        # 2-core machine, and a worker serves one request at a time anyway.
        return float(np.asarray(self.booster.predict(x.reshape(1, -1), num_threads=1))[0])

    @property
    def _row_predictors(self) -> tuple[RowPredictor, RowPredictor] | None:
        """The single-row fast path of this booster (probability, contributions), built once;
        None when this LightGBM has none (then ``Booster.predict``)."""
        cached = self.__dict__.get("_fast_cache")
        if self.booster is None:
            return None
        if cached is None or cached[0] is not self.booster:  # built for another booster
            try:
                fast = (RowPredictor(self.booster, False), RowPredictor(self.booster, True))
            except (AttributeError, lgb.basic.LightGBMError):
                fast = None
            cached = (self.booster, fast)
            self.__dict__["_fast_cache"] = cached
        return cast("tuple[RowPredictor, RowPredictor] | None", cached[1])

    def _decision(self, probability: float, threshold: float) -> tuple[bool, str]:
        is_mql = probability >= threshold
        return is_mql, self.tiers.tier(probability, is_mql)

    def _scored(
        self, row: Mapping[str, Any], raw: float, probability: float | None = None
    ) -> dict[str, Any]:
        """The one-lead answer from the raw probability (and its calibration, if known)."""
        if probability is None:
            probability = float(self.calibrator(np.array([raw]))[0])
        threshold = self.thresholds.for_source(row.get("lead_source"))
        is_mql, tier = self._decision(probability, threshold)
        age = float(row["lead_age_days"])
        return {
            "lead_id": row.get("lead_id"),
            "lead_age_days": age,
            "stale": age > self.oldest_trained_age,
            "mql_probability": probability,
            "raw_probability": raw,
            "tier": tier,
            "is_mql": bool(is_mql),
            "threshold": threshold,
            "unknown_categories": self.encoding.unseen(row),
        }

    @property
    def _sigmoid_scale(self) -> float | None:
        """k when the booster's probability is ``1 / (1 + exp(-k * raw))`` (binary objective,
        plain trees) and the calibrator is monotone; None otherwise (then score and
        contributions take two calls)."""
        cached = self.__dict__.get("_sigmoid_cache", False)
        if cached is False:
            model_scale = 1.0 if self.booster is None else _binary_sigmoid(self.booster)
            cached = model_scale if self.calibrator.monotone else None
            self.__dict__["_sigmoid_cache"] = cached
        return cast("float | None", cached)

    def feature(self, name: str) -> Feature:
        """A feature of this model's spec by name."""
        return self.spec[name]

    # -- contributions (reasons) -------------------------------------------------------------

    def contributions(self, row: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """Log-odds contributions of one feature row (LightGBM `pred_contrib`) and the base.

        One value per spec feature, in model input order, plus the model's base value (the
        expected raw score); contributions plus base equal the row's raw log-odds.
        """
        return self._contributions(self.encoding.row(row))

    def _contributions(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        if self.linear is not None:
            return self.linear.contributions(x)
        assert self.booster is not None
        fast = self._row_predictors
        if fast is not None:
            values = fast[1](x)
        else:
            out = self.booster.predict(x.reshape(1, -1), pred_contrib=True, num_threads=1)
            values = np.asarray(out, dtype=np.float64)[0]
        return values[:-1], float(values[-1])

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
        return float(self.calibrator(np.array([_sigmoid(log_odds)]))[0])

    @property
    def base_probability(self) -> float:
        """p0: the calibrated probability at the base value (where reasons start from)."""
        cached: float | None = self.__dict__.get("_base_probability")
        if cached is None:
            cached = self.probability_at(self.base_value)
            self.__dict__["_base_probability"] = cached
        return cached


class RowPredictor:
    """One row through LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` builds a predictor and parses its parameters on every call, which costs
    more than the trees of a one-lead prediction; here that is done once. The same C++ code
    predicts (one thread, all iterations up to the best one), so the output is bit-identical.
    """

    def __init__(self, booster: lgb.Booster, contrib: bool):
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._lib, self._check = _LIB, _safe_call
        self.booster = booster  # the native config points into it: it lives as long as this
        self.columns = booster.num_feature()
        per_class = self.columns + 1 if contrib else 1
        self.width = per_class * booster.num_model_per_iteration()
        iterations = booster.best_iteration
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_CONTRIB if contrib else _PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(iterations if iterations > 0 else -1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.columns),
                _c_str("num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self.handle = handle
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The prediction of one encoded row (``Booster.predict(x[None])[0]``)."""
        row = np.ascontiguousarray(x, dtype=np.float64)
        if row.shape != (self.columns,):
            raise ScorerError(f"a row of {row.size} features for a model of {self.columns}")
        out = np.empty(self.width, dtype=np.float64)
        length = ctypes.c_int64()
        self._check(
            self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self.handle,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(length),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        return out[: length.value]


def _sigmoid(log_odds: float) -> float:
    """1 / (1 + exp(-log_odds)), without overflow for very negative scores."""
    return 1.0 / (1.0 + math.exp(-log_odds)) if log_odds >= -700 else 0.0


def _sigmoid_array(log_odds: np.ndarray) -> np.ndarray:
    """The sigmoid of many log-odds (the logistic family's probabilities, batch and one-lead
    alike), without overflow warnings."""
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-log_odds)), dtype=np.float64)


def _binary_sigmoid(booster: lgb.Booster) -> float | None:
    """The sigmoid scale of a binary booster whose contributions add up to its raw score
    (gbdt-style sum of plain trees); None for any other objective or output."""
    head = booster.dump_model(num_iteration=1)
    objective = str(head.get("objective", "")).split()
    if head.get("average_output") or not objective or objective[0] != "binary":
        return None
    if booster.params.get("linear_tree"):
        return None
    scale = 1.0
    for option in objective[1:]:
        name, _, value = option.partition(":")
        if name == "sigmoid":
            scale = float(value)
    return scale if math.isfinite(scale) and scale > 0 else None
