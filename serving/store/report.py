"""The handoff report (`leadscore report handoff`): how much of the pipeline leaks between
marketing and sales, measured against published B2B benchmarks.

Everything is computed from two plain frames (the store's handoffs and outcomes), so the
numbers can be checked by hand: :func:`build_report` makes a :class:`HandoffReport`;
:func:`headline`, :func:`render_text` and :func:`render_html` present it to a person and
:meth:`HandoffReport.to_dict` to a program. The definitions of every number are in
:data:`DEFINITIONS`, printed under both renderings.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadscore.features.criteria.evidence import wilson_interval
from leadscore.features.errors import LeadscoreError
from leadscore.features.feedback import HandoffConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BusinessHours = Callable[[str | None, datetime, datetime], float]

HANDOFF_COLUMNS = (
    "handoff_id",
    "lead_id",
    "owner",
    "source",
    "lead_created_at",
    "handed_off_at",
    "action",
    "tier",
    "probability",
    "model_name",
    "model_version",
    "criteria_version",
    "criteria_verdict",
    "due_at",
    "first_touch_at",
    "disposition",
    "disposition_reason",
    "dispositioned_at",
    "rep",
)
OUTCOME_COLUMNS = ("lead_id", "sql_at", "won_at", "lost_at")
_HANDOFF_TIMES = (
    "lead_created_at",
    "handed_off_at",
    "due_at",
    "first_touch_at",
    "dispositioned_at",
)
_OUTCOME_TIMES = ("sql_at", "won_at", "lost_at")

# The benchmarks the report is read against (B2B funnel studies quoted by the project's
# sources): the share of MQLs sales accepts, the days an MQL waits before sales acts, the share
# of pipeline lost between MQL and SQL, the share of companies with one shared definition.
BENCHMARK_ACCEPTANCE = 0.44
BENCHMARK_FIRST_ACTION_DAYS = 14.0
BENCHMARK_LEAK = 0.23
BENCHMARK_SHARED_DEFINITION = 0.32

# Predicted-probability bands of the calibration table: the last one is closed ([0.6, 1]).
BANDS: tuple[tuple[float, float], ...] = (
    (0.0, 0.1),
    (0.1, 0.2),
    (0.2, 0.4),
    (0.4, 0.6),
    (0.6, 1.0),
)
# Time-to-first-touch histogram edges, in business hours (the last bin is open-ended).
TOUCH_EDGES: tuple[float, ...] = (0.0, 1.0, 4.0, 8.0, 16.0, 40.0, 80.0, 160.0)
DIMENSIONS = ("tier", "source", "owner", "criteria_verdict", "model_version")
DIMENSION_TITLES = {
    "tier": "Tier",
    "source": "Lead source",
    "owner": "Owner (assigned rep)",
    "criteria_verdict": "Criteria verdict",
    "model_version": "Model version",
}
_VERDICT_ORDER = ("sql_ready", "needs_qualification", "not_sql")
MAX_LISTED = 20
NONE_KEY = "(none)"

DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "Handoff",
        "a lead routed to sales (or to qualification) on or after the report's start "
        "date; a lead handed over twice counts twice.",
    ),
    (
        "Acceptance rate",
        "accepted handoffs / handoffs the rep has answered (accepted or "
        "rejected), with a Wilson 95% interval. Industry benchmark: 44% of MQLs are accepted.",
    ),
    (
        "Time to first action",
        "the median time from handoff to the rep's first touch, over "
        "touched handoffs, in calendar days and in business hours (the owner's working calendar). "
        "Industry benchmark: 14 days. System delay, reported apart, is the median time from the "
        "lead's creation to its handoff, in calendar hours.",
    ),
    (
        "Leaked",
        "handoffs whose first-touch deadline has passed without a touch by then, plus "
        "handoffs not answered within the disposition window after handoff once that window has "
        "ended, each handoff counted once, as a share of handoffs with at least one ended window. "
        "Handoffs still inside both windows are pending and not counted. Industry benchmark: 23% "
        "of pipeline leaks between MQL and SQL.",
    ),
    (
        "Breached",
        "first touch after the deadline, or no touch and the deadline has passed. A "
        "handoff without a deadline (no SLA target) is never breached.",
    ),
    ("Waiting", "handoffs the rep has not answered yet."),
    (
        "Shared definition",
        "the share of handoffs scored with the current SQL-criteria version. "
        "Industry benchmark: only 32% of companies have one shared definition.",
    ),
    ("Converted", "the lead was won (the customer said yes), at any time so far."),
    (
        "Predicted vs actual",
        "handoffs grouped by the model's calibrated probability of a "
        "closed-won deal within its horizon; 'actual' is the share converted so far, over all "
        "handoffs, so recent handoffs (whose outcome is not known yet) pull it down.",
    ),
    ("Sales said no, customer said yes", "rejected handoffs whose lead was later won."),
)


# --------------------------------------------------------------------------------------------
# The report's values


@dataclass(frozen=True)
class Rate:
    """`count` of `of`, their ratio and its Wilson 95% interval (None when `of` is 0)."""

    count: int
    of: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Breakdown:
    """Acceptance and conversion of the handoffs sharing one value of a dimension."""

    key: str
    n: int
    accepted: int
    rejected: int
    acceptance: Rate
    won: int
    conversion: Rate


@dataclass(frozen=True)
class ReasonCount:
    """How often reps of one lead source rejected for one reason."""

    source: str
    reason: str
    label: str
    count: int
    share_of_source: float


@dataclass(frozen=True)
class Band:
    """Predicted against actual conversion in one probability band."""

    low: float
    high: float
    n: int
    mean_predicted: float | None
    actual: Rate


@dataclass(frozen=True)
class HistogramBin:
    """Touched handoffs whose first touch came within [low, high) business hours."""

    low: float
    high: float | None
    count: int


@dataclass(frozen=True)
class LeadRow:
    """One handoff listed by the report (a rejected lead later won, an accepted lead not)."""

    handoff_id: int
    lead_id: str
    owner: str | None
    source: str | None
    tier: str | None
    probability: float | None
    reason: str | None
    reason_label: str | None
    handed_off_at: datetime | None
    won_at: datetime | None
    lost_at: datetime | None


@dataclass(frozen=True)
class HandoffReport:
    """Every number of the handoff report (see :data:`DEFINITIONS`)."""

    now: datetime
    since: datetime
    current_criteria_version: str
    dispositioned_within_days: float
    handoffs: int
    accepted: int
    rejected: int
    waiting: int
    acceptance: Rate
    touched: int
    first_touch_days_median: float | None
    first_touch_business_hours_median: float | None
    system_delay_hours_median: float | None
    sla_business_hours_median: float | None
    first_touch_histogram: tuple[HistogramBin, ...]
    leak: Rate
    leaked_untouched: int
    leaked_unanswered: int
    pending: int
    with_sla: int
    breached: int
    shared_definition: Rate
    conversion: Rate
    by_dimension: dict[str, tuple[Breakdown, ...]]
    rejection_reasons: tuple[ReasonCount, ...]
    calibration: tuple[Band, ...]
    said_no_customer_yes: int
    said_no_customer_yes_leads: tuple[LeadRow, ...]
    accepted_not_converted: Rate
    accepted_not_converted_leads: tuple[LeadRow, ...]

    @property
    def dispositioned(self) -> int:
        """Handoffs the rep has answered."""
        return self.accepted + self.rejected

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe values (ISO datetimes, None for missing numbers), with the
        benchmarks and definitions."""
        out = _json_safe(asdict(self))
        out["dispositioned"] = self.dispositioned
        out["benchmarks"] = {
            "acceptance_rate": BENCHMARK_ACCEPTANCE,
            "first_action_days": BENCHMARK_FIRST_ACTION_DAYS,
            "leak_rate": BENCHMARK_LEAK,
            "shared_definition": BENCHMARK_SHARED_DEFINITION,
        }
        out["definitions"] = dict(DEFINITIONS)
        return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    return value


