"""The MLflow registry, named once: tracking URI, model name, aliases, tags, model URIs.

Training writes what this module names (versions, aliases, tags); the loader, the service's
model watcher and the lifecycle commands read it. MLflow is imported only by the functions
that talk to the registry, and their failures become :class:`RegistryError` with the cause
and the fix in one line.

Every registry call of the serving side runs under a timeout (:func:`within`): a locked or
unreachable store gives ``registry unavailable: no answer within N s`` instead of a hang
(`LEADSCORE_REGISTRY_TIMEOUT_SECONDS`, default 30; downloads `LEADSCORE_DOWNLOAD_TIMEOUT_SECONDS`,
default 120). A SQLite store file that was replaced (another inode) is noticed before each
call and MLflow's cached store and engine for it are dropped, so the new file is read.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from leadscore.features.errors import LeadscoreError

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
T = TypeVar("T")

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
# SHA-256 of every file of the logged model (serving.digests), written once at registration
DIGESTS_TAG = "leadscore.digests"

HEALTH_TIMEOUT_S = 5.0
REGISTRY_TIMEOUT_ENV = "LEADSCORE_REGISTRY_TIMEOUT_SECONDS"
DEFAULT_REGISTRY_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_ENV = "LEADSCORE_DOWNLOAD_TIMEOUT_SECONDS"
DEFAULT_DOWNLOAD_TIMEOUT_S = 120.0
UNAVAILABLE = "registry unavailable"  # marks a registry that cannot be read (not a bad model)
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


def seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable `name` (else `default`)."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise RegistryError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


def registry_timeout() -> float:
    """Seconds a registry call may take (`LEADSCORE_REGISTRY_TIMEOUT_SECONDS`, default 30)."""
    return seconds_from_env(REGISTRY_TIMEOUT_ENV, DEFAULT_REGISTRY_TIMEOUT_S)


def download_timeout() -> float:
    """Seconds a model download may take (`LEADSCORE_DOWNLOAD_TIMEOUT_SECONDS`, default 120)."""
    return seconds_from_env(DOWNLOAD_TIMEOUT_ENV, DEFAULT_DOWNLOAD_TIMEOUT_S)


def within(seconds: float, call: Callable[[], T], what: str = "") -> T:
    """Run `call` in a worker thread and return its result, or raise its exception; after
    `seconds` give up with :class:`RegistryError` ``registry unavailable: no answer within N s``.

    MLflow has no timeout of its own for a locked SQLite store (it waits 20 s per statement,
    and retries). A call given up on finishes in its daemon thread and is ignored.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="leadscore-registry-call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        doing = f" ({what})" if what else ""
        raise RegistryError(
            f"{UNAVAILABLE}: no answer within {seconds:g} s from {tracking_uri()}{doing}"
        )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]  # a BaseException, stored above
    return outcome["value"]  # type: ignore[return-value]  # set by call()


_STORE_REGISTRIES = (
    ("mlflow.tracking._tracking_service.registry", "TrackingStoreRegistry"),
    ("mlflow.tracking._model_registry.registry", "ModelRegistryStoreRegistry"),
)
_store_files: dict[Path, tuple[int, int]] = {}  # SQLite store file -> (st_dev, st_ino) last seen
_store_files_lock = threading.Lock()


def _sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()


def forget_cached_stores(path: Path) -> None:
    """Drop MLflow's cached stores, and its SQLAlchemy engines for the SQLite file `path`: they
    keep reading a file that was deleted or replaced (the old inode) for as long as they live.

    MLflow 3 caches stores per URI (an ``lru_cache`` on each store registry) and engines per
    database URI (``SqlAlchemyStore._engine_map``, tracking and model registry); both are
    private, so a change there costs a warning, not a failure.
    """
    try:
        for module in ("mlflow.store.tracking.sqlalchemy_store",
                       "mlflow.store.model_registry.sqlalchemy_store"):  # fmt: skip
            loaded = sys.modules.get(module)
            if loaded is None:
                continue  # never imported: nothing cached
            store_cls = loaded.SqlAlchemyStore
            with store_cls._engine_map_lock:
                stale = [k for k in store_cls._engine_map
                         if k.startswith("sqlite:///") and _sqlite_path(k) == path]  # fmt: skip
                for key in stale:
                    store_cls._engine_map.pop(key).dispose()
        for module, name in _STORE_REGISTRIES:
            loaded = sys.modules.get(module)
            if loaded is not None:
                getattr(loaded, name)._get_store_with_resolved_uri.cache_clear()
    except (AttributeError, TypeError) as exc:
        log.warning("cannot drop MLflow's cached store for %s (%s): a replaced store file may "
                    "not be seen until restart", path, exc)  # fmt: skip


def _notice_replaced(path: Path) -> bool:
    """Whether the SQLite file exists; drops MLflow's caches when it is another file (another
    inode) than the last time, or is gone."""
    try:
        stat = path.stat()
    except OSError:
        stat = None
    identity = (stat.st_dev, stat.st_ino) if stat else None
    with _store_files_lock:
        before = _store_files.pop(path, None)
        if identity is not None:
            _store_files[path] = identity
    if before is not None and before != identity:
        log.warning("the tracking store file %s was %s: reopening it", path,
                    "deleted" if identity is None else "replaced")  # fmt: skip
        forget_cached_stores(path)
    return identity is not None


def check_store(create: bool = False) -> None:
    """Fail fast, in one line, when the tracking store is not there: a SQLite file that does not
    exist (unless `create`), or a tracking server that does not answer its health check within
    a few seconds. MLflow's own calls retry for minutes; this says why at once. A SQLite file
    replaced since the last check is reopened (:func:`forget_cached_stores`)."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        exists = _notice_replaced(_sqlite_path(uri))
        if not create and not exists:
            raise RegistryError(
                f"no MLflow tracking store at {path} (no such file; MLFLOW_TRACKING_URI={uri}): "
                "train and register a model with `leadscore train --data PATH`, or point "
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

    Raises :class:`RegistryError` when the registry cannot be read (within
    :func:`registry_timeout` seconds) or holds no such model, alias or version.
    """
    match = REGISTRY_URI.match(uri)
    if not match:
        return None
    name, alias, version = match["name"], match["alias"], match["version"]
    check_store()
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.exceptions import MlflowException

    def lookup() -> ModelVersion:
        registry = client()
        if alias:
            return registry.get_model_version_by_alias(name, alias)
        return registry.get_model_version(name, str(version))

    try:
        mv = within(registry_timeout(), lookup, f"looking up {uri}")
    except RegistryError:
        raise
    except MlflowException as exc:
        raise RegistryError(describe_failure(exc, uri)) from exc
    except Exception as exc:  # connection refused, DNS, timeouts: the store is unreachable
        raise RegistryError(unreachable(exc)) from exc
    return RegisteredVersion(name, str(mv.version), alias, dict(mv.tags or {}), mv.run_id)


def unreachable(exc: object) -> str:
    """One line for a tracking store that cannot be reached."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"{UNAVAILABLE}: cannot reach the MLflow tracking store {tracking_uri()} "
        f"({first[:200]}); start it or point MLFLOW_TRACKING_URI at a running one"
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
