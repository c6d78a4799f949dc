"""Load a scorer from a model URI: `models:/name@alias`, `models:/name/3`, `runs:/`, a path."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadscore.serving.digests import (
    DIGESTS_FILE,
    DigestError,
    agree,
    digest_files,
    parse,
    read_digests,
    under,
    verify,
)
from leadscore.serving.probe import probe
from leadscore.serving.registry import (
    DEFAULT_MODEL_URI,
    DIGESTS_TAG,
    THRESHOLDS_TAG,
    RegisteredVersion,
    RegistryError,
    describe_failure,
    download_timeout,
    resolve,
    within,
)
from leadscore.serving.runtime import SCORER_FILE, Scorer, ScorerError, Thresholds

log = logging.getLogger(__name__)

UNVERIFIED = (
    "no digests recorded (neither a leadscore.digests registry tag nor a digests.json): its "
    "files were not checked"
)


def _scorer_dir(local: Path, listed: Collection[str] = ()) -> Path:
    # a scorer directory itself, or a logged pyfunc whose `scorer` artifact MLflow copied into
    # artifacts/<the directory's own name>/; known by its scorer.json, its digests.json, or the
    # registry tag listing a scorer.json there (so that a missing one is named as such)
    for candidate in (local, *sorted((local / "artifacts").glob("*"))):
        rel = candidate.relative_to(local).as_posix()
        expected = SCORER_FILE if rel == "." else f"{rel}/{SCORER_FILE}"
        if any((candidate / name).is_file() for name in (SCORER_FILE, DIGESTS_FILE)):
            return candidate
        if expected in listed:
            return candidate
    raise ScorerError(f"{local}: neither a leadscore model directory nor a logged leadscore pyfunc")


def _download(uri: str) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    def download() -> Path:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))

    try:
        return within(download_timeout(), download, f"downloading {uri}")
    except RegistryError:
        raise
    except MlflowException as exc:
        raise RegistryError(describe_failure(exc, uri)) from exc
    except OSError as exc:
        raise RegistryError(f"cannot download {uri}: {exc}") from exc


@dataclass(frozen=True)
class Fetched:
    """A model's files on local disk: `root` as downloaded (or the path given), the scorer
    directory inside it, and the registry version when the URI named one (pinned)."""

    uri: str
    root: Path
    scorer_dir: Path
    registered: RegisteredVersion | None


def fetch(uri: str) -> Fetched:
    """Resolve and download `uri` (a path is used where it is); nothing is parsed but JSON
    metadata. Raises :class:`RegistryError` or :class:`ScorerError` naming the cause."""
    local = Path(uri)
    if local.exists():
        return Fetched(uri, local, _scorer_dir(local), None)
    registered = resolve(uri)
    if registered is None:
        if ":/" not in uri:
            raise ScorerError(f"{uri}: no such model directory, and not a models:/ or runs:/ URI")
        root = _download(uri)
        return Fetched(uri, root, _scorer_dir(root), None)
    # pin the version: the alias may move while we download
    root = _download(f"models:/{registered.name}/{registered.version}")
    tag = registered.tags.get(DIGESTS_TAG)
    listed = parse(tag, f"the registry tag {DIGESTS_TAG}") if tag else {}
    return Fetched(uri, root, _scorer_dir(root, listed), registered)


@dataclass(frozen=True)
class Integrity:
    """What the digests check found: `status` verified or unverified, against which `source`
    (``registry tag`` or ``digests.json``), how many files; `scorer_files` are the SHA-256 of
    the scorer directory's files (the probe's memo key)."""

    status: str
    source: str | None
    files: int
    detail: str
    scorer_files: dict[str, str]

    def to_meta(self) -> dict[str, Any]:
        """The form kept in ``scorer.meta["integrity"]`` (shown in ``/v1/model``)."""
        if self.status == "verified":
            return {"status": self.status, "files": self.files, "source": self.source}
        return {"status": self.status, "detail": self.detail}


def check_integrity(fetched: Fetched) -> Integrity:
    """Check the model's files before any parser reads them: against the registry version's
    ``leadscore.digests`` tag (every file of the logged model, its code file included; a
    ``digests.json`` must then agree with it), else against ``digests.json``, else report them
    unverified (logged as a warning). Raises :class:`DigestError` naming the first bad file."""
    root, scorer_dir = fetched.root, fetched.scorer_dir
    tag = fetched.registered.tags.get(DIGESTS_TAG) if fetched.registered else None
    try:
        recorded = read_digests(scorer_dir)
        if tag:
            found = verify(root, parse(tag, f"the registry tag {DIGESTS_TAG}"))
            prefix = "" if scorer_dir == root else scorer_dir.relative_to(root).as_posix()
            scorer_files = under(found, prefix)
            if recorded is not None:
                agree(recorded, scorer_files, DIGESTS_FILE)
            detail = f"{len(found)} files match the registry tag {DIGESTS_TAG}"
            return Integrity("verified", "registry tag", len(found), detail, scorer_files)
        if recorded is not None:
            found = verify(scorer_dir, recorded)
            detail = f"{len(found)} files match {DIGESTS_FILE}"
            return Integrity("verified", DIGESTS_FILE, len(found), detail, found)
    except DigestError as exc:
        source = f"the registry tag {DIGESTS_TAG}" if tag else DIGESTS_FILE
        raise DigestError(f"{exc} (checked against {source}); not loaded") from None
    log.warning("%s: %s", fetched.uri, UNVERIFIED)
    found = digest_files(scorer_dir)
    return Integrity("unverified", None, len(found), UNVERIFIED, found)


def load_scorer(uri: str = DEFAULT_MODEL_URI) -> Scorer:
    """Resolve `uri` (registry alias or version, run, or local path) to a ready scorer.

    Before this process parses a byte of it, the model's files are checked against their
    digests (:func:`check_integrity`) and the model is loaded and smoke-scored in a child
    process (:func:`~leadscore.serving.probe.probe`): a corrupt booster that crashes LightGBM's
    parser takes down the child, not this process. The outcome is in
    ``scorer.meta["integrity"]``. The registry name, version and alias are recorded in
    `scorer.meta` (`model_name`, `version`, `alias`). For a registry URI, the version's
    `leadscore.thresholds` tag (written by `leadscore policy set`) replaces the thresholds
    logged with the model; a plain path or run URI keeps the logged ones. Raises
    :class:`~leadscore.serving.registry.RegistryError` or
    :class:`~leadscore.serving.runtime.ScorerError` naming the cause.
    """
    fetched = fetch(uri)
    integrity = check_integrity(fetched)
    result = probe(fetched.scorer_dir, integrity.scorer_files)
    if not result.cached:
        log.info("%s: loaded and scored in a child process in %.2f s", uri, result.seconds)
    scorer = Scorer.from_dir(fetched.scorer_dir)
    scorer.meta["integrity"] = integrity.to_meta()
    registered = fetched.registered
    if registered is None:
        return scorer
    scorer.meta |= {
        "model_name": registered.name,
        "version": registered.version,
        "alias": registered.alias,
    }
    tag = registered.tags.get(THRESHOLDS_TAG)
    if tag:
        scorer.thresholds = thresholds_from_tag(tag)
    return scorer


def thresholds_from_tag(text: str) -> Thresholds:
    """Parse a `leadscore.thresholds` tag (JSON written by `leadscore policy set`)."""
    data = json.loads(text)
    return Thresholds(
        policy=dict(data["policy"]),
        global_threshold=float(data["global_threshold"]),
        by_source={str(k): float(v) for k, v in data.get("by_source", {}).items()},
        revision=int(data["revision"]),
    )
