"""The `leadscore` console script: mounts each package's own sub-commands.

This is the only module that imports features, training and serving together; nothing
imports it. Every sub-command module imports only light libraries at the top, so that
`leadscore --help` starts at once; the shared command group turns errors into one line each.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from leadscore.features.cli import criteria_app, data_app, features_app, init
from leadscore.features.configdir import CONFIG_ENV
from leadscore.features.console import DEBUG_ENV, CommandGroup
from leadscore.serving.cli import (
    handoff_app,
    report_app,
    score,
    serve,
    store_app,
    try_lead,
)
from leadscore.serving.model_cli import model_app
from leadscore.training.cli import policy_app, promote, train
from leadscore.training.review_cli import review

app = typer.Typer(
    help="Lead scoring for B2B revenue teams: snapshots, models, criteria and a scoring API.",
    no_args_is_help=True,
    cls=CommandGroup,
    pretty_exceptions_enable=False,  # tracebacks only with --debug, as Python prints them
)
app.command("init")(init)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(criteria_app, name="criteria")
app.command("train")(train)
app.command("promote")(promote)
app.command("review")(review)
app.add_typer(policy_app, name="policy")
app.add_typer(model_app, name="model")
app.command("score")(score)
app.command("serve")(serve)
app.command("try-lead")(try_lead)
app.add_typer(handoff_app, name="handoff")
app.add_typer(report_app, name="report")
app.add_typer(store_app, name="store")


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the libraries do (INFO and up).")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error instead of one line.")
    ] = False,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar=CONFIG_ENV,
            help="Config files to use (from `leadscore init`; default: the packaged ones).",
        ),
    ] = None,
) -> None:
    """Configure logging and the config directory once, at the entry point (never at import)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # MLflow sets up its own INFO logging at import; progress lines are ours
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    if debug:
        os.environ[DEBUG_ENV] = "1"  # the service `try-lead` starts shows tracebacks too
    if config_dir is not None:
        os.environ[CONFIG_ENV] = str(config_dir)  # read by every loader, and by child processes
