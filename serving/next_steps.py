"""Next steps: which feasible step (a meeting, a demo, a pricing call) would raise a lead most.

A step is an event a rep can cause, declared in `config/next_steps.yaml` (or the file named by
``LEADSCORE_NEXT_STEPS_FILE``). :func:`what_if` tries each step on its own: the step's event is
added to the lead's history at its as_of (so it counts, like any event at or before as_of), the
feature row is rebuilt by the same one-lead builder that scored the lead, and the row is scored
again. The steps that raise the probability most come back first; a step that lowers the score
or leaves it unchanged is never recommended.

The answer is the model's: leads like this one that also had this event converted more often.
It is no causal estimate, and the batch path (`leadscore score --next-steps`) asks the same
question of the batch snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.features.configdir import config_file
from leadscore.features.spec import EVENT_KINDS, FeatureSpec
from leadscore.features.yamlfile import ConfigError, load_config

if TYPE_CHECKING:  # the settings import this module: no LightGBM to read a file name
    from leadscore.features.payload import ParsedLead
    from leadscore.serving.runtime import Scorer

NEXT_STEPS_FILE = "next_steps.yaml"
TOP = 3  # steps returned per lead
EVENT_ID_PREFIX = "next-step:"


class NextStepsError(ConfigError):
    """The next-steps file is missing or says something this code cannot apply."""


class StepEvent(BaseModel):
    """The event a step leaves in the CRM, in the canonical events table's columns."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str = Field(min_length=1)
    subtype: str | None = None
    channel: str | None = None
    direction: str | None = None
    outcome: str | None = None
    value: float | None = None
    page_views: int | None = Field(default=None, ge=0)
    pricing_page_views: int | None = Field(default=None, ge=0)
    demo_page_views: int | None = Field(default=None, ge=0)
    duration_seconds: int | None = Field(default=None, ge=0)

    def record(self) -> dict[str, Any]:
        """The columns this step sets (unset ones stay missing, as in a CRM export)."""
        return self.model_dump(exclude_none=True)


class Step(BaseModel):
    """One feasible step: an id for machines, a label for people, and its event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    label: str = Field(min_length=1)
    event: StepEvent


class NextStepsConfig(BaseModel):
    """`config/next_steps.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    steps: tuple[Step, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if number else value

    @field_validator("steps")
    @classmethod
    def _unique_ids(cls, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        seen: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step.id in seen:
                first = seen[step.id]
                raise ValueError(f"step id {step.id!r} is used twice (steps {first} and {i})")
            seen[step.id] = i
        return steps


@dataclass(frozen=True)
class NextStepResult:
    """What one step would do to a lead's score."""

    id: str
    label: str
    probability_after: float
    gain: float  # probability_after - the lead's probability now (probability points)
    tier_after: str
    is_mql_after: bool


def default_next_steps_path() -> Path:
    """`next_steps.yaml` in the config directory (``$LEADSCORE_CONFIG_DIR`` or the packaged
    defaults)."""
    return config_file(NEXT_STEPS_FILE)


def load_next_steps(path: Path | str | None = None) -> NextStepsConfig:
    """Read and validate a next-steps file (default: :func:`default_next_steps_path`)."""
    return load_config(path, NEXT_STEPS_FILE, NextStepsConfig, "next-steps file", NextStepsError)


def moved_features(step: Step, spec: FeatureSpec) -> list[str]:
    """Names of the event features of `spec` whose filter takes the step's event (whether a
    windowed one counts it depends on the lead's age); empty: the step never moves a score."""
    record = step.event.record()
    return [f.name for f in spec if f.kind in EVENT_KINDS and f.filter.matches(record)]


def step_event(step: Step, lead_id: Any, as_of: datetime) -> dict[str, Any]:
    """The step's event for one lead, dated at its as_of (an event at as_of counts)."""
    return {
        "event_id": f"{EVENT_ID_PREFIX}{step.id}",
        "lead_id": lead_id,
        "timestamp": as_of,
        **step.event.record(),
    }


def what_if(
    scorer: Scorer,
    parsed: ParsedLead,
    steps: Sequence[Step],
    top: int = TOP,
    before: Mapping[str, Any] | None = None,
) -> list[NextStepResult]:
    """The `top` steps that raise the lead's probability most, best first (ties: file order).

    Each step costs one feature row and one scoring (no reasons). `before` is the lead's own
    :meth:`Scorer.score_row` result when the caller has it already (else it is computed).
    Steps that lower the probability or leave it unchanged are left out, so fewer than `top`
    (or none) may come back.
    """
    lead, account, contact, events, as_of = (
        parsed.lead, parsed.account, parsed.contact, parsed.events, parsed.as_of,
    )  # fmt: skip
    if before is None:
        before = scorer.score_row(scorer.feature_row(lead, account, contact, events, as_of))
    now = float(before["mql_probability"])
    found = []
    for step in steps:
        with_step = [*events, step_event(step, lead.get("lead_id"), as_of)]
        scored = scorer.score_row(scorer.feature_row(lead, account, contact, with_step, as_of))
        after = float(scored["mql_probability"])
        if after > now:
            found.append(
                NextStepResult(
                    id=step.id, label=step.label, probability_after=after, gain=after - now,
                    tier_after=str(scored["tier"]), is_mql_after=bool(scored["is_mql"]),
                )
            )  # fmt: skip
    found.sort(key=lambda r: -r.gain)  # stable: equal gains keep the file's order
    return found[: max(top, 0)]
