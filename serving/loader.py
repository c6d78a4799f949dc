"""Load a scorer from a model URI: `models:/name@alias`, `models:/name/3`, `runs:/`, a path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from leadscore.serving.registry import (
    DEFAULT_MODEL_URI,
    THRESHOLDS_TAG,
    RegistryError,
    describe_failure,
    resolve,
)
from leadscore.serving.runtime import SCORER_FILE, Scorer, ScorerError, Thresholds

log = logging.getLogger(__name__)


def _scorer_dir(local: Path) -> Path:
    # a scorer directory itself, or a logged pyfunc whose `scorer` artifact MLflow copied into
    # artifacts/<the directory's own name>/
    for candidate in (local, *sorted((local / "artifacts").glob("*"))):
        if (candidate / SCORER_FILE).is_file():
            return candidate
    raise ScorerError(f"{local}: neither a leadscore model directory nor a logged leadscore pyfunc")


def _download(uri: str) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except MlflowException as exc:
        raise RegistryError(describe_failure(exc, uri)) from exc
    except OSError as exc:
        raise RegistryError(f"cannot download {uri}: {exc}") from exc


def load_scorer(uri: str = DEFAULT_MODEL_URI) -> Scorer:
    """Resolve `uri` (registry alias or version, run, or local path) to a ready scorer.

    The registry name, version and alias are recorded in `scorer.meta` (`model_name`,
    `version`, `alias`). For a registry URI, the version's `leadscore.thresholds` tag (written
    by `leadscore policy set`) replaces the thresholds logged with the model; a plain path or
    run URI keeps the logged ones. Raises :class:`~leadscore.serving.registry.RegistryError`
    or :class:`~leadscore.serving.runtime.ScorerError` naming the cause.
    """
    local = Path(uri)
    if local.exists():
        return Scorer.from_dir(_scorer_dir(local))
    registered = resolve(uri)
    if registered is None:
        if ":/" not in uri:
            raise ScorerError(f"{uri}: no such model directory, and not a models:/ or runs:/ URI")
        return Scorer.from_dir(_scorer_dir(_download(uri)))
    # pin the version: the alias may move while we download
    pinned = f"models:/{registered.name}/{registered.version}"
    scorer = Scorer.from_dir(_scorer_dir(_download(pinned)))
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