# --------------------------------------------------------------------------------------------
# Building it


def build_report(
    handoffs: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    now: datetime,
    since: datetime,
    current_criteria_version: str,
    business_hours: BusinessHours,
    dispositioned_within_days: float,
    taxonomy: HandoffConfig,
) -> HandoffReport:
    """The handoff report over handoffs with ``handed_off_at >= since``, as of `now`.

    `business_hours(owner, start, end)` counts the owner's working hours between two instants;
    a handoff not answered within `dispositioned_within_days` of its handoff has leaked.
    """
    now_ts, since_ts = _aware(now, "now"), _aware(since, "since")
    if not dispositioned_within_days > 0:
        raise LeadscoreError(
            f"dispositioned_within_days must be positive, got {dispositioned_within_days!r}"
        )
    h = _frame(handoffs, HANDOFF_COLUMNS, _HANDOFF_TIMES, "handoffs")
    h = h[h["handed_off_at"] >= since_ts].reset_index(drop=True)
    h = h.join(_outcomes_by_lead(outcomes), on="lead_id")
    h["won"] = h["won_at"].notna()

    accepted = h["disposition"].eq("accepted")
    rejected = h["disposition"].eq("rejected")
    touched = h["first_touch_at"].notna()
    touch_delay = h.loc[touched, "first_touch_at"] - h.loc[touched, "handed_off_at"]
    touch_hours = _spans(business_hours, h[touched], "first_touch_at")
    has_due = h["due_at"].notna()
    sla_hours = _spans(business_hours, h[has_due], "due_at")
    created = h["lead_created_at"].notna()
    system_delay = h.loc[created, "handed_off_at"] - h.loc[created, "lead_created_at"]

    flags = _sla_flags(h, now_ts, dispositioned_within_days)
    current = h["criteria_version"].astype("string").eq(current_criteria_version).fillna(False)
    no_yes = h[rejected & h["won"]]
    not_converted = h[accepted & ~h["won"]]
    return HandoffReport(
        now=now_ts.to_pydatetime(),
        since=since_ts.to_pydatetime(),
        current_criteria_version=current_criteria_version,
        dispositioned_within_days=float(dispositioned_within_days),
        handoffs=len(h),
        accepted=int(accepted.sum()),
        rejected=int(rejected.sum()),
        waiting=int((~(accepted | rejected)).sum()),
        acceptance=_rate(int(accepted.sum()), int((accepted | rejected).sum())),
        touched=int(touched.sum()),
        first_touch_days_median=_median(touch_delay.dt.total_seconds() / 86400.0),
        first_touch_business_hours_median=_median(pd.Series(touch_hours, dtype=float)),
        system_delay_hours_median=_median(system_delay.dt.total_seconds() / 3600.0),
        sla_business_hours_median=_median(pd.Series(sla_hours, dtype=float)),
        first_touch_histogram=_histogram(touch_hours),
        leak=_rate(int(flags["leaked"].sum()), int(flags["ended"].sum())),
        leaked_untouched=int(flags["untouched"].sum()),
        leaked_unanswered=int(flags["unanswered"].sum()),
        pending=int((~flags["ended"]).sum()),
        with_sla=int(has_due.sum()),
        breached=int(flags["breached"].sum()),
        shared_definition=_rate(int(current.sum()), len(h)),
        conversion=_rate(int(h["won"].sum()), len(h)),
        by_dimension={d: _breakdown(h, d) for d in DIMENSIONS},
        rejection_reasons=_reasons(h[rejected], taxonomy),
        calibration=_calibration(h),
        said_no_customer_yes=len(no_yes),
        said_no_customer_yes_leads=_rows(no_yes.sort_values("won_at", kind="stable"), taxonomy),
        accepted_not_converted=_rate(len(not_converted), int(accepted.sum())),
        accepted_not_converted_leads=_rows(
            not_converted.sort_values("handed_off_at", kind="stable"), taxonomy
        ),
    )


