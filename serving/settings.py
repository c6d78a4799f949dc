"""Settings of the scoring API, read from the environment (``LEADSCORE_*``) by pydantic-settings.

* ``LEADSCORE_MODEL_URI``: the model to serve (default ``models:/lead-scoring@champion``; a
  registry alias or version, a run or a path);
* ``LEADSCORE_TRACKING_URI``: where to load it from (default: MLflow's own,
  ``MLFLOW_TRACKING_URI``);
* ``LEADSCORE_CRITERIA_FILE``: the SQL criteria shown next to each score (default
  ``sql_criteria.yaml`` in the config directory);
* ``LEADSCORE_ROUTING_FILE``: hand-raiser events for ``recommended_action`` (default
  ``routing.yaml`` in the config directory);
* ``LEADSCORE_NEXT_STEPS_FILE``: the steps ``next_steps=true`` tries on a lead (default
  ``next_steps.yaml`` in the config directory);
* ``LEADSCORE_API_KEYS`` (``KEY:SCOPE[+SCOPE],...``) and/or ``LEADSCORE_API_KEYS_FILE``
  (:mod:`leadscore.serving.auth`);
* ``LEADSCORE_MAX_BATCH`` (1000 leads) and ``LEADSCORE_MAX_BODY_BYTES`` (10 MiB): 413 above;
* ``LEADSCORE_MAX_EVENTS`` (5000): events per lead, 422 above (counted before any event is
  validated); every string of a body is also bounded (1000 characters,
  :data:`leadscore.features.payload.MAX_STRING_LENGTH`);
* ``LEADSCORE_TOP_REASONS`` (3): positive and negative reasons returned per lead;
* ``LEADSCORE_RELOAD_INTERVAL_SECONDS`` (60): how often the model watcher looks for a new
  champion;
* ``LEADSCORE_STORE_URL`` (``sqlite:///leadscore.db``): the handoff store (SQLite file or
  ``postgresql+psycopg://...``); its schema is migrated at start-up unless
  ``LEADSCORE_STORE_MIGRATE=false``;
* ``LEADSCORE_RECORD`` (``routed``): which scores become handoff records: ``routed`` (action
  ``route_to_sales`` or ``qualify``), ``all`` or ``none``; written behind the response every
  ``LEADSCORE_RECORD_INTERVAL_SECONDS`` (0.25);
* ``LEADSCORE_SLA_FILE`` and ``LEADSCORE_HANDOFF_FILE``: the SLA (time to first touch, business
  hours, holidays) and the rejection reasons (default ``sla.yaml`` and ``handoff.yaml`` in the
  config directory);
* ``LEADSCORE_SESSION_SECRET``: signs the session cookie of the reps' pages (``/app``). Unset,
  the signing key is derived from the configured API keys' SHA-256 digests, so that every worker
  of one deployment (same keys) accepts the others' cookies without further setup; adding or
  removing a key then signs everyone out. Set it when the keys file (whose digests would let
  its reader forge a session) is readable by more people than the keys themselves, or to keep
  sessions across key changes; every worker must get the same value.
* ``LEADSCORE_REQUEST_TIMEOUT_SECONDS`` (30): the time budget of one scoring request (parsing,
  validation and scoring of a large body or a batch, which run on a worker thread); over it the
  client gets 503. The thread cannot be stopped and finishes in the background: the budget bounds
  the client's wait, not the CPU spent;
* ``LEADSCORE_BODY_TIMEOUT_SECONDS`` (10): a request body must have arrived this long after the
  application starts reading it, else 408 and the connection is closed (slow senders);
* ``LEADSCORE_HEADER_TIMEOUT_SECONDS`` (10): a request's headers must arrive this long after the
  connection opens or the previous response ends, else the connection is closed
  (:mod:`leadscore.serving.api.server`; read by each ``leadscore serve`` worker);
* ``LEADSCORE_MAX_CONNECTIONS`` (1000): open connections per worker process (uvicorn's
  ``limit_concurrency``, read by ``leadscore serve``); above it new requests get 503.

The default config files follow ``LEADSCORE_CONFIG_DIR`` like the rest of leadscore (the
packaged defaults when unset; `leadscore init` writes editable copies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadscore.features.criteria.rules import default_criteria_path
from leadscore.features.feedback import default_handoff_path
from leadscore.serving.next_steps import default_next_steps_path
from leadscore.serving.registry import DEFAULT_MODEL_URI
from leadscore.serving.routing import default_routing_path
from leadscore.serving.sla import default_sla_path
from leadscore.serving.store.db import DEFAULT_STORE_URL


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="LEADSCORE_", extra="ignore", protected_namespaces=(), frozen=True
    )

    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str | None = None
    criteria_file: Path | None = None
    routing_file: Path | None = None
    next_steps_file: Path | None = None
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_events: int = Field(5000, ge=1)
    top_reasons: int = Field(3, ge=0, le=50)
    reload_interval_seconds: float = Field(60.0, gt=0)
    store_url: str = DEFAULT_STORE_URL
    store_migrate: bool = True
    record: Literal["routed", "all", "none"] = "routed"
    record_interval_seconds: float = Field(0.25, gt=0, le=1.0)
    sla_file: Path | None = None
    handoff_file: Path | None = None
    session_secret: SecretStr | None = None
    # hardening (issue 14): time budgets and the connection bound
    request_timeout_seconds: float = Field(30.0, gt=0)
    body_timeout_seconds: float = Field(10.0, gt=0)
    max_connections: int = Field(1000, ge=1)
    header_timeout_seconds: float = Field(10.0, gt=0)

    @property
    def criteria_path(self) -> Path:
        """The criteria file to load."""
        return self.criteria_file or default_criteria_path()

    @property
    def routing_path(self) -> Path:
        """The routing file to load."""
        return self.routing_file or default_routing_path()

    @property
    def next_steps_path(self) -> Path:
        """The next-steps file to load."""
        return self.next_steps_file or default_next_steps_path()

    @property
    def sla_path(self) -> Path:
        """The SLA file to load."""
        return self.sla_file or default_sla_path()

    @property
    def handoff_path(self) -> Path:
        """The rejection-reason file to load."""
        return self.handoff_file or default_handoff_path()
