"""`python -m leadscore`: the console script without the installed entry point."""

from leadscore.cli import app

app(prog_name="leadscore")
