"""The base of every error leadscore reports to a person.

Each package raises its own subclasses (a bad config file, data that breaks the contract, a
model that cannot be loaded); the command line prints any of them as one line per problem,
without a traceback, and exits 1. Anything else is a bug and says so.
"""

from __future__ import annotations


class LeadscoreError(Exception):
    """An error with a message fit for the person who ran the command (cause and fix)."""

    def lines(self) -> list[str]:
        """The message as the lines to print (one per problem)."""
        return [line for line in str(self).splitlines() if line.strip()]


class UsageProblem(LeadscoreError):
    """The command line or the settings ask for something impossible (exit 2): say which
    option or variable, and what would work."""
