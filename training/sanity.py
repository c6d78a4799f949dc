"""Checks on a source before it trains, each naming its cause (never a misleading message
further down), and the reference age chosen from how fast deals close.

* an outcome dated before the lead was created;
* events dated after the observation end (the export was taken before they happened?);
* a positive rate that changes more than 2x between the oldest and the newest fifth of leads;
* an observation end that leaves the newest leads without a final label;
* the headline age: when deals close fast (a median of 14 days from first contact to won is
  real), a day-30 headline would leave out most converters, who are no longer open to score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.features.contract import CrmData
from leadscore.features.labels import TARGET_COLUMN, Target
from leadscore.training.data import TrainingDataError

RATE_DRIFT = 2.0
OPEN_AT_REFERENCE = 0.5  # at least this share of eventual converters still open at the headline


@dataclass
class Sanity:
    """What the checks found: notes to show, and the reference age to use."""

    notes: list[str] = field(default_factory=list)
    reference_age: float | None = None


def _moment(crm: CrmData, column: str) -> pd.Series:
    if column not in crm.outcomes.columns:
        return pd.Series(pd.NaT, index=crm.leads.index)
    by_lead = crm.outcomes.set_index("lead_id")[column]
    return crm.leads["lead_id"].map(by_lead)


def check_source(crm: CrmData, target: Target, horizon_days: float) -> list[str]:
    """Warnings about the source's dates and outcomes, each naming its cause and its count."""
    notes = []
    created = crm.leads["created_at"]
    for column in ("sql_at", "won_at", "lost_at"):
        before = (_moment(crm, column) < created).to_numpy()
        if before.any():
            example = crm.leads["lead_id"].to_numpy()[before][0]
            notes.append(f"{int(before.sum())} lead(s) have {column} before their created_at "
                         f"(e.g. {example}): they count as closed from the start")  # fmt: skip
    late = crm.events["timestamp"] > crm.observation_end
    if late.any():
        notes.append(f"{int(late.sum())} event(s) are dated after the observation end "
                     f"{crm.observation_end} (e.g. {crm.events.loc[late, 'event_id'].iloc[0]}): "
                     "check the export date (source.yaml observation_end)")  # fmt: skip
    reached = _moment(crm, TARGET_COLUMN[target])
    final = created + pd.Timedelta(days=horizon_days) <= crm.observation_end
    converted = (reached <= created + pd.Timedelta(days=horizon_days)) & final
    order = np.argsort(created.to_numpy(), kind="stable")
    fifth = max(1, len(order) // 5)
    oldest, newest = order[:fifth], order[-fifth:]
    rates = [converted.to_numpy()[i][final.to_numpy()[i]].mean() if final.to_numpy()[i].any()
             else np.nan for i in (oldest, newest)]  # fmt: skip
    if all(np.isfinite(rates)) and min(rates) > 0 and max(rates) / min(rates) > RATE_DRIFT:
        notes.append(f"the conversion rate moves from {rates[0]:.1%} (oldest fifth of leads) to "
                     f"{rates[1]:.1%} (newest fifth): more than {RATE_DRIFT:g}x; the newest "
                     "leads may not have had time to convert, or the market changed")  # fmt: skip
    unfinished = int((~final).sum())
    if unfinished and any("observation end taken as the latest" in n for n in crm.notes):
        notes.append(f"no observation_end given; the last timestamp in the source was used "
                     f"({crm.observation_end}), so the newest {unfinished:,} lead(s) have no "
                     f"final label yet (their {horizon_days:g}-day horizon ends after "
                     "it)")  # fmt: skip
    return notes


def reference_age(
    crm: CrmData, target: Target, horizon_days: float, ages: tuple[float, ...], wanted: float
) -> tuple[float, str | None]:
    """The headline age: `wanted`, unless fewer than half of the eventual converters are still
    open then; then the oldest of `ages` at which at least half are. Raises when even the
    youngest age leaves out most converters, with the numbers."""
    created = crm.leads["created_at"]
    elapsed = (_moment(crm, TARGET_COLUMN[target]) - created).dt.total_seconds() / 86_400
    days = elapsed[(elapsed >= 0) & (elapsed <= horizon_days)].to_numpy()
    if len(days) < 20:
        return wanted, None

    def open_at(age: float) -> float:
        return float((days > age).mean())

    if open_at(wanted) >= OPEN_AT_REFERENCE:
        return wanted, None
    fine = [a for a in sorted(ages) if open_at(a) >= OPEN_AT_REFERENCE]
    median = float(np.median(days))
    if not fine:
        raise TrainingDataError(
            f"deals close fast here: the median converter reaches {target} {median:.1f} days "
            f"after creation, and at day {min(ages):g} only {open_at(min(ages)):.0%} of them "
            "are still open to score; train on younger snapshots (--as-of-days 0 scores each "
            "lead when it is created)"
        )
    chosen = fine[-1]
    return chosen, (
        f"headline age {chosen:g} days instead of {wanted:g}: the median converter reaches "
        f"{target} {median:.1f} days after creation, so at day {wanted:g} only "
        f"{open_at(wanted):.0%} of converters are still open, at day {chosen:g} "
        f"{open_at(chosen):.0%} (--as-of-days overrides)"
    )
