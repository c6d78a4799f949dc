"""`leadscore train`: learn, calibrate, evaluate and register a model."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.config import ConfigError, load_feature_config
from features.contract import DataContractError
from features.criteria import CriteriaError
from features.sources import load_source
from training.config import load_training_config
from training.data import TrainingDataError
from training.tracking import tracking_uri
from training.train import train_model

log = logging.getLogger(__name__)
console = Console(stderr=True)


class TargetOpt(StrEnum):
    won = "won"
    sql = "sql"


def train(
    data: Annotated[
        Path, typer.Option(help="A leadforge research_instructor bundle or a canonical directory.")
    ],
    config: Annotated[Path | None, typer.Option(help="training.yaml (default: config/).")] = None,
    features_config: Annotated[
        Path | None, typer.Option(help="features.yaml (default: config/).")
    ] = None,
    target: Annotated[
        TargetOpt | None, typer.Option(help="What counts as converting (default from config: won).")
    ] = None,
    horizon_days: Annotated[
        float | None, typer.Option(help="Conversion horizon in days (default from config: 90).")
    ] = None,
    as_of_days: Annotated[
        float | None, typer.Option(help="Train on one snapshot age only.")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default from config).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model name (default from config).")
    ] = None,
    criteria: Annotated[
        Path | None, typer.Option(help="SQL criteria baseline (default: config/sql_criteria.yaml).")
    ] = None,
) -> None:
    """Train LightGBM on point-in-time snapshots; log everything to MLflow; register a version."""
    try:
        cfg = load_training_config(config)
        label = cfg.label.model_copy(
            update={k: v for k, v in {"target": target and target.value,
                                       "horizon_days": horizon_days}.items() if v is not None}
        )  # fmt: skip
        cfg = cfg.model_copy(update={"label": label})
        if as_of_days is not None:
            cfg = cfg.model_copy(
                update={"snapshot_ages": (as_of_days,), "reference_age": as_of_days}
            )
        fcfg = load_feature_config(features_config)
        crm = load_source(data, fcfg)
        result = train_model(
            crm, fcfg, cfg, model_name=model_name, experiment=experiment, criteria_path=criteria,
            progress=lambda msg: console.print(f"[dim]{msg} ...[/]"),
        )  # fmt: skip
    except (ConfigError, CriteriaError, DataContractError, TrainingDataError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    m = result.metrics
    ts = result.training_set
    lines = [
        ("run id", result.run_id),
        ("registered", f"{result.model_name} v{result.version} ({', '.join(result.aliases)})"),
        ("tracking", tracking_uri()),
        ("target", f"{cfg.label.target} within {cfg.label.horizon_days:g} days"),
        ("snapshots", ", ".join(f"{k}: {v['snapshots']:,} ({v['positives']:,} pos, "
                                f"{v['created_from'][:10]}..{v['created_to'][:10]})"
                                for k, v in ts.split_ranges.items())),
        ("excluded", ", ".join(f"{k}: {v:,}" for k, v in ts.exclusions.items()) or "none"),
        ("dropped features", ", ".join(ts.dropped_features) or "none"),
        ("calibrator", result.scorer.calibrator.method),
        ("threshold", f"{result.scorer.thresholds.global_threshold:.4f} "
                      f"({result.scorer.thresholds.policy['kind']} "
                      f"{result.scorer.thresholds.policy['value']:g}); per source: "
                      f"{result.scorer.thresholds.by_source or 'none'}"),
        (f"test @ {cfg.reference_age:g}d", f"ROC AUC {m['test_roc_auc']:.4f} (logreg "
                                             f"{m['logreg_test_roc_auc']:.4f}), PR AUC "
                                             f"{m['test_pr_auc']:.4f}, Brier {m['test_brier']:.4f} "
                                             f"(uncal. {m['test_brier_uncalibrated']:.4f}), ECE "
                                             f"{m['test_ece']:.4f} (uncal. "
                                             f"{m['test_ece_uncalibrated']:.4f})"),
        ("MQLs", f"precision {m['test_precision_at_mql']:.3f}, "
                 f"recall {m['test_recall_at_mql']:.3f}; SQL criteria (sql_ready): precision "
                 f"{m['criteria_test_precision']:.3f}, recall {m['criteria_test_recall']:.3f}"),
        *[("note", n) for n in result.notes],
    ]  # fmt: skip
    width = max(len(k) for k, _ in lines)
    typer.echo("\n".join(f"{k:<{width}}  {v}" for k, v in lines))
