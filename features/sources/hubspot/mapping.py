"""The mapping file, `hubspot.yaml`: its models and :func:`load_mapping`, which refuses to map
current state to anything a feature could read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from leadscore.features.configdir import config_file
from leadscore.features.schema import CURRENT_STATE_COLUMNS
from leadscore.features.yamlfile import ConfigError, line_of, load_yaml, parse_yaml, read_text

HISTORY_FILE = "property_history.jsonl"

# HubSpot object type names and ids (associations, history) -> the plural name used here
_OBJECT_TYPES = {
    "0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-18": "communications",
    "0-27": "tasks", "0-46": "notes", "0-47": "meetings", "0-48": "calls", "0-49": "emails",
}  # fmt: skip
_SINGULAR = {
    "contact": "contacts", "company": "companies", "deal": "deals", "call": "calls",
    "email": "emails", "meeting": "meetings", "note": "notes", "task": "tasks",
    "communication": "communications",
}  # fmt: skip


def object_type(name: str) -> str:
    """`contacts` for contacts, contact, CONTACT or 0-1 (and so on for the other objects)."""
    key = str(name).strip().lower()
    return _OBJECT_TYPES.get(key) or _SINGULAR.get(key) or key


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coded(_Model):
    """A canonical value read from one property: through `values` (exact, then ignoring case),
    `contains` (text containing the key, ignoring case; first key first), else `default`
    (also for an empty value). Without a default, a value nothing names is kept as it is."""

    property: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    contains: dict[str, str] = Field(default_factory=dict)
    default: str | None = None
    bands: bool = False  # a number, put into the band order features.yaml declares


def _ids() -> tuple[str, ...]:
    return ("hs_object_id", "id")


class ContactsMap(_Model):
    """`contacts`: every contact is a lead."""

    file: str = "contacts"
    id: tuple[str, ...] = Field(default_factory=_ids)
    created_at: str = "createdate"
    owner: str | None = "hubspot_owner_id"
    job_title: str | None = "jobtitle"
    company: str | None = "associatedcompanyid"
    email: str | None = "email"
    source: Coded = Coded(property="hs_analytics_source")
    fields: dict[str, Coded] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()


class CompaniesMap(_Model):
    """`companies`: the accounts."""

    file: str = "companies"
    id: tuple[str, ...] = Field(default_factory=_ids)
    fields: dict[str, Coded] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()


class DealsMap(_Model):
    """`deals`: opportunities (an event each) and the won/lost outcomes."""

    file: str = "deals"
    id: tuple[str, ...] = Field(default_factory=_ids)
    created_at: str = "createdate"
    amount: str | None = "amount"
    close_date: str | None = "closedate"
    stage: str | None = "dealstage"
    is_closed_won: str | None = "hs_is_closed_won"
    won_stages: tuple[str, ...] = ("closedwon",)
    lost_stages: tuple[str, ...] = ("closedlost",)
    ignore: tuple[str, ...] = ()


class LifecycleMap(_Model):
    """Where the SQL moment comes from."""

    property: str = "lifecyclestage"
    sql_stages: tuple[str, ...] = ("salesqualifiedlead", "opportunity", "customer")
    sql_date_properties: tuple[str, ...] = ("hs_lifecyclestage_salesqualifiedlead_date",)


class ActivityRule(_Model):
    """What one `hs_activity_type` value makes of an activity."""

    type: Literal["touch", "sales_activity"] | None = None
    subtype: str | None = None


class ActivityTypes(_Model):
    """The activity-type property and its rules."""

    property: str | None = "hs_activity_type"
    values: dict[str, ActivityRule] = Field(default_factory=dict)


class ActivityObject(_Model):
    """One activity object type (a file): calls, emails, meetings, communications."""

    file: str | None = None  # default: the object's name
    type: Literal["touch", "sales_activity"] = "sales_activity"
    channel: str = "sales"  # the channel of its touches (sales activities: "sales")
    subtype: Coded
    direction: Coded = Coded(default="outbound")
    outcome: Coded = Coded()
    ignore: tuple[str, ...] = ()


class ActivitiesMap(_Model):
    """Activities (engagements): one file per object type."""

    timestamp: tuple[str, ...] = ("hs_timestamp", "hs_createdate")
    activity_type: ActivityTypes = ActivityTypes()
    inbound_is_touch: bool = True
    objects: dict[str, ActivityObject] = Field(default_factory=dict)
    not_events: tuple[str, ...] = ("notes", "tasks")
    ignore: tuple[str, ...] = ()


class FormsMap(_Model):
    """`form_submissions`: inbound touches."""

    file: str = "form_submissions"
    id: str = "conversionId"
    contact: str = "contactId"
    timestamp: str = "submittedAt"
    channel: str = "web_form"
    subtype: Coded = Coded(default="form_submission")
    ignore: tuple[str, ...] = ()


class EmailEventsMap(_Model):
    """`marketing_email_events`: touches (by default the emails sent, outbound)."""

    file: str = "marketing_email_events"
    id: str = "id"
    recipient: str = "recipient"
    timestamp: str = "created"
    type: Coded = Coded(property="type", values={"SENT": "outbound"})
    channel: str = "marketing_email"
    subtype: Coded = Coded(default="email")
    ignore: tuple[str, ...] = ()


class WebSessionsMap(_Model):
    """`web_sessions`: one row per visit of a known contact."""

    file: str = "web_sessions"
    id: str = "sessionId"
    contact: str = "contactId"
    timestamp: str = "startedAt"
    subtype: Coded = Coded(default="website")
    page_views: str | None = "pageViews"
    pricing_page_views: str | None = "pricingPageViews"
    demo_page_views: str | None = "demoPageViews"
    duration_seconds: str | None = "durationSeconds"
    ignore: tuple[str, ...] = ()


class AssociationsMap(_Model):
    """`associations`: links between objects, either direction."""

    file: str = "associations"
    from_type: str = "fromObjectType"
    from_id: str = "fromObjectId"
    to_type: str = "toObjectType"
    to_id: str = "toObjectId"
    ignore: tuple[str, ...] = ()


class HistoryMap(_Model):
    """`property_history.jsonl`: which properties become dated field_update events."""

    file: str = HISTORY_FILE
    fields: dict[str, dict[str, str]] = Field(default_factory=dict)  # object -> {property: field}


class HubSpotMapping(_Model):
    """`hubspot.yaml`: how a HubSpot export becomes the canonical tables."""

    contacts: ContactsMap = ContactsMap()
    companies: CompaniesMap = CompaniesMap()
    deals: DealsMap = DealsMap()
    lifecycle: LifecycleMap = LifecycleMap()
    activities: ActivitiesMap = ActivitiesMap()
    form_submissions: FormsMap = FormsMap()
    marketing_email_events: EmailEventsMap = EmailEventsMap()
    web_sessions: WebSessionsMap = WebSessionsMap()
    associations: AssociationsMap = AssociationsMap()
    history: HistoryMap = HistoryMap()
    current_state: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def state(self, obj: str) -> frozenset[str]:
        """The current-state properties of one object type."""
        return frozenset(
            p for o, props in self.current_state.items() if object_type(o) == obj for p in props
        )


def _refused(mapping: HubSpotMapping, node: yaml.Node | None) -> list[str]:
    """Current state mapped to something a feature could read: one problem per mapping."""
    problems: list[str] = []

    def refuse(loc: list[str | int], what: str) -> None:
        line = line_of(node, loc)
        at = f"line {line}: " if line else ""
        problems.append(f"{at}{'.'.join(str(p) for p in loc)}: {what}; it can never be a feature")

    for section, obj in (("contacts", "contacts"), ("companies", "companies")):
        state = mapping.state(obj)
        fields: dict[str, Coded] = getattr(mapping, section).fields
        for target, coded in fields.items():
            if target in CURRENT_STATE_COLUMNS:
                refuse([section, "fields", target], f"{target} encodes the outcome")
            elif coded.property in state:
                refuse([section, "fields", target, "property"],
                       f"{coded.property} is current state (current_state.{obj})")  # fmt: skip
    contact_state = mapping.state("contacts")
    for key in ("owner", "job_title", "company", "created_at"):
        prop = getattr(mapping.contacts, key)
        if prop in contact_state:
            refuse(["contacts", key], f"{prop} is current state (current_state.contacts)")
    if mapping.contacts.source.property in contact_state:
        refuse(["contacts", "source", "property"], "the source is current state")
    for obj, props in mapping.history.fields.items():
        state = mapping.state(object_type(obj))
        for prop, target in props.items():
            if prop in state:
                refuse(["history", "fields", obj, prop], f"{prop} is current state")
            elif target in CURRENT_STATE_COLUMNS:
                refuse(["history", "fields", obj, prop], f"{target} encodes the outcome")
    return problems


def load_mapping(path: Path | None = None) -> HubSpotMapping:
    """`hubspot.yaml` (default: in the config directory), validated; errors name the lines."""
    file = path or config_file("hubspot.yaml")
    mapping = load_yaml(file, HubSpotMapping, "HubSpot mapping")
    _, node = parse_yaml(read_text(file, "HubSpot mapping"), str(file))
    problems = _refused(mapping, node)
    if problems:
        raise ConfigError(str(file), problems)
    return mapping
