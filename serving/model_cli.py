"""`leadscore model verify URI`: check a model version before it serves, as the service would.

A registered model is a pyfunc whose code file (``model_code.py``) ``mlflow.pyfunc.load_model``
and ``mlflow models serve`` execute: whoever can write the artifact store can run code wherever
the model is loaded that way (leadscore's own loaders never execute it). The command downloads
the model, checks every file against the registry version's ``leadscore.digests`` tag (the
trusted copy, code file included) and the scorer's ``digests.json``, then loads and scores the
example lead in a child process. One line per check; exit 1 when any check failed, including a
version that has no digests to check. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import typer

from leadscore.features.console import group, print_blocks
from leadscore.features.errors import LeadscoreError

model_app = group("Model versions: check one before it serves (digests, a child-process load).")


class VerifyFailed(LeadscoreError):
    """At least one check of `leadscore model verify` failed."""


@dataclass(frozen=True)
class Check:
    """One check: `status` ok, FAIL or note (said, but not a failure), and what was found."""

    name: str
    status: str
    detail: str


@dataclass
class VerifyReport:
    """The checks of one model URI, in the order they ran."""

    uri: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (notes do not count)."""
        return bool(self.checks) and all(c.status != "FAIL" for c in self.checks)

    def add(self, name: str, status: str, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, status, detail))

    def lines(self) -> list[str]:
        """One line per check: ``ok   digests: 9 files match ...``."""
        return [f"{c.status:<4} {c.name}: {c.detail}" for c in self.checks]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def verify_model(uri: str) -> VerifyReport:
    """Download `uri` (a path, ``runs:/`` or ``models:/`` URI), check its digests and load and
    score it in a child process; every outcome is a check of the report (nothing raised for a
    bad model, registry or download). A file that fails its digest is never parsed."""
    from leadscore.serving.digests import DigestError
    from leadscore.serving.loader import check_integrity, fetch
    from leadscore.serving.probe import ProbeFailed, probe

    report = VerifyReport(uri)
    try:
        fetched = fetch(uri)
    except LeadscoreError as exc:
        report.add("fetch", "FAIL", _first_line(exc))
        return report
    registered = fetched.registered
    where = f"version {registered.version} of {registered.name}" if registered else "no registry"
    report.add("fetch", "ok", f"{fetched.root} ({where})")
    try:
        integrity = check_integrity(fetched)
    except DigestError as exc:
        report.add("digests", "FAIL", _first_line(exc))
        return report
    if integrity.status == "verified":
        report.add("digests", "ok", integrity.detail)
    else:
        report.add("digests", "FAIL", f"unverified: {integrity.detail}")
    code = sorted(p.relative_to(fetched.root).as_posix() for p in fetched.root.glob("*.py"))
    if code and integrity.source == "registry tag":
        detail = "covered by the registry tag (MLflow executes it: mlflow.pyfunc.load_model, "
        report.add("code file", "ok", f"{', '.join(code)} {detail}mlflow models serve)")
    elif code:
        detail = "not covered: only a registry version's leadscore.digests tag covers it"
        report.add("code file", "note", f"{', '.join(code)} {detail}")
    try:
        result = probe(fetched.scorer_dir, integrity.scorer_files)
    except ProbeFailed as exc:
        report.add("probe", "FAIL", _first_line(exc))
        return report
    report.add("probe", "ok", f"loaded and scored the example lead in a child process "
               f"(p={result.probability:.4f}, {result.seconds:.1f} s)")  # fmt: skip
    return report


@model_app.command("verify")
def verify(
    uri: Annotated[
        str,
        typer.Argument(
            help="models:/NAME@ALIAS, models:/NAME/N, runs:/RUN_ID/model or a model directory."
        ),
    ],
) -> None:
    """Check a model's files against its recorded digests and load it in a child process."""
    report = verify_model(uri)
    print_blocks(report.lines())
    failed = [c.name for c in report.checks if c.status == "FAIL"]
    if failed:
        raise VerifyFailed(f"{uri} did not verify: {', '.join(failed)} failed")
