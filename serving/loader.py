"""Load a scorer from a model URI: `models:/name@alias`, `models:/name/3`, `runs:/`, a path."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from serving.runtime import SCORER_FILE, Scorer, ScorerError, Thresholds

log = logging.getLogger(__name__)
DEFAULT_MODEL_URI = "models:/lead-scoring@champion"
THRESHOLDS_TAG = "leadscore.thresholds"
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def _scorer_dir(local: Path) -> Path:
    # a scorer directory itself, or a logged pyfunc whose `scorer` artifact MLflow copied into
    # artifacts/<the directory's own name>/
    for candidate in (local, *sorted((local / "artifacts").glob("*"))):
        if (candidate / SCORER_FILE).is_file():
            return candidate
    raise ScorerError(f"{local}: neither a leadscore model directory nor a logged leadscore pyfunc")


def load_scorer(uri: str = DEFAULT_MODEL_URI) -> Scorer:
    """Resolve `uri` (registry alias or version, run, or local path) to a ready scorer.

    The registry name, version and alias are recorded in `scorer.meta` (`model_name`,
    `version`, `alias`). For a registry URI, the version's `leadscore.thresholds` tag (written
    by `leadscore policy set`) replaces the thresholds logged with the model; a plain path or
    run URI keeps the logged ones.
    """
    local = Path(uri)
    if local.exists():
        return Scorer.from_dir(_scorer_dir(local))
    match = REGISTRY_URI.match(uri)
    name = alias = version = None
    tag = None
    if match:
        name, alias, version = match["name"], match["alias"], match["version"]
        client = MlflowClient()
        if alias:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, str(version))
        version = str(mv.version)
        tag = (mv.tags or {}).get(THRESHOLDS_TAG)
        uri = f"models:/{name}/{version}"  # pin: the alias may move while we download
    downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    scorer = Scorer.from_dir(_scorer_dir(downloaded))
    if name:
        scorer.meta |= {"model_name": name, "version": version, "alias": alias}
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