def _spans(business_hours: BusinessHours, h: pd.DataFrame, end: str) -> list[float]:
    """Business hours from each handoff to its `end` column, on the owner's calendar."""
    return [
        float(business_hours(_text(o), s.to_pydatetime(), e.to_pydatetime()))
        for o, s, e in zip(h["owner"], h["handed_off_at"], h[end], strict=True)
    ]


def _aware(value: datetime, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise LeadscoreError(f"handoff report: {name} must be timezone-aware, got {value!r}")
    return stamp.tz_convert("UTC")


def _frame(
    frame: pd.DataFrame, columns: Sequence[str], times: Sequence[str], what: str
) -> pd.DataFrame:
    """`frame` with its datetime columns as UTC (an empty frame may come without columns)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame):
        raise LeadscoreError(f"handoff report: the {what} frame lacks the columns {missing}")
    out = frame.reindex(columns=list(columns)) if missing else frame.copy()
    for col in times:
        try:
            out[col] = pd.to_datetime(out[col], utc=True)
        except (TypeError, ValueError) as exc:
            raise LeadscoreError(
                f"handoff report: {what}.{col} must hold datetimes ({exc})"
            ) from exc
    return out


def _outcomes_by_lead(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per lead (the earliest date of each kind, should a lead come twice)."""
    o = _frame(outcomes, OUTCOME_COLUMNS, _OUTCOME_TIMES, "outcomes")
    return o.groupby("lead_id")[list(_OUTCOME_TIMES)].min()


def _sla_flags(h: pd.DataFrame, now: pd.Timestamp, within_days: float) -> pd.DataFrame:
    """Per handoff: which windows have ended, which were missed, breached, leaked."""
    due, touch = h["due_at"], h["first_touch_at"]
    sla_ended = due.notna() & (due <= now)
    untouched = sla_ended & (touch.isna() | (touch > due))
    answer_by = h["handed_off_at"] + pd.Timedelta(days=within_days)
    answer_ended = answer_by <= now
    answered_at = h["dispositioned_at"].where(h["disposition"].notna())
    unanswered = answer_ended & (answered_at.isna() | (answered_at > answer_by))
    breached = due.notna() & ((touch.notna() & (touch > due)) | (touch.isna() & (due <= now)))
    return pd.DataFrame(
        {
            "ended": sla_ended | answer_ended,
            "untouched": untouched,
            "unanswered": unanswered,
            "leaked": untouched | unanswered,
            "breached": breached,
        }
    )


def _rate(count: int, of: int) -> Rate:
    if of <= 0:
        return Rate(count, of, None, None, None)
    low, high = wilson_interval(count, of)
    return Rate(count, of, count / of, low, high)


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.median()) if len(values) else None


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _histogram(hours: Sequence[float]) -> tuple[HistogramBin, ...]:
    if not hours:
        return ()
    # a touch logged before the handoff (clock skew) counts as immediate
    values = np.clip(np.asarray(hours, dtype=float), 0.0, None)
    highs: list[float | None] = [*TOUCH_EDGES[1:], None]
    return tuple(
        HistogramBin(low, high, int(((values >= low) & (values < (high or math.inf))).sum()))
        for low, high in zip(TOUCH_EDGES, highs, strict=True)
    )


