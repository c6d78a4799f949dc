"""What the pages show, as plain data for the templates: percentages, SLA time in business
hours or days, the lead card's sections.

Everything here reads stored handoffs (:meth:`HandoffStore.queue`, :meth:`HandoffStore.lead_view`)
with ``.get``: a handoff recorded by an older version, or scored without reasons, still renders.
No feature ids, model internals or keys reach a page: labels and sentences only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from leadscore.features.feedback import HandoffConfig
from leadscore.serving.api.bodies import BodyError, parse_lead
from leadscore.serving.api.service import Served
from leadscore.serving.next_steps import what_if
from leadscore.serving.sla import SlaConfig, calendar_for

log = logging.getLogger(__name__)
NEXT_STEPS_SHOWN = 3
ACTIONS = {"route_to_sales": "Route to sales", "qualify": "Qualify", "nurture": "Nurture"}
VERDICTS = {
    "sql_ready": "SQL-ready", "not_sql": "Not SQL",
    "needs_qualification": "Needs qualification",
}  # fmt: skip
STATUSES = {"pass": "Met", "fail": "Not met", "unknown": "Unknown"}
GROUPS = {
    "fit": "Fit (who they are)",
    "engagement": "Engagement (what they did)",
    "sales": "Sales (what sales did)",
}
_BAR_HALF = 100  # SVG units from the axis to either end


def percent(p: float | None) -> str:
    """A probability as a whole percentage; "<1%" and ">99%" rather than a rounded 0 or 100."""
    if p is None or not math.isfinite(p):
        return "unknown"
    if 0 < p < 0.005:
        return "<1%"
    if 0.995 <= p < 1:
        return ">99%"
    return f"{round(p * 100)}%"


def signed_points(x: float) -> str:
    """Probability points as signed percentage points: ``+4.2 pts``, ``−1.0 pts``."""
    sign = "+" if x >= 0 else "\u2212"
    return f"{sign}{abs(x) * 100:.1f} pts"


def _amount(value: float, unit: str) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"


def business_span(hours: float, day_hours: float) -> str:
    """A business-time span as a rep reads it: minutes under an hour, hours under a day,
    else days of the calendar's length."""
    if hours * 60 < 1:
        return "under a minute"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < day_hours:
        return _amount(hours, "business hour")
    return _amount(hours / day_hours, "business day")


def sla_status(
    due_at: datetime | None, owner: str | None, sla: SlaConfig | None, now: datetime
) -> dict[str, Any]:
    """The SLA as time left or overdue, in business time on the owner's calendar."""
    if due_at is None or sla is None:
        return {"text": "No SLA", "overdue": False}
    calendar = calendar_for(sla, owner)
    if now < due_at:
        left = calendar.between(now, due_at)
        if left == 0:
            return {"text": "Due when business opens", "overdue": False}
        return {"text": f"{business_span(left, calendar.day_hours)} left", "overdue": False}
    late = calendar.between(due_at, now)
    return {"text": f"Overdue by {business_span(late, calendar.day_hours)}", "overdue": True}


def zone_of(sla: SlaConfig | None, owner: str | None) -> ZoneInfo:
    """The time zone a rep reads times in: theirs in the SLA file, else the team's."""
    if sla is None:
        return ZoneInfo("UTC")
    rep = sla.owners.get(owner) if owner is not None else None
    return ZoneInfo(rep.timezone if rep is not None else sla.timezone)


def moment(value: Any, zone: ZoneInfo) -> dict[str, str] | None:
    """A stored moment as ``{iso, text}`` in `zone` (for a ``<time>`` element)."""
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = aware.astimezone(zone)
    return {"iso": aware.isoformat(), "text": local.strftime("%a %d %b %Y, %H:%M %Z")}


def queue_row(item: Mapping[str, Any], sla: SlaConfig | None, now: datetime) -> dict[str, Any]:
    """One waiting handoff as a row of the queue table."""
    return {
        "lead_id": item["lead_id"],
        "probability": percent(item.get("probability")),
        "tier": item.get("tier") or "",
        "action": ACTIONS.get(item.get("action") or "", item.get("action") or ""),
        "sla": sla_status(item.get("due_at"), item.get("owner"), sla, now),
        "verdict": VERDICTS.get(item.get("criteria_verdict") or "", "Not checked"),
    }


