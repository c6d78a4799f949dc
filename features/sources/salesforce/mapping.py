"""The Salesforce mapping file (`salesforce.yaml`): what an org's export means, checked against
features.yaml."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.features.config import FeatureConfig
from leadscore.features.configdir import config_file, packaged_config_dir
from leadscore.features.schema import CURRENT_STATE_COLUMNS, schemas
from leadscore.features.yamlfile import (
    ConfigError,
    line_of,
    parse_yaml,
    read_text,
    validate_yaml,
)

MAPPING_FILE = "salesforce.yaml"
OBJECTS = (
    "Lead", "Account", "Contact", "Opportunity", "OpportunityHistory", "Task", "Event",
    "CampaignMember", "Campaign", "LeadHistory", "OpportunityFieldHistory",
)  # fmt: skip
SessionColumn = Literal[
    "subtype", "page_views", "pricing_page_views", "demo_page_views", "duration_seconds"
]
_TARGET = r"^(lead|account|contact)\.[a-z][a-z0-9_]*$"
# canonical columns a mapped field may not replace: keys, links and the creation moment
_STRUCTURAL = frozenset({"lead_id", "account_id", "contact_id", "created_at"})
_TABLE = {"lead": "leads", "account": "accounts", "contact": "contacts"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueMaps(_Strict):
    """Picklist values into the contract's vocabulary (matched ignoring case)."""

    lead_source: dict[str, str] = Field(default_factory=dict)
    industry: dict[str, str] = Field(default_factory=dict)
    region: dict[str, str] = Field(default_factory=dict)


class OutcomeRules(_Strict):
    """Which statuses and stages are outcomes."""

    sql_statuses: tuple[str, ...] = ("Qualified",)
    lost_statuses: tuple[str, ...] = ()
    won_stages: tuple[str, ...] = ("Closed Won",)
    lost_stages: tuple[str, ...] = ("Closed Lost",)
    opportunity_lead_field: str | None = None


class ActivityRules(_Strict):
    """Task and Event rows as sales activities (and web sessions)."""

    types: dict[str, str] = Field(default_factory=dict)
    outcome_fields: tuple[str, ...] = ("CallDisposition",)
    outcomes: dict[str, str] = Field(default_factory=dict)
    web_session_type: str | None = None
    web_session_fields: dict[str, SessionColumn] = Field(default_factory=dict)


class CampaignType(_Strict):
    """What a Campaign.Type means as a touch."""

    subtype: str
    direction: Literal["inbound", "outbound"] | None = None


class CampaignRules(_Strict):
    """CampaignMember responses as touches."""

    types: dict[str, CampaignType] = Field(default_factory=dict)
    direction_field: str | None = None
    channel_field: str | None = None
    response_time_field: str | None = None


class SalesforceMap(_Strict):
    """`salesforce.yaml`: what an org's Salesforce export means."""

    observation_end: datetime | None = None
    values: ValueMaps = Field(default_factory=ValueMaps)
    fields: dict[str, str] = Field(default_factory=dict)
    history: dict[Literal["Lead", "Opportunity"], dict[str, str]] = Field(default_factory=dict)
    outcomes: OutcomeRules = Field(default_factory=OutcomeRules)
    activities: ActivityRules = Field(default_factory=ActivityRules)
    campaigns: CampaignRules = Field(default_factory=CampaignRules)
    current_state: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    ignore: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("current_state", "ignore")
    @classmethod
    def _objects(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(OBJECTS) - {"*"})
        if unknown:
            raise ValueError(f"unknown object(s) {unknown}; expected {list(OBJECTS)} (or *)")
        return value

    @model_validator(mode="after")
    def _state_is_no_field(self) -> SalesforceMap:
        state = {c for obj in ("Lead", "Account", "Contact") for c in self.state(obj)}
        mapped = sorted(state & set(self.fields))
        if mapped:
            raise ValueError(f"fields: {mapped} are listed as current_state; current state is "
                             "never a field")  # fmt: skip
        return self

    def state(self, obj: str) -> frozenset[str]:
        """The current-state columns of an object."""
        return frozenset(self.current_state.get(obj, ()))

    def ignored(self, obj: str) -> frozenset[str]:
        """Columns of an object read by nothing on purpose."""
        return frozenset(self.ignore.get(obj, ())) | frozenset(self.ignore.get("*", ()))


def load_mapping(path: Path | None, config: FeatureConfig) -> SalesforceMap:
    """The mapping file (default: `salesforce.yaml` in the config directory, else the packaged
    one), checked against `config`: each mapped field fills a canonical column or a custom
    field (never an outcome, key or creation moment); each history field is a dated custom
    field. Errors name the file and line."""
    if path is None:
        path = config_file(MAPPING_FILE)
        if not path.is_file():  # a config directory written before Salesforce support
            path = packaged_config_dir() / MAPPING_FILE
    text = read_text(path, "Salesforce mapping")
    origin = str(path)
    mapping = validate_yaml(text, SalesforceMap, origin)
    tables = schemas(config)
    dated = {c.name for c in config.custom_fields if c.dated}
    problems: list[tuple[list[str | int], str]] = []
    for api, target in mapping.fields.items():
        if not re.match(_TARGET, target):
            problems.append((["fields", api], f"{target!r} is not entity.column (lead.x, "
                             "account.x or contact.x)"))  # fmt: skip
            continue
        entity, column = target.split(".")
        known = {c.name for c in tables[_TABLE[entity]].columns}
        if column in CURRENT_STATE_COLUMNS or column in _STRUCTURAL:
            problems.append((["fields", api], f"{target} is an outcome, a key or the creation "
                             "moment: no field may fill it"))  # fmt: skip
        elif column not in known:
            problems.append((["fields", api], f"{target} is neither a canonical column nor "
                             "a custom field of features.yaml"))  # fmt: skip
        elif column in dated:
            problems.append((["fields", api], f"{target} is a dated custom field: map its "
                             "history under `history`, not its current value"))  # fmt: skip
    for obj, fields in mapping.history.items():
        for api, name in fields.items():
            if name not in dated:
                problems.append((["history", obj, api], f"{name} is no dated custom field of "
                                 "features.yaml (declare it with dated: true)"))  # fmt: skip
    if problems:
        _, node = parse_yaml(text, origin)
        lines = []
        for loc, what in problems:
            line = line_of(node, loc)
            at = f"line {line}: " if line else ""
            lines.append(f"{at}{'.'.join(map(str, loc))}: {what}")
        raise ConfigError(origin, lines)
    return mapping