def _keys(h: pd.DataFrame, dimension: str) -> pd.Series:
    if dimension == "model_version":
        name = h["model_name"].astype("string").fillna(NONE_KEY)
        version = h["model_version"].astype("string")
        return (name + " " + version).fillna(name)
    return h[dimension].astype("string").fillna(NONE_KEY)


def _breakdown(h: pd.DataFrame, dimension: str) -> tuple[Breakdown, ...]:
    if h.empty:
        return ()
    keys = _keys(h, dimension)
    rows = []
    for key, group in h.groupby(keys, sort=False):
        accepted = int(group["disposition"].eq("accepted").sum())
        rejected = int(group["disposition"].eq("rejected").sum())
        won = int(group["won"].sum())
        rows.append(
            Breakdown(
                str(key),
                len(group),
                accepted,
                rejected,
                _rate(accepted, accepted + rejected),
                won,
                _rate(won, len(group)),
            )
        )
    if dimension == "tier":
        rows.sort(key=lambda r: r.key)
    elif dimension == "criteria_verdict":
        order = {v: i for i, v in enumerate(_VERDICT_ORDER)}
        rows.sort(key=lambda r: (order.get(r.key, len(order)), r.key))
    else:
        rows.sort(key=lambda r: (-r.n, r.key))
    return tuple(rows)


