"""`leadscore train`, `promote` and `policy set`: thin commands over :mod:`leadscore.training`.

Heavy libraries are imported inside the commands (`leadscore --help` starts at once); errors are
raised and printed as one line each by the shared command group.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.features.console import group, note, out, text_table
from leadscore.features.errors import UsageProblem

if TYPE_CHECKING:
    from leadscore.training.data import LeadExclusion

TrainingConfigOpt = Annotated[
    Path | None, typer.Option(help="training.yaml (default: in the config directory).")
]


class TargetOpt(StrEnum):
    won = "won"
    sql = "sql"


def train(
    data: Annotated[
        Path, typer.Option(help="A leadforge research_instructor bundle or a canonical directory.")
    ],
    config: TrainingConfigOpt = None,
    features_config: Annotated[
        Path | None, typer.Option(help="features.yaml (default: in the config directory).")
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
        Path | None,
        typer.Option(help="SQL criteria baseline (default: sql_criteria.yaml in the config dir)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--map", help="Column roles of a flat lead file (`leadscore data map`)."),
    ] = None,
    allow_column: Annotated[
        list[str] | None,
        typer.Option("--allow-column", help="Keep a column the leakage audit blocks (repeat)."),
    ] = None,
    exclude_feedback: Annotated[
        Path | None,
        typer.Option(
            help="The reps' verdicts (`leadscore handoff export-feedback`): leave out "
            "leads rejected for a reason marked exclude_from_training."
        ),
    ] = None,
    exclude_reason: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-reason",
            help="With --exclude-feedback: leave out leads rejected for this reason "
            "instead of the taxonomy's choice (repeat for several).",
        ),
    ] = None,
) -> None:
    """Train LightGBM on point-in-time snapshots; log everything to MLflow; register a version."""
    exclusion = _exclusion(exclude_feedback, exclude_reason)  # checked before the heavy imports
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_data
    from leadscore.serving.registry import tracking_uri
    from leadscore.training.config import load_training_config
    from leadscore.training.train import train_model

    cfg = load_training_config(config)
    label = cfg.label.model_copy(
        update={k: v for k, v in {"target": target and target.value,
                                   "horizon_days": horizon_days}.items() if v is not None}
    )  # fmt: skip
    cfg = cfg.model_copy(update={"label": label})
    if as_of_days is not None:
        cfg = cfg.model_copy(update={"snapshot_ages": (as_of_days,), "reference_age": as_of_days})
    note(f"reading {data} ...")
    crm, fcfg = load_data(data, mapping, load_feature_config(features_config))
    for line in crm.notes:
        note(f"note: {line}")
    result = train_model(
        crm, fcfg, cfg, model_name=model_name, experiment=experiment, criteria_path=criteria,
        allow_columns=tuple(allow_column or ()), choose_reference=as_of_days is None,
        exclude=exclusion, progress=lambda msg: note(f"{msg} ..."),
    )  # fmt: skip
    m = result.metrics
    reference = float(result.scorer.meta["reference_age"])
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
        *([("left out (reps)", ts.excluded_leads.summary())] if ts.excluded_leads else []),
        ("dropped features", ", ".join(ts.dropped_features) or "none"),
        ("calibrator", result.scorer.calibrator.method),
        ("threshold", f"{result.scorer.thresholds.global_threshold:.4f} "
                      f"({result.scorer.thresholds.policy['kind']} "
                      f"{result.scorer.thresholds.policy['value']:g}); per source: "
                      f"{result.scorer.thresholds.by_source or 'none'}"),
        (f"test @ {reference:g}d", f"ROC AUC {m['test_roc_auc']:.4f} (logreg "
                                             f"{m['logreg_test_roc_auc']:.4f}), PR AUC "
                                             f"{m['test_pr_auc']:.4f}, Brier {m['test_brier']:.4f} "
                                             f"(uncal. {m['test_brier_uncalibrated']:.4f}), ECE "
                                             f"{m['test_ece']:.4f} (uncal. "
                                             f"{m['test_ece_uncalibrated']:.4f})"),
        ("MQLs", f"precision {m['test_precision_at_mql']:.3f}, "
                 f"recall {m['test_recall_at_mql']:.3f}" + (
                     f"; SQL criteria (sql_ready): precision {m['criteria_test_precision']:.3f}, "
                     f"recall {m['criteria_test_recall']:.3f}"
                     if "criteria_test_precision" in m else "")),
        *[("note", n) for n in result.notes],
        *[("caveat", c) for c in result.scorer.meta.get("caveats") or []],
    ]  # fmt: skip
    out().print(text_table(("", ""), lines))


def _exclusion(feedback: Path | None, reasons: list[str] | None) -> LeadExclusion | None:
    """The leads `--exclude-feedback` leaves out, read and checked before anything is fitted."""
    if feedback is None:
        if reasons:
            raise UsageProblem("--exclude-reason needs --exclude-feedback FILE (the verdicts)")
        return None
    from leadscore.features.feedback import (
        load_feedback,
        load_handoff_config,
        training_exclusions,
    )
    from leadscore.training.data import LeadExclusion

    taxonomy = load_handoff_config()
    unknown = [r for r in reasons or () if r not in taxonomy.reason_ids]
    if unknown:
        raise UsageProblem(f"--exclude-reason {', '.join(unknown)}: not a rejection reason of "
                           f"handoff.yaml; known: {', '.join(taxonomy.reason_ids)}")  # fmt: skip
    chosen = tuple(dict.fromkeys(reasons)) if reasons else taxonomy.excluded_from_training
    verdicts = load_feedback(feedback, taxonomy)
    leads = training_exclusions(verdicts, chosen)
    if verdicts.attrs.get("superseded"):
        note(f"{feedback}: {verdicts.attrs['superseded']:,} earlier verdict(s) replaced by a "
             "later one for the same lead")  # fmt: skip
    note(f"{feedback}: {len(verdicts):,} lead(s) with a verdict, {len(leads):,} of them rejected "
         f"for {', '.join(chosen) or '(no reason chosen)'}: left out of training")  # fmt: skip
    return LeadExclusion(leads, chosen)


def promote(
    model_name: Annotated[
        str | None, typer.Option(help="Registered model (default from config).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Promote this version (rollback) instead of the challenger.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses.")] = False,
    data: Annotated[
        Path | None,
        typer.Option(help="Compare on this source's newest leads instead of the logged test rows."),
    ] = None,
    config: TrainingConfigOpt = None,
) -> None:
    """Make the challenger (or --version N) champion if it is at least as good on the same rows."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source
    from leadscore.training.config import load_training_config
    from leadscore.training.lifecycle import promote as run_promote
    from leadscore.training.tracking import configure

    cfg = load_training_config(config)
    configure()
    source = None
    if data is not None:
        fcfg = load_feature_config()
        source = (load_source(data, fcfg), fcfg)
    name = model_name or cfg.mlflow.model_name
    result = run_promote(name, cfg, version=version, force=force, data=source)
    typer.echo(result.table())
    if result.champion == result.candidate:
        typer.echo(f"{name} version {result.candidate} is already champion; nothing to do")
    elif result.passed:
        typer.echo(f"promoted: {name} version {result.candidate} is now champion "
                   f"(was {result.champion or 'none'})")  # fmt: skip
    elif force:
        typer.echo(f"forced: {name} version {result.candidate} is champion despite: "
                   f"{'; '.join(result.reasons)}")  # fmt: skip
    else:
        typer.echo(f"refused: version {result.candidate} is not promoted; champion stays "
            f"{result.champion}: "
                   f"{'; '.join(result.reasons)} (--force to override)")  # fmt: skip
        raise typer.Exit(code=1)


policy_app = group("The MQL policy: change thresholds without retraining.")


@policy_app.command("set")
def policy_set(
    capacity: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Top share of leads that become MQLs.")
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Expected conversion among MQLs, at least."),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: the champion).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model (default from config).")
    ] = None,
    config: TrainingConfigOpt = None,
) -> None:
    """Recompute a version's thresholds from its logged held-out scores; scorers pick them up."""
    if (capacity is None) == (precision is None):
        raise UsageProblem("give exactly one of --capacity or --precision")
    from leadscore.training.config import load_training_config
    from leadscore.training.lifecycle import set_policy
    from leadscore.training.tracking import configure

    kind, value = ("capacity", capacity) if capacity is not None else ("precision", precision)
    cfg = load_training_config(config)
    configure()
    name = model_name or cfg.mlflow.model_name
    target, tag = set_policy(name, kind, float(value or 0), version)
    typer.echo(
        f"{name} version {target}: policy {kind} {value:g} -> threshold "
        f"{tag['global_threshold']:.4f} (revision {tag['revision']}); per source: "
        f"{tag['by_source'] or 'none'}; {tag['mql_rate_held_out']:.1%} of held-out leads are MQLs"
    )
