"""MLflow: tracking URI, logging the model from code, registry aliases."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from leadscore.features.config import FeatureConfig
from leadscore.serving.digests import digest_files, document
from leadscore.serving.examples import example_body
from leadscore.serving.mlflow_schema import signature
from leadscore.serving.registry import (
    ALIASES_AT_CREATION_TAG,
    CHALLENGER,
    CHAMPION,
    DIGESTS_TAG,
    MODEL_CODE,
    check_store,
    tracking_uri,
)

log = logging.getLogger(__name__)
# Kept well under MLflow's limit (100,000 in MLflow 3; 5,000 in servers before MLflow 2.10).
MAX_DIGESTS_TAG_CHARS = 5000


def configure(create: bool = False) -> MlflowClient:
    """Point MLflow at the tracking URI (called by commands, never at import); fail at once when
    the store is missing (unless `create`: training makes a new SQLite store) or unreachable."""
    check_store(create=create)
    mlflow.set_tracking_uri(tracking_uri())
    return MlflowClient()


def start_run(experiment: str) -> mlflow.ActiveRun:
    """A new run in `experiment`, or the run `mlflow run` created (MLFLOW_RUN_ID) as it is."""
    if os.environ.get("MLFLOW_RUN_ID"):
        return mlflow.start_run()  # MLproject: the run and its experiment already exist
    mlflow.set_experiment(experiment)
    return mlflow.start_run()


def log_scorer_model(scorer_dir: Path, config: FeatureConfig, model_name: str) -> tuple[str, str]:
    """Log the scorer as a models-from-code pyfunc, register it, and record the SHA-256 of every
    file of the logged model (scorer files and the code file MLflow executes) as the version's
    `leadscore.digests` tag; returns (model URI, version)."""
    example = example_body(config)  # valid under this model's own contract
    frame = pd.DataFrame([{k: example[k] for k in ("lead", "account", "contact", "events")}])
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"scorer": str(scorer_dir)},
        signature=signature(config),
        input_example=(frame, {"as_of": example["as_of"]}),
        registered_model_name=model_name,
        pip_requirements=_requirements(),
    )
    version = str(info.registered_model_version)
    tag_digests(info.model_uri, model_name, version)
    return info.model_uri, version


def tag_digests(model_uri: str, model_name: str, version: str) -> dict[str, str]:
    """Set the `leadscore.digests` tag of a registered version: the SHA-256 of every file of
    the logged model as the artifact store returns it (paths relative to the model's root,
    e.g. ``model_code.py``, ``artifacts/scorer/model.lgb``). The registry copy is the trusted
    one: whoever can write the artifact store cannot necessarily write the registry."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    files = digest_files(local)
    text = json.dumps(document(files), separators=(",", ":"))
    if len(text) > MAX_DIGESTS_TAG_CHARS:
        log.warning("%s version %s: the digests of %d files (%d characters) do not fit a tag; "
                    "only digests.json covers the model", model_name, version, len(files),
                    len(text))  # fmt: skip
        return {}
    MlflowClient().set_model_version_tag(model_name, version, DIGESTS_TAG, text)
    return files


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ["mlflow", "lightgbm", "pandas", "numpy", "pydantic", "pyyaml", "scikit-learn"]
    return [f"{p}=={version(p)}" for p in packages]


def set_aliases(client: MlflowClient, model_name: str, version: str) -> list[str]:
    """New versions become `challenger`; also `champion` when there is none yet."""
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    aliases = [CHALLENGER]
    try:
        client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        aliases.append(CHAMPION)
    client.set_model_version_tag(model_name, version, ALIASES_AT_CREATION_TAG, ",".join(aliases))
    return aliases


def flat_params(prefix: str, value: Any) -> dict[str, Any]:
    """Nested config as flat MLflow params (`model.params.learning_rate`)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= flat_params(f"{prefix}.{k}" if prefix else str(k), v)
        return out
    return {prefix: value if not isinstance(value, list | tuple) else ",".join(map(str, value))}