def _reasons(rejected: pd.DataFrame, taxonomy: HandoffConfig) -> tuple[ReasonCount, ...]:
    if rejected.empty:
        return ()
    sources = rejected["source"].astype("string").fillna(NONE_KEY)
    reasons = rejected["disposition_reason"].astype("string").fillna(NONE_KEY)
    counts = {
        str(source): {str(reason): int(n) for reason, n in row.items()}
        for source, row in pd.crosstab(sources, reasons).to_dict(orient="index").items()
    }
    order = {r: i for i, r in enumerate(taxonomy.reason_ids)}
    rows = []
    for source in sorted(counts, key=lambda s: (-sum(counts[s].values()), s)):
        total = sum(counts[source].values())
        for reason in sorted(counts[source], key=lambda r: (order.get(r, len(order)), r)):
            n = counts[source][reason]
            if n:
                label = taxonomy.label(reason) if reason != NONE_KEY else "(no reason)"
                rows.append(ReasonCount(source, reason, label, n, n / total))
    return tuple(rows)


def _calibration(h: pd.DataFrame) -> tuple[Band, ...]:
    p = pd.to_numeric(h["probability"], errors="coerce")
    bands = []
    for i, (low, high) in enumerate(BANDS):
        last = i == len(BANDS) - 1
        inside = (p >= low) & ((p <= high) if last else (p < high))
        n = int(inside.sum())
        won = int(h.loc[inside, "won"].sum())
        bands.append(Band(low, high, n, float(p[inside].mean()) if n else None, _rate(won, n)))
    return tuple(bands)


def _rows(frame: pd.DataFrame, taxonomy: HandoffConfig) -> tuple[LeadRow, ...]:
    return tuple(
        LeadRow(
            handoff_id=int(r["handoff_id"]),
            lead_id=str(r["lead_id"]),
            owner=_text(r["owner"]),
            source=_text(r["source"]),
            tier=_text(r["tier"]),
            probability=_number(r["probability"]),
            reason=_text(r["disposition_reason"]),
            reason_label=(
                taxonomy.label(r["disposition_reason"]) if _text(r["disposition_reason"]) else None
            ),
            handed_off_at=_time(r["handed_off_at"]),
            won_at=_time(r["won_at"]),
            lost_at=_time(r["lost_at"]),
        )
        for _, r in frame.head(MAX_LISTED).iterrows()
    )


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _time(value: Any) -> datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


# --------------------------------------------------------------------------------------------
# Presenting it


def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("n/a" when unknown)."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _interval(rate: Rate) -> str:
    if rate.low is None or rate.high is None:
        return ""
    return f"95% CI {pct(rate.low)}–{pct(rate.high)}"


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class _Card:
    """One headline number, the benchmark it is read against, and what it means."""

    title: str
    value: str
    detail: str
    benchmark: str
    verdict: str  # "better" | "worse" | "similar" | "" (no comparison)
    caption: str


