"""The MLflow registry, named once: tracking URI, model name, aliases, tags, model URIs.

Training writes what this module names (versions, aliases, tags); the loader, the service's
model watcher and the lifecycle commands read it. MLflow is imported only by the functions
that talk to the registry, and their failures become :class:`RegistryError` with the cause
and the fix in one line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from leadscore.features.errors import LeadscoreError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_MODEL_NAME = "lead-scoring"
CHAMPION, CHALLENGER = "champion", "challenger"
DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@{CHAMPION}"

# Version tags (and one run tag) leadscore writes.
THRESHOLDS_TAG = "leadscore.thresholds"  # a policy change after training (`leadscore policy set`)
ALIASES_AT_CREATION_TAG = "leadscore.aliases_at_creation"
PROMOTED_AT_TAG = "leadscore.promoted_at"
REPLACED_TAG = "leadscore.replaced"
RUN_VERSION_TAG = "leadscore.model_version"  # on the training run: the version it registered

HEALTH_TIMEOUT_S = 5.0
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")

# The file MLflow logs as the model's code; it is executed, never imported.
MODEL_CODE = Path(str(files("leadscore.serving"))) / "model_code.py"


class RegistryError(LeadscoreError):
    """The registry cannot be reached, or does not hold what was asked for."""


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version, as a registry URI resolves it."""

    name: str
    version: str
    alias: str | None
    tags: dict[str, str]
    run_id: str | None


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else a local SQLite store (MLflow 3's default backend)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_store(create: bool = False) -> None:
    """Fail fast, in one line, when the tracking store is not there: a SQLite file that does not
    exist (unless `create`), or a tracking server that does not answer its health check within
    a few seconds. MLflow's own calls retry for minutes; this says why at once."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not create and not path.exists():
            raise RegistryError(
                f"no MLflow tracking store at {path} (MLFLOW_TRACKING_URI={uri}): train and "
                "register a model with `leadscore train --data PATH`, or point "
                "MLFLOW_TRACKING_URI at your store"
            )
    elif uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S):
                pass
        except urllib.error.HTTPError:
            pass  # it answered: a server without /health, or behind a proxy
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(unreachable(getattr(exc, "reason", exc))) from None


def registry_uri(name: str, alias: str = CHAMPION) -> str:
    """``models:/NAME@ALIAS``."""
    return f"models:/{name}@{alias}"


def client() -> MlflowClient:
    """An MLflow client for the current tracking URI (set by the caller or the environment)."""
    from mlflow import MlflowClient

    return MlflowClient()


def resolve(uri: str) -> RegisteredVersion | None:
    """The version a ``models:/`` URI names now (None for a path or a run URI).

    Raises :class:`RegistryError` when the registry cannot be read or holds no such model,
    alias or version.
    """
    match = REGISTRY_URI.match(uri)
    if not match:
        return None
    name, alias, version = match["name"], match["alias"], match["version"]
    check_store()
    from mlflow.exceptions import MlflowException

    try:
        registry = client()
        if alias:
            mv = registry.get_model_version_by_alias(name, alias)
        else:
            mv = registry.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(describe_failure(exc, uri)) from exc
    except Exception as exc:  # connection refused, DNS, timeouts: the store is unreachable
        raise RegistryError(unreachable(exc)) from exc
    return RegisteredVersion(name, str(mv.version), alias, dict(mv.tags or {}), mv.run_id)


def unreachable(exc: object) -> str:
    """One line for a tracking store that cannot be reached."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot reach the MLflow tracking store {tracking_uri()} ({first[:200]}); start it or "
        "point MLFLOW_TRACKING_URI at a running one"
    )


def describe_failure(exc: BaseException, uri: str) -> str:
    """One line for a registry call that failed: a missing model, alias or version, or an
    unreachable store."""
    code = str(getattr(exc, "error_code", ""))
    text = str(exc)
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
        return (
            f"no model at {uri} in the tracking store {tracking_uri()}: train and register one "
            "with `leadscore train --data PATH`, or give another model URI (--model, "
            "LEADSCORE_MODEL_URI)"
        )
    if any(word in text for word in ("Max retries", "Connection", "connect", "timed out")):
        return unreachable(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"the registry refused {uri}: {first[:300]}"
