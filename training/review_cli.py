"""`leadscore review`: the quarterly review of the champion, as one HTML page and its JSON.

A thin command over :func:`leadscore.training.review_report.run_review`; heavy libraries are
imported inside it (`leadscore --help` starts at once), and errors are printed as one line each
by the shared command group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from leadscore.features.console import note, out, text_table

STORE_ENV = "LEADSCORE_STORE_URL"


def review(
    data: Annotated[
        Path,
        typer.Option(
            help="The updated history: every lead up to now (a CRM export, a leadforge bundle, "
            "canonical tables). The newest quarter is compared with the champion's training "
            "window, read from here or from --reference."
        ),
    ],
    reference: Annotated[
        Path | None,
        typer.Option(
            help="The source the champion was trained on, when --data does not hold its "
            "training window (quarters exported separately)."
        ),
    ] = None,
    champion: Annotated[
        str | None,
        typer.Option(help="The model to review (default: models:/MODEL_NAME@champion)."),
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write the review as one HTML file.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the review as JSON.")
    ] = None,
    challenger: Annotated[
        bool,
        typer.Option(
            help="Train a challenger on --data, register it and run the promotion gate "
            "(--no-challenger: review the champion only)."
        ),
    ] = True,
    store: Annotated[
        str | None,
        typer.Option(
            envvar=STORE_ENV,
            help="The handoff store to report on (default: sqlite:///leadscore.db if that "
            "file exists).",
        ),
    ] = None,
    criteria: Annotated[
        Path | None,
        typer.Option(help="SQL criteria (default: sql_criteria.yaml in the config dir)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="training.yaml (default: in the config directory).")
    ] = None,
    features_config: Annotated[
        Path | None, typer.Option(help="features.yaml (default: in the config directory).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment of the challenger (default from config).")
    ] = None,
) -> None:
    """Drift, the champion back-tested, the criteria, the handoff, a challenger against the gate
    and a recommendation: one self-contained HTML page plus JSON, logged on the challenger's run."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source
    from leadscore.serving.registry import registry_uri
    from leadscore.training.config import load_training_config
    from leadscore.training.review_report import render_html, run_review
    from leadscore.training.tracking import configure

    cfg = load_training_config(config)
    fcfg = load_feature_config(features_config)
    note(f"reading {data} ...")
    crm = load_source(data, fcfg)
    previous = None
    if reference is not None:
        note(f"reading {reference} ...")
        previous = load_source(reference, fcfg)
    configure()  # a missing or unreachable tracking store fails here, in one line
    result = run_review(
        crm, fcfg, cfg, champion_uri=champion or registry_uri(cfg.mlflow.model_name),
        reference=previous, criteria_path=criteria, store_url=default_store(store),
        train_challenger=challenger, experiment=experiment,
        progress=lambda msg: note(f"{msg} ..."),
    )  # fmt: skip
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(result), encoding="utf-8")
        note(f"wrote {html}")
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
        note(f"wrote {json_file}")
    m, d = result.backtest.metrics, result.data
    drifted = [r.drift for r in result.drift[:3]]
    lines = [
        ("champion", f"{result.champion['uri']} (version {result.champion['version']})"),
        ("drift", ", ".join(f"{x.feature} PSI {x.psi:.2f}" for x in drifted)),
        ("back-test", f"{d['cohort_leads']:,} leads: ROC AUC {m['roc_auc']:.3f}, ECE "
                      f"{m['ece']:.3f}, conversion {m['positive_rate']:.1%}"),
        *([("challenger", f"version {result.challenger.version}")] if result.challenger else []),
        ("recommendation", result.recommendation.action),
    ]  # fmt: skip
    out().print(text_table(("", ""), lines))
    typer.echo(result.recommendation.paragraph)


def default_store(url: str | None) -> str | None:
    """The store to report on: the one named, else the default SQLite file when it exists."""
    if url is not None:
        return url
    from leadscore.serving.store import DEFAULT_STORE_URL

    path = Path(DEFAULT_STORE_URL.removeprefix("sqlite:///"))
    return DEFAULT_STORE_URL if path.is_file() else None