def _compare(
    value: float | None, benchmark: float, higher_is_better: bool, rate: Rate | None = None
) -> str:
    """ "better" or "worse" than the benchmark; "similar" when the benchmark lies inside the
    value's 95% interval (a small sample cannot tell them apart)."""
    if value is None:
        return ""
    if value == benchmark or (
        rate is not None
        and rate.low is not None
        and rate.high is not None
        and rate.low <= benchmark <= rate.high
    ):
        return "similar"
    return "better" if (value > benchmark) == higher_is_better else "worse"


def _cards(r: HandoffReport) -> list[_Card]:
    days = r.first_touch_days_median
    return [
        _Card(
            "Acceptance rate",
            pct(r.acceptance.rate),
            f"{r.accepted} of {r.dispositioned} answered handoffs accepted"
            + (f"; {_interval(r.acceptance)}" if r.acceptance.rate is not None else ""),
            f"{pct(BENCHMARK_ACCEPTANCE, 0)} industry",
            _compare(r.acceptance.rate, BENCHMARK_ACCEPTANCE, True, r.acceptance),
            "Of the leads sales has answered, the share they took on.",
        ),
        _Card(
            "Time to first action",
            _num(days, "days"),
            f"median over {r.touched} touched handoffs; "
            f"{_num(r.first_touch_business_hours_median, 'business hours')}",
            f"{BENCHMARK_FIRST_ACTION_DAYS:.0f} days industry",
            _compare(days, BENCHMARK_FIRST_ACTION_DAYS, False),
            "How long a handed-over lead waits before a rep first reaches out.",
        ),
        _Card(
            "Leaked",
            pct(r.leak.rate),
            f"{r.leak.count} of {r.leak.of} handoffs with an ended window; {r.pending} pending",
            f"{pct(BENCHMARK_LEAK, 0)} industry",
            _compare(r.leak.rate, BENCHMARK_LEAK, False, r.leak),
            "Leads not touched before their deadline or not answered in time.",
        ),
        _Card(
            "Shared definition",
            pct(r.shared_definition.rate),
            f"{r.shared_definition.count} of {r.handoffs} handoffs scored with criteria "
            f"{r.current_criteria_version}",
            f"{pct(BENCHMARK_SHARED_DEFINITION, 0)} of companies have one",
            "",
            "Handoffs judged by today's written definition of a sales-qualified lead.",
        ),
        _Card(
            "Converted",
            pct(r.conversion.rate),
            f"{r.conversion.count} of {r.handoffs} handoffs won so far",
            "",
            "",
            "Handed-over leads that became customers.",
        ),
    ]


