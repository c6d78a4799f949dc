"""`recommended_action`: what marketing automation should do with a scored lead.

The rule, in this order (the written contract wins over the model):

1. ``route_to_sales`` when the SQL-criteria verdict is ``sql_ready``, whatever the score;
2. ``route_to_sales`` when the lead raised its hand (an event matching one of the
   ``hand_raisers`` in `config/routing.yaml`, e.g. a demo request) and no required criterion
   fails;
3. ``qualify`` when the lead is an MQL and the verdict is ``needs_qualification``: a rep
   should find out the unknown criteria;
4. ``nurture`` otherwise, naming the failing required criteria when there are any (and a
   hand-raise first, when the lead asked for a demo but fails a required criterion).

The parameters (which events raise a hand, how recent they must be) live in
`config/routing.yaml` (or the file named by ``LEADSCORE_ROUTING_FILE``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.features.config import ConfigError
from leadscore.features.configdir import config_file
from leadscore.features.criteria.check import CriteriaResult
from leadscore.features.spec import EventFilter
from leadscore.features.yamlfile import load_config

Action = Literal["route_to_sales", "qualify", "nurture"]
ROUTING_FILE = "routing.yaml"


class RoutingError(ConfigError):
    """The routing file is missing or says something this code cannot apply."""


class HandRaiser(BaseModel):
    """An event that counts as a hand-raise: its type, optionally narrowed by other columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1)
    subtype: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    direction: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    label: str | None = None  # how the reason names it (default: the type in words)

    @cached_property
    def event_filter(self) -> EventFilter:
        """The feature spec's own event filter for this kind of event (built once)."""
        return EventFilter(
            type=(self.type,), subtype=self.subtype, channel=self.channel,
            direction=self.direction, outcome=self.outcome,
        )  # fmt: skip

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether one canonical event record is this kind of hand-raise (the feature spec's
        own event filter decides)."""
        return self.event_filter.matches(event)

    def describe(self, event: Mapping[str, Any]) -> str:
        """Plain words for a matching event: the label, else its subtype or type."""
        if self.label:
            return self.label
        return str(event.get("subtype") or self.type).replace("_", " ")


class RoutingConfig(BaseModel):
    """`config/routing.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    hand_raisers: tuple[HandRaiser, ...] = ()
    hand_raiser_within_days: float | None = Field(default=None, gt=0)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if number else value

    @cached_property
    def raisers_by_type(self) -> dict[str, tuple[HandRaiser, ...]]:
        """The hand-raisers by event type, in file order (an event is tried only against the
        raisers of its type: each one requires that type)."""
        by_type: dict[str, tuple[HandRaiser, ...]] = {}
        for raiser in self.hand_raisers:
            by_type[raiser.type] = (*by_type.get(raiser.type, ()), raiser)
        return by_type


@dataclass(frozen=True)
class Recommendation:
    """The action, one sentence why, and the criteria it rests on."""

    action: Action
    reason: str
    criteria: tuple[str, ...] = ()


def default_routing_path() -> Path:
    """`routing.yaml` in the config directory (``$LEADSCORE_CONFIG_DIR`` or the packaged
    defaults)."""
    return config_file(ROUTING_FILE)


def load_routing(path: Path | str | None = None) -> RoutingConfig:
    """Read and validate a routing file (default: :func:`default_routing_path`)."""
    return load_config(path, ROUTING_FILE, RoutingConfig, "routing file", RoutingError)


def hand_raise(
    config: RoutingConfig, events: Sequence[Mapping[str, Any]], as_of: datetime
) -> tuple[HandRaiser, Mapping[str, Any]] | None:
    """The latest hand-raising event at or before `as_of` (within the window), if any."""
    since = (
        as_of - timedelta(days=config.hand_raiser_within_days)
        if config.hand_raiser_within_days is not None
        else None
    )
    found: tuple[HandRaiser, Mapping[str, Any]] | None = None
    by_type = config.raisers_by_type
    for event in events:
        kind = event.get("type")
        raisers = by_type.get(kind) if isinstance(kind, str) else None
        if raisers is None:
            continue
        when = event.get("timestamp")
        if not isinstance(when, datetime) or when > as_of or (since and when < since):
            continue
        for raiser in raisers:  # tried by the event's type: the rest of the filter decides
            if raiser.event_filter.matches_beyond_type(event) and (
                found is None or when >= found[1]["timestamp"]
            ):
                found = (raiser, event)
    return found


def recommend(
    config: RoutingConfig,
    criteria: CriteriaResult,
    is_mql: bool,
    events: Sequence[Mapping[str, Any]],
    as_of: datetime,
) -> Recommendation:
    """Apply the routing rule (module docstring) to one scored, checked lead."""
    failing = tuple(r.id for r in criteria.results if r.required and r.status == "fail")
    unknown = tuple(r.id for r in criteria.results if r.required and r.status == "unknown")
    if criteria.verdict == "sql_ready":
        return Recommendation(
            "route_to_sales",
            f"Meets every required SQL criterion (version {criteria.version})",
        )
    raised = hand_raise(config, events, as_of)
    if raised is not None and not failing:
        text = f"{_raised_a_hand(raised)} and no required criterion fails"
        if unknown:
            text += f"; still to confirm: {', '.join(unknown)}"
        return Recommendation("route_to_sales", text, unknown)
    if is_mql and criteria.verdict == "needs_qualification":
        return Recommendation(
            "qualify",
            f"An MQL with required criteria still unknown: {', '.join(unknown)}",
            unknown,
        )
    if failing:
        by_id = {r.id: r for r in criteria.results}
        first = by_id[failing[0]]
        text = f"Fails required SQL criterion {first.id}: {first.sentence}"
        if len(failing) > 1:
            text += f" (also failing: {', '.join(failing[1:])})"
        if raised is not None:  # the rep must know a hand went up before reading "nurture"
            text = f"{_raised_a_hand(raised)}, but cannot go to sales yet. {text}"
        return Recommendation("nurture", text, failing)
    text = "Not an MQL yet"
    if unknown:
        text += f"; required criteria unknown: {', '.join(unknown)}"
    return Recommendation("nurture", text, unknown)


def _raised_a_hand(raised: tuple[HandRaiser, Mapping[str, Any]]) -> str:
    raiser, event = raised
    when = event["timestamp"].date().isoformat()
    return f"Raised a hand ({raiser.describe(event)} on {when})"
