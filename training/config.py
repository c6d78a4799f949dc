"""`config/training.yaml`: how leadscore trains, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.features.configdir import config_file
from leadscore.features.yamlfile import load_yaml
from leadscore.serving.registry import DEFAULT_MODEL_NAME


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelConfig(_Strict):
    target: Literal["won", "sql"] = "won"
    horizon_days: float = Field(90, gt=0)


class SplitConfig(_Strict):
    train: float = Field(0.65, gt=0, lt=1)
    valid: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.20, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        if abs(self.train + self.valid + self.test - 1) > 1e-9:
            raise ValueError("split fractions must add up to 1")
        return self


class ModelConfig(_Strict):
    num_boost_round: int = Field(2000, gt=0)
    early_stopping_rounds: int = Field(100, gt=0)
    monotone: bool = True
    params: dict[str, Any] = Field(default_factory=dict)


class SelectionConfig(_Strict):
    """Which model family is registered: each of `families` is fitted on the training slice
    and scored on the validation slice; the best by `metric` wins, and the
    simpler family (logistic) whenever it is within `tolerance` of the best."""

    families: tuple[Literal["lightgbm", "logistic"], ...] = ("lightgbm", "logistic")
    metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    tolerance: float = Field(0.002, ge=0)

    @model_validator(mode="after")
    def _some_family(self) -> SelectionConfig:
        if not self.families:
            raise ValueError("selection.families must list at least one model family")
        return self


class CalibrationConfig(_Strict):
    """The calibrator: chosen among `methods` by the cross-validated `criterion` of each on
    out-of-fold probabilities over the labelled history, in `folds` time blocks."""

    methods: tuple[Literal["isotonic", "sigmoid", "beta", "none"], ...] = (
        "isotonic", "sigmoid", "beta", "none",
    )  # fmt: skip
    folds: int = Field(5, ge=2)
    criterion: Literal["log_loss", "ece"] = "log_loss"
    min_positive_leads: int = Field(100, ge=0)
    min_relative_gain: float = Field(0.0, ge=0, lt=1)
    bootstrap: int = Field(200, ge=0)


class PolicyConfig(_Strict):
    kind: Literal["capacity", "precision"] = "capacity"
    capacity: float = Field(0.2, gt=0, le=1)
    precision: float = Field(0.4, gt=0, le=1)
    per_source_min_positives: int = Field(50, ge=1)


class TierConfig(_Strict):
    """How the leads that are not MQLs split into B, C and D (A is exactly the MQLs).

    ``probability``: fixed cuts on the calibrated probability (B >= b, C >= c); ``share``: B is
    the next `b` share of all leads after the MQLs, C the next `c` share, cuts learned on the
    calibration slice (every tier populated whatever the base rate); ``precision``: B is the
    most leads below the MQLs that still convert at least `b`, C at least `c`.
    """

    kind: Literal["probability", "share", "precision"] = "share"
    b: float = Field(0.3, ge=0, le=1)
    c: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> TierConfig:
        if self.kind == "share":
            if self.b + self.c > 1:
                raise ValueError(f"tier shares b + c must be at most 1, got {self.b} + {self.c}")
        elif self.c > self.b:
            raise ValueError(f"tier {self.kind} c must not exceed b, got c {self.c} > b {self.b}")
        return self


class PromotionConfig(_Strict):
    max_roc_auc_drop: float = Field(0.0, ge=0)
    max_brier_increase: float = Field(0.0, ge=0)


class MlflowConfig(_Strict):
    experiment: str = "leadscore"
    model_name: str = DEFAULT_MODEL_NAME


class AuditConfig(_Strict):
    allow: tuple[str, ...] = ()  # columns the leakage audit blocks that a person keeps


class TrainingConfig(_Strict):
    """Everything `leadscore train` needs besides the data."""

    label: LabelConfig = LabelConfig()
    snapshot_ages: tuple[float, ...] = (1, 7, 14, 30)
    reference_age: float = 30
    split: SplitConfig = SplitConfig()
    min_train_positives: int = Field(100, ge=1)
    model: ModelConfig = ModelConfig()
    selection: SelectionConfig = SelectionConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    policy: PolicyConfig = PolicyConfig()
    tiers: TierConfig = TierConfig()
    mlflow: MlflowConfig = MlflowConfig()
    promotion: PromotionConfig = PromotionConfig()
    audit: AuditConfig = AuditConfig()

    @model_validator(mode="after")
    def _reference_is_trained(self) -> TrainingConfig:
        if not self.snapshot_ages:
            raise ValueError("snapshot_ages must list at least one age")
        if self.reference_age not in self.snapshot_ages:
            raise ValueError(
                f"reference_age {self.reference_age:g} must be one of snapshot_ages "
                f"{list(self.snapshot_ages)}"
            )
        return self


def load_training_config(path: Path | str | None = None) -> TrainingConfig:
    """Read and validate `training.yaml` (default: in the config directory)."""
    file = Path(path) if path is not None else config_file("training.yaml")
    return load_yaml(file, TrainingConfig, "training config")