def headline(report: HandoffReport) -> list[str]:
    """The headline lines, each with its benchmark, e.g.
    ``Acceptance rate       38.5%  (25 of 65 answered handoffs accepted; ...)  vs 44% industry``.
    """
    lines = []
    for card in _cards(report):
        vs = f"  vs {card.benchmark}" if card.benchmark else ""
        lines.append(f"{card.title:<22}{card.value:>10}  ({card.detail}){vs}")
    return lines


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """A plain-text table: the first `left` columns (text) aligned left, numbers right."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in rows]
    return ["  " + line.rstrip() for line in out]


_BREAKDOWN_HEADER = ("", "n", "accepted", "rejected", "acceptance", "won", "conversion")


def _breakdown_rows(rows: Sequence[Breakdown]) -> list[list[str]]:
    return [
        [
            b.key,
            str(b.n),
            str(b.accepted),
            str(b.rejected),
            pct(b.acceptance.rate),
            str(b.won),
            pct(b.conversion.rate),
        ]
        for b in rows
    ]


def _band_name(band: Band) -> str:
    close = "]" if band.high == BANDS[-1][1] else ")"
    return f"[{band.low:.1f}, {band.high:.1f}{close}"


def _band_rows(bands: Sequence[Band]) -> list[list[str]]:
    return [
        [
            _band_name(b),
            str(b.n),
            pct(b.mean_predicted),
            pct(b.actual.rate),
            _interval(b.actual).removeprefix("95% CI ") or "n/a",
        ]
        for b in bands
    ]


def _lead_rows(leads: Sequence[LeadRow], won: bool) -> list[list[str]]:
    return [
        [
            lead.lead_id,
            (lead.reason_label or "") if won else _lost(lead),
            lead.owner or NONE_KEY,
            lead.tier or "",
            pct(lead.probability),
        ]
        for lead in leads
    ]


def _lost(lead: LeadRow) -> str:
    return lead.lost_at.date().isoformat() if lead.lost_at else "open"


def render_text(report: HandoffReport) -> str:
    """The report as plain text: headline, key tables and the definitions."""
    r = report
    out = [f"Handoff report: handoffs since {_day(r.since)}, as of {_day(r.now)}", ""]
    if r.handoffs == 0:
        out += [f"No handoffs since {_day(r.since)}.", ""]
    else:
        out += [*headline(r), ""]
        out.append(
            f"System delay (lead created to handoff): "
            f"{_num(r.system_delay_hours_median, 'hours')} median. "
            f"Breached: {r.breached} of {r.with_sla} handoffs with a deadline. "
            f"Waiting for an answer: {r.waiting}."
        )
        for dim in ("tier", "source"):
            out += ["", f"By {DIMENSION_TITLES[dim].lower()}"]
            out += _table((dim, *_BREAKDOWN_HEADER[1:]), _breakdown_rows(r.by_dimension[dim]))
        if r.rejection_reasons:
            out += ["", "Rejection reasons by lead source"]
            out += _table(
                ("source", "reason", "count", "share"),
                [
                    [x.source, x.label, str(x.count), pct(x.share_of_source)]
                    for x in r.rejection_reasons
                ],
                left=2,
            )
        out += ["", "Predicted vs actual conversion"]
        out += _table(
            ("probability", "n", "predicted", "actual", "95% CI"), _band_rows(r.calibration)
        )
        out += ["", f"Sales said no, customer said yes: {r.said_no_customer_yes}"]
        if r.said_no_customer_yes_leads:
            out += _table(
                ("lead", "reason", "owner", "tier", "probability"),
                _lead_rows(r.said_no_customer_yes_leads, won=True),
                left=4,
            )
        anc = r.accepted_not_converted
        out += ["", f"Accepted, not converted: {anc.count} of {anc.of} accepted ({pct(anc.rate)})"]
        if r.accepted_not_converted_leads:
            out += _table(
                ("lead", "lost", "owner", "tier", "probability"),
                _lead_rows(r.accepted_not_converted_leads, won=False),
                left=4,
            )
        out.append("")
    out.append("Definitions")
    for term, text in DEFINITIONS:
        out += textwrap.wrap(f"{term}: {text}", 96, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# HTML


def render_html(report: HandoffReport) -> str:
    """The report as one self-contained HTML page (inline CSS, plots as inline PNG, no
    scripts, no external references), for a sales leader."""
    import jinja2

    template = files("leadscore.serving.store").joinpath("report.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["pct"] = pct
    r = report
    plots: dict[str, str] = {}
    if r.handoffs:
        plots = {
            "tiers": png_uri(_tier_plot(r.by_dimension["tier"])),
            "calibration": png_uri(_calibration_plot(r.calibration)),
        }
        if r.first_touch_histogram:
            touch = _touch_plot(r.first_touch_histogram, r.sla_business_hours_median)
            plots["touch"] = png_uri(touch)
    return env.from_string(template).render(
        r=r,
        title=f"Handoff report since {r.since.date().isoformat()}",
        since=_day(r.since),
        now=_day(r.now),
        cards=_cards(r),
        extra=[
            (
                "System delay",
                f"{_num(r.system_delay_hours_median, 'hours')} median from the "
                "lead's creation to its handoff",
            ),
            ("Breached", f"{r.breached} of {r.with_sla} handoffs with a deadline"),
            ("Waiting", f"{r.waiting} handoffs not answered yet"),
        ],
        breakdowns=[
            (
                DIMENSION_TITLES[d],
                (d.replace("_", " "), *_BREAKDOWN_HEADER[1:]),
                _breakdown_rows(r.by_dimension[d]),
            )
            for d in DIMENSIONS
        ],
        reasons=[
            [x.source, x.label, str(x.count), pct(x.share_of_source)] for x in r.rejection_reasons
        ],
        bands=_band_rows(r.calibration),
        no_yes=_lead_rows(r.said_no_customer_yes_leads, won=True),
        not_converted=_lead_rows(r.accepted_not_converted_leads, won=False),
        plots=plots,
        definitions=DEFINITIONS,
        max_listed=MAX_LISTED,
    )


def figure(width: float = 6.0, height: float = 3.2) -> tuple[Figure, Any]:
    """A matplotlib figure and its axes for a report (inline plots)."""
    # Figure directly, not pyplot: no global backend state, safe in a server thread
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def png_uri(fig: Figure) -> str:
    """The figure as a ``data:`` URI (no metadata: nothing in the page points elsewhere)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _tier_plot(rows: Sequence[Breakdown]) -> Figure:
    fig, ax = figure()
    keys = [f"{b.key}\nn={b.accepted + b.rejected}" for b in rows]
    rates = [b.acceptance.rate or 0.0 for b in rows]
    below = [max(0.0, (b.acceptance.rate or 0) - (b.acceptance.low or 0)) for b in rows]
    above = [max(0.0, (b.acceptance.high or 0) - (b.acceptance.rate or 0)) for b in rows]
    ax.bar(keys, rates, color="#3b6ea5", yerr=[below, above], capsize=4)
    ax.axhline(BENCHMARK_ACCEPTANCE, color="#c0392b", linestyle="--", label="industry 44%")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accepted / answered")
    ax.set_xlabel("tier (n = answered handoffs)")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _calibration_plot(bands: Sequence[Band]) -> Figure:
    fig, ax = figure(4.5, 3.6)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="perfect calibration")
    shown = [b for b in bands if b.n and b.mean_predicted is not None]
    if shown:
        x = [b.mean_predicted or 0.0 for b in shown]
        y = [b.actual.rate or 0.0 for b in shown]
        err = [
            [max(0.0, yi - (b.actual.low or 0)) for yi, b in zip(y, shown, strict=True)],
            [max(0.0, (b.actual.high or 0) - yi) for yi, b in zip(y, shown, strict=True)],
        ]
        ax.errorbar(x, y, yerr=err, fmt="o", color="#3b6ea5", capsize=3, label="handoffs")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted probability (band mean)")
    ax.set_ylabel("converted so far")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _touch_plot(bins: Sequence[HistogramBin], sla_hours: float | None) -> Figure:
    fig, ax = figure()
    labels = [f"{b.low:g}–{b.high:g}" if b.high is not None else f"{b.low:g}+" for b in bins]
    ax.bar(range(len(bins)), [b.count for b in bins], color="#3b6ea5")
    ax.set_xticks(range(len(bins)), labels, fontsize=8)
    ax.set_xlabel("business hours from handoff to first touch")
    ax.set_ylabel("handoffs")
    if sla_hours is not None:
        # the deadline at its place inside its bin (bars are centred on integers)
        for i, b in enumerate(bins):
            if b.low <= sla_hours and (b.high is None or sla_hours < b.high):
                inside = 0.5 if b.high is None else (sla_hours - b.low) / (b.high - b.low)
                ax.axvline(
                    i - 0.5 + inside,
                    color="#c0392b",
                    linestyle="--",
                    label=f"deadline ({sla_hours:.3g} business hours, median)",
                )
                ax.legend(loc="upper right", fontsize=8)
                break
    return fig
