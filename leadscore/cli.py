"""The `leadscore` console script: mounts each package's own sub-commands.

This is the only module that imports features, training and serving together; nothing
imports it.
"""

from __future__ import annotations

import logging

import typer

from features.cli import criteria_app, data_app, features_app
from serving.cli import score, serve, try_lead
from training.cli import policy_app, promote, train

app = typer.Typer(
    help="Lead scoring for B2B revenue teams: snapshots, models, criteria and a scoring API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(criteria_app, name="criteria")
app.command("train")(train)
app.command("promote")(promote)
app.add_typer(policy_app, name="policy")
app.command("score")(score)
app.command("serve")(serve)
app.command("try-lead")(try_lead)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug output.")) -> None:
    """Configure logging once, at the entry point (never at import time)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