# ---------------------------------------------------------------------------------------------
# the lead card


def tier_meaning(tier: str, threshold: float | None, cuts: tuple[float, float] | None) -> str:
    """What a tier letter means to a rep (the cuts when the model that scored is served)."""
    at = f" ({percent(threshold)} or more)" if threshold is not None else ""
    b = f" ({percent(cuts[0])} or more)" if cuts else ""
    c = f" ({percent(cuts[1])} or more)" if cuts else ""
    meanings = {
        "A": f"Marketing-qualified: likely enough to convert to be worked now{at}.",
        "B": f"Not qualified yet, but among the likelier leads{b}.",
        "C": f"Not qualified yet; a moderate chance{c}.",
        "D": "Unlikely to convert for now.",
    }
    return meanings.get(tier, "")


def _sentences(items: Any) -> list[str]:
    """The sentences of reason entries (dicts with a sentence, or plain text)."""
    found = []
    for item in items or ():
        sentence = item.get("sentence") or item.get("label") if isinstance(item, Mapping) else item
        if sentence:
            found.append(str(sentence))
    return found


def group_bars(by_group: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Points by group with a signed bar each (SVG coordinates: the axis at x=100)."""
    if not by_group:
        return []
    values = {g: float(by_group.get(g) or 0.0) for g in GROUPS}
    largest = max((abs(v) for v in values.values()), default=0.0) or 1.0
    bars = []
    for group, value in values.items():
        length = round(abs(value) / largest * _BAR_HALF, 1)
        bars.append({
            "label": GROUPS[group], "points": signed_points(value),
            "x": _BAR_HALF if value >= 0 else _BAR_HALF - length, "width": length,
            "sign": "up" if value >= 0 else "down",
        })  # fmt: skip
    return bars


def reasons_view(shown: Mapping[str, Any]) -> dict[str, Any]:
    """The reasons section: the sentences as shown, the points by group and the base rate."""
    reasons = shown.get("reasons") or {}
    base = reasons.get("base_probability")
    return {
        "computed": bool(reasons),
        "positive": _sentences(reasons.get("positive")),
        "negative": _sentences(reasons.get("negative")),
        "missing": _sentences(reasons.get("missing")),
        "context": _sentences(reasons.get("context")),
        "base": percent(base) if isinstance(base, int | float) else None,
        "bars": group_bars(shown.get("score_by_group")),
    }


def criteria_view(shown: Mapping[str, Any]) -> dict[str, Any]:
    """The SQL criteria as shown: the verdict, its summary and each criterion's sentence."""
    criteria = shown.get("sql_criteria") or {}
    items = []
    for c in criteria.get("criteria") or ():
        status = c.get("status") if c.get("status") in STATUSES else "unknown"
        items.append({
            "id": c.get("id"), "status": status, "status_text": STATUSES[status],
            "sentence": c.get("sentence") or c.get("id") or "", "required": bool(c.get("required")),
        })  # fmt: skip
    verdict = criteria.get("verdict")
    return {
        "verdict": VERDICTS.get(verdict or "", "Not checked"),
        "summary": criteria.get("summary") or "",
        "items": items,
    }


def action_view(shown: Mapping[str, Any], criteria: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The recommended action, why, and the criteria it rests on (by their sentences)."""
    action = shown.get("recommended_action") or {}
    by_id = {c["id"]: c["sentence"] for c in criteria}
    return {
        "label": ACTIONS.get(action.get("action") or "", action.get("action") or "None"),
        "reason": action.get("reason") or "",
        "rests_on": [by_id.get(i, str(i)) for i in action.get("criteria") or ()],
    }


def next_steps_view(served: Served | None, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The steps that would raise the lead most, tried on its body as scored with the model
    served now; or why there are none."""
    if body is None:
        return {"items": [], "empty": "No next steps computed: this lead was recorded without "
                                      "its details."}  # fmt: skip
    if served is None:
        return {"items": [], "empty": "No next steps computed: no model is loaded right now."}
    steps = served.next_steps.steps if served.next_steps is not None else ()
    try:
        parsed = parse_lead(served.payload, dict(body))
        found = what_if(served.scorer, parsed, steps, top=NEXT_STEPS_SHOWN)
    except BodyError as exc:
        log.warning("lead card: the stored lead does not fit the served model: %s", exc)
        return {"items": [], "empty": "No next steps computed: the lead as recorded does not fit "
                                      "the model served now."}  # fmt: skip
    except Exception:  # an optional section: the card shows without it (logged)
        log.exception("lead card: next steps failed")
        return {"items": [], "empty": "No next steps computed: they could not be worked out "
                                      "for this lead."}  # fmt: skip
    items = [
        {"label": r.label, "after": percent(r.probability_after), "gain": signed_points(r.gain)}
        for r in found
    ]
    return {"items": items, "empty": "No step in the playbook would raise this lead's score."}


def _tier_cuts(served: Served | None, handoff: Mapping[str, Any]) -> tuple[float, float] | None:
    """The served model's tier cuts if it is the model that scored the lead."""
    model = handoff.get("model") or {}
    if served is None or (served.ref.name, served.ref.version) != (
        model.get("name"),
        model.get("version"),
    ):
        return None
    return served.scorer.tiers.b, served.scorer.tiers.c


def card(
    handoff: Mapping[str, Any],
    sla: SlaConfig | None,
    taxonomy: HandoffConfig | None,
    served: Served | None,
    now: datetime,
) -> dict[str, Any]:
    """Everything the lead card shows (:meth:`HandoffStore.lead_view`'s handoff)."""
    shown = handoff.get("shown") or {}
    zone = zone_of(sla, handoff.get("owner"))
    criteria = criteria_view(shown)
    latest = handoff.get("latest") or {}
    model = handoff.get("model") or {}
    tier = handoff.get("tier") or ""
    return {
        "lead_id": handoff["lead_id"],
        "owner": handoff.get("owner"),
        "status": handoff.get("status") or "waiting",
        "probability": percent(handoff.get("probability")),
        "tier": tier,
        "tier_meaning": tier_meaning(tier, shown.get("threshold"), _tier_cuts(served, handoff)),
        "is_mql": shown.get("is_mql"),
        "threshold": percent(shown["threshold"]) if shown.get("threshold") is not None else None,
        "reasons": reasons_view(shown),
        "criteria": criteria,
        "action": action_view(shown, criteria["items"]),
        "next_steps": next_steps_view(served, handoff.get("lead")),
        "sla": sla_status(handoff.get("due_at"), handoff.get("owner"), sla, now),
        "due_at": moment(handoff.get("due_at"), zone),
        "handed_off_at": moment(handoff.get("handed_off_at"), zone),
        "model": " ".join(str(p) for p in (model.get("name"), model.get("version")) if p),
        "criteria_version": handoff.get("criteria_version") or "",
        "rescored": (handoff.get("score_count") or 1) > 1,
        "latest": {
            "probability": percent(latest.get("probability")),
            "tier": latest.get("tier") or "",
            "at": moment(latest.get("scored_at"), zone),
            "count": handoff.get("score_count") or 1,
        },
        "decision": {
            "disposition": handoff.get("disposition"),
            "reason": taxonomy.label(handoff.get("disposition_reason")) if taxonomy else "",
            "rep": handoff.get("rep"),
            "at": moment(handoff.get("dispositioned_at"), zone),
        },
    }


def reason_options(taxonomy: HandoffConfig | None) -> list[dict[str, str]]:
    """The rejection reasons for the verdict form: id, label and description."""
    if taxonomy is None:
        return []
    return [
        {"id": rid, "label": r.label, "description": r.description}
        for rid, r in taxonomy.rejection_reasons.items()
    ]
