"""SQL criteria, the evidence: how leads that met or missed each criterion converted, and
which attribute values converted leads over-represent.

* :func:`evaluate_frame` checks every row of a frame with the one definition of each operator
  (:func:`~leadscore.features.criteria.check.criterion_status`);
* :func:`report` shows, per criterion and for the verdict, how leads that passed, failed or
  were unknown actually converted (counts, rate, Wilson interval);
* :func:`suggest` asks, for every value of every fit attribute (industry, region, bands,
  roles, lead source, custom fields), whether it is over-represented among converted leads
  compared with all leads, over all history and over the window of the most recent N
  customers: support, lift, conversion rate with a Wilson interval and a one-sided
  hypergeometric p-value (Fisher's exact test), corrected with Benjamini-Hochberg over every
  test of both windows so that noise is not proposed. The draft criteria file is written by
  :mod:`leadscore.features.criteria.draft`;
* :func:`feedback_report` compares the criteria with the reps' verdicts on the leads handed
  over (a feedback file): the statuses of each group's criteria on the leads rejected for that
  group's reason (``no_budget`` against the budget criteria), and acceptance by status.

Labels come from :func:`leadscore.features.labels.label_snapshots`; the default target and
horizon from the `label:` section of `training.yaml` (:func:`label_defaults`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from leadscore.features.config import FeatureConfig
from leadscore.features.configdir import config_file
from leadscore.features.contract import CrmData, isin
from leadscore.features.criteria.check import _normalise, criterion_status
from leadscore.features.criteria.rules import (
    ENTITIES,
    STATUSES,
    VERDICTS,
    Criteria,
    CriterionGroup,
    FieldInfo,
    known_fields,
)
from leadscore.features.feedback import HandoffConfig, reasons_by_group
from leadscore.features.labels import LabelError, Target, label_snapshots
from leadscore.features.schema import schemas
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.spec import FeatureSpec
from leadscore.features.yamlfile import load_yaml

CONFIDENCE = 0.95
# Contact attributes speak to authority; every other candidate attribute is fit.
_AUTHORITY = frozenset({"contact.role_function", "contact.seniority", "contact.buyer_role"})
MAX_LEVELS = 30  # attributes with more distinct values are not candidates (names, ids)


class _Label(BaseModel):
    model_config = ConfigDict(extra="ignore")

    target: Literal["won", "sql"] = "won"
    horizon_days: float = Field(90, gt=0)


class _LabelSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: _Label = _Label()


def label_defaults(path: Path | str | None = None) -> tuple[Target, float]:
    """(target, horizon_days) from the `label:` section of `training.yaml` (default: in the
    config directory; the built-in defaults when there is no such file)."""
    file = Path(path) if path is not None else config_file("training.yaml")
    if not file.is_file():
        return "won", 90.0
    label = load_yaml(file, _LabelSection, "training config").label
    return label.target, float(label.horizon_days)


def wilson_interval(
    converted: int, leads: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval of a conversion rate (NaN, NaN without leads)."""
    if leads <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(converted), int(leads)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def labelled_rows(
    crm: CrmData,
    *,
    target: Target,
    horizon_days: float,
    as_of_days: float | None = None,
    spec: FeatureSpec | None = None,
) -> pd.DataFrame:
    """The scoring cases of a source with their label, as a criteria frame.

    With `as_of_days`, each lead's snapshot features at created_at + N days (needs `spec`);
    without, only the canonical lead/account/contact columns at creation. Columns: those of
    :func:`~leadscore.features.criteria.criteria_frame`, `created_at`, `label` (bool); leads already
    converted at as_of or without a final label are left out.
    """
    leads = crm.leads
    if as_of_days is not None:
        if spec is None:
            raise ValueError("as_of_days needs the feature spec")
        rows = snapshot(crm, spec, as_of_after_creation(leads, as_of_days))
    else:
        rows = pd.DataFrame(
            {"lead_id": leads["lead_id"].astype("string"), "as_of": leads["created_at"]}
        )
    labels = label_snapshots(
        rows,
        crm.outcomes,
        leads.set_index("lead_id")["created_at"],
        target=target,
        horizon_days=horizon_days,
        observation_end=crm.observation_end,
        has_outcome_dates=crm.has_outcome_dates,
    )
    keep = labels["excluded"].isna().to_numpy()
    frame = criteria_frame(crm, rows[keep].reset_index(drop=True))
    frame["created_at"] = frame["lead.created_at"]
    frame["label"] = labels.loc[keep, "label"].astype(bool).to_numpy()
    frame.attrs["excluded"] = int((~keep).sum())
    return frame


# ---------------------------------------------------------------------------------------------
# report


def report(criteria: Criteria, rows: pd.DataFrame) -> pd.DataFrame:
    """How leads converted by criterion status and by verdict.

    `rows` is a labelled criteria frame (:func:`labelled_rows`). One row per (item, status):
    `item` (a criterion id or ``verdict``), `required`, `status`, `leads`, `converted`,
    `rate`, `ci_low`, `ci_high`, `lift` (rate over the overall rate). Every status is listed,
    with zero counts where no lead had it.
    """
    evaluated = evaluate_frame(criteria, rows)
    label = rows["label"].to_numpy(dtype=bool)
    overall = label.mean() if len(label) else math.nan
    records: list[dict[str, Any]] = []
    items: list[tuple[str, bool | None, tuple[str, ...]]] = [
        (bc.id, bc.required, STATUSES) for bc in criteria
    ]
    items.append(("verdict", None, VERDICTS))
    for item, required, statuses in items:
        column = evaluated[item].to_numpy()
        for status in statuses:
            mask = column == status
            n, k = int(mask.sum()), int(label[mask].sum())
            lo, hi = wilson_interval(k, n)
            rate = k / n if n else math.nan
            records.append(
                {
                    "item": item,
                    "required": required,
                    "status": status,
                    "leads": n,
                    "converted": k,
                    "rate": rate,
                    "ci_low": lo,
                    "ci_high": hi,
                    "lift": rate / overall if n and overall else math.nan,
                }
            )
    return pd.DataFrame(records)


def baseline_metrics(criteria: Criteria, rows: pd.DataFrame) -> dict[str, float]:
    """The verdict as a classifier (``sql_ready`` = positive): precision, recall, share flagged."""
    ready = evaluate_frame(criteria, rows)["verdict"].to_numpy() == "sql_ready"
    label = rows["label"].to_numpy(dtype=bool)
    tp = int((ready & label).sum())
    return {
        "precision": tp / int(ready.sum()) if ready.any() else math.nan,
        "recall": tp / int(label.sum()) if label.any() else math.nan,
        "flagged": float(ready.mean()) if len(ready) else math.nan,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"


def criteria_frame(crm: CrmData, rows: pd.DataFrame) -> pd.DataFrame:
    """Snapshot rows (with `lead_id`) joined with their lead, account and contact columns as
    ``lead.x``, ``account.x``, ``contact.x``: the frame :func:`evaluate_frame` reads."""
    ids = rows["lead_id"].astype("string").to_numpy()
    leads = crm.leads.assign(lead_id=crm.leads["lead_id"].astype("string"))
    lead_part = leads.set_index("lead_id", drop=False).reindex(ids)
    accounts = crm.accounts.set_index("account_id", drop=False)
    contacts = crm.contacts.set_index("contact_id", drop=False)
    parts = [
        rows.reset_index(drop=True),
        lead_part.add_prefix("lead.").reset_index(drop=True),
        accounts.reindex(lead_part["account_id"].to_numpy())
        .add_prefix("account.")
        .reset_index(drop=True),
        contacts.reindex(lead_part["contact_id"].to_numpy())
        .add_prefix("contact.")
        .reset_index(drop=True),
    ]
    out = pd.concat(parts, axis=1)
    out.index = rows.index
    return out


def evaluate_frame(criteria: Criteria, rows: pd.DataFrame) -> pd.DataFrame:
    """Statuses of every criterion for every row, and the verdict (index aligned to `rows`).

    Columns: `lead_id` (when `rows` has it), one column per criterion id holding
    ``pass``/``fail``/``unknown``, and `verdict`. A field the frame lacks is missing for every
    row. Each distinct value is checked once with :func:`criterion_status`.
    """
    out: dict[str, Any] = {}
    if "lead_id" in rows.columns:
        out["lead_id"] = rows["lead_id"].to_numpy()
    n = len(rows)
    required: list[np.ndarray] = []
    for bc in criteria:
        name = bc.criterion.field
        if name in rows.columns:
            values = rows[name].astype(object).to_numpy()
        else:
            values = np.full(n, None, dtype=object)
        cache: dict[tuple[type, Any], str] = {}
        statuses = np.empty(n, dtype=object)
        for i, value in enumerate(values):
            value = _normalise(value)
            try:
                key = (type(value), value)
                hit = cache.get(key)
                if hit is None:
                    hit = cache[key] = criterion_status(bc, value)[0]
            except TypeError:  # unhashable: check it directly
                hit = criterion_status(bc, value)[0]
            statuses[i] = hit
        out[bc.id] = statuses
        if bc.required:
            required.append(statuses)
    if required:
        stacked = np.vstack(required)
        any_fail = (stacked == "fail").any(axis=0)
        all_pass = (stacked == "pass").all(axis=0)
        verdict = np.where(
            any_fail, "not_sql", np.where(all_pass, "sql_ready", "needs_qualification")
        )
    else:
        verdict = np.full(n, "sql_ready", dtype=object)
    out["verdict"] = verdict.astype(object)
    return pd.DataFrame(out, index=rows.index)


def sql_ready(criteria: Criteria, rows: pd.DataFrame) -> np.ndarray:
    """The verdict as a baseline prediction: True where a row is ``sql_ready``."""
    verdicts: np.ndarray = evaluate_frame(criteria, rows)["verdict"].to_numpy() == "sql_ready"
    return verdicts


# ---------------------------------------------------------------------------------------------
# suggest


@dataclass(frozen=True)
class Proposal:
    """One draft criterion: the field, the values proposed and the evidence for them."""

    id: str
    field: str
    group: CriterionGroup
    operator: str
    values: tuple[str, ...]
    required: bool
    window: str  # "all" or "recent": the window whose evidence proposes it
    evidence: pd.DataFrame  # the evidence rows of this field, both windows
    passes: int = 0  # leads (all history) that meet the proposed criterion
    passes_converted: int = 0

    def yaml_values(self) -> tuple[str, Any]:
        """The YAML key and value(s) for the operator."""
        if self.operator in (">=", "<="):
            return "value", self.values[0]
        return "values", list(self.values)


@dataclass
class Suggestion:
    """What :func:`suggest` found: the evidence table, the proposals and their context."""

    evidence: pd.DataFrame
    proposals: list[Proposal]
    target: str
    horizon_days: float
    source: str
    leads: int
    converted: int
    recent_customers: int
    recent_since: pd.Timestamp | None
    recent_leads: int
    recent_converted: int
    alpha: float
    min_support: float
    min_count: int
    notes: list[str] = field(default_factory=list)


def candidate_fields(config: FeatureConfig) -> list[str]:
    """Fit attributes suggest considers: every category column of leads, accounts and contacts
    (built-in and custom) as ``entity.column``."""
    tables = schemas(config)
    out = []
    for entity, table in ENTITIES.items():
        for col in tables[table].columns:
            if col.kind == "category":
                out.append(f"{entity}.{col.name}")
    return out


def _tests(frame: pd.DataFrame, fields: list[str], window: str) -> list[dict[str, Any]]:
    label = frame["label"].to_numpy(dtype=bool)
    n_all, w_all = len(label), int(label.sum())
    out = []
    for name in fields:
        values = frame[name].astype("string")
        levels = values.dropna().unique()
        if len(levels) < 2 or len(levels) > MAX_LEVELS:
            continue
        for level in sorted(str(v) for v in levels):
            has = (values == level).fillna(False).to_numpy(dtype=bool)
            n, w = int(has.sum()), int(label[has].sum())
            lo, hi = wilson_interval(w, n)
            rate = w / n
            overall = w_all / n_all
            out.append(
                {
                    "window": window,
                    "field": name,
                    "value": level,
                    "leads": n,
                    "converted": w,
                    "support": w / w_all if w_all else math.nan,
                    "share_of_leads": n / n_all,
                    "lift": rate / overall if overall else math.nan,
                    "rate": rate,
                    "ci_low": lo,
                    "ci_high": hi,
                    # P(X >= w), X ~ hypergeometric: w_all converted drawn from n_all leads
                    "p_value": float(stats.hypergeom.sf(w - 1, n_all, n, w_all)),
                }
            )
    return out


def _ordered_form(
    chosen: list[str], order: tuple[str, ...], observed: set[str]
) -> tuple[str, tuple[str, ...]]:
    ranks = sorted(order.index(v) for v in chosen)
    contiguous = ranks == list(range(ranks[0], ranks[-1] + 1))
    present = [i for i, v in enumerate(order) if v in observed]
    if not contiguous:
        return "in", tuple(order[i] for i in ranks)
    if ranks[-1] >= max(present):
        return ">=", (order[ranks[0]],)
    if ranks[0] <= min(present):
        return "<=", (order[ranks[-1]],)
    if len(ranks) == 1:
        return "in", (order[ranks[0]],)
    return "between", (order[ranks[0]], order[ranks[-1]])


def suggest(
    crm: CrmData,
    config: FeatureConfig,
    *,
    target: Target = "won",
    horizon_days: float = 90,
    last_customers: int = 30,
    min_support: float = 0.05,
    min_count: int = 5,
    alpha: float = 0.05,
    fields: list[str] | None = None,
) -> Suggestion:
    """Attribute values over-represented among converted leads, and draft criteria from them.

    Population: every lead with a final label (converted within `horizon_days`, from
    :func:`~leadscore.features.labels.label_snapshots` at creation). Two windows: all history,
    and the leads created since the first of the `last_customers` most recent converted leads (by
    creation). A value is proposed when, in a window, its Benjamini-Hochberg q-value (over
    every test of both windows) is at most `alpha`, its lift is above 1, and it covers at
    least `min_support` of the window's converted leads and at least `min_count` of them.
    One criterion per attribute: from all history (required), else from the recent window
    alone (not required, flagged).
    """
    frame = labelled_rows(crm, target=target, horizon_days=horizon_days)
    if frame.empty:
        raise LabelError("no lead has a final label yet: nothing to learn from")
    fields = fields if fields is not None else candidate_fields(config)
    fields = [f for f in fields if f in frame.columns]
    info = known_fields(config)
    label = frame["label"].to_numpy(dtype=bool)
    notes = []
    if frame.attrs.get("excluded"):
        notes.append(
            f"{frame.attrs['excluded']:,} lead(s) left out: no final label yet or already "
            "converted at creation"
        )
    customers = frame.loc[label].sort_values(["created_at", "lead_id"])
    recent = customers.tail(last_customers)
    since = recent["created_at"].min() if len(recent) else None
    windows = [("all", frame)]
    if since is not None and len(recent) < len(customers):
        windows.append(("recent", frame[frame["created_at"] >= since]))
    elif since is not None:
        notes.append(f"only {len(customers)} converted lead(s): the recent window is all history")
    evidence = pd.DataFrame([t for name, part in windows for t in _tests(part, fields, name)])
    if not evidence.empty:
        # One family: every value of every attribute in both windows, so that looking twice
        # does not double the chance of proposing noise.
        p_values = evidence["p_value"].to_numpy()
        evidence["q_value"] = stats.false_discovery_control(p_values, method="bh")
        evidence["significant"] = (
            (evidence["q_value"] <= alpha)
            & (evidence["lift"] > 1)
            & (evidence["support"] >= min_support)
            & (evidence["converted"] >= min_count)
        )
    proposals = _proposals(evidence, frame, info) if not evidence.empty else []
    recent_frame = windows[1][1] if len(windows) > 1 else frame
    return Suggestion(
        evidence=evidence,
        proposals=proposals,
        target=target,
        horizon_days=horizon_days,
        source=crm.source,
        leads=len(frame),
        converted=int(label.sum()),
        recent_customers=len(recent),
        recent_since=since,
        recent_leads=len(recent_frame),
        recent_converted=int(recent_frame["label"].sum()),
        alpha=alpha,
        min_support=min_support,
        min_count=min_count,
        notes=notes,
    )


def _proposals(
    evidence: pd.DataFrame, frame: pd.DataFrame, info: dict[str, FieldInfo]
) -> list[Proposal]:
    out = []
    column_names = [f.split(".", 1)[1] for f in evidence["field"].unique()]
    for name in evidence["field"].unique():
        rows = evidence[evidence["field"] == name]
        significant = rows[rows["significant"]]
        window = "all" if (significant["window"] == "all").any() else "recent"
        chosen = significant[significant["window"] == window]
        if chosen.empty:
            continue
        required = window == "all"
        observed = set(rows.loc[rows["window"] == "all", "value"])
        values = chosen.sort_values("lift", ascending=False)["value"].tolist()
        if set(values) >= observed:
            continue  # every value over-represented: nothing to tell leads apart
        order = info[name].order if name in info else None
        if order and all(v in order for v in values):
            operator, proposed = _ordered_form(values, order, observed & set(order))
        else:
            operator, proposed = "in", tuple(values)
        column = name.split(".", 1)[1]
        cid = column if column_names.count(column) == 1 else name.replace(".", "_")
        group: CriterionGroup = "authority" if name in _AUTHORITY else "fit"
        passes, passes_converted = _coverage(frame, name, operator, proposed, order)
        out.append(
            Proposal(
                cid,
                name,
                group,
                operator,
                proposed,
                required,
                window,
                rows,
                passes,
                passes_converted,
            )
        )
    return out


def _coverage(
    frame: pd.DataFrame,
    name: str,
    operator: str,
    values: tuple[str, ...],
    order: tuple[str, ...] | None,
) -> tuple[int, int]:
    observed = frame[name].astype("string")
    if operator == "in":
        mask = observed.isin(values)
    else:
        assert order is not None
        rank = observed.map({v: i for i, v in enumerate(order)}).astype("Float64")
        lo = order.index(values[0])
        hi = order.index(values[-1])
        if operator == ">=":
            mask = rank >= lo
        elif operator == "<=":
            mask = rank <= hi
        else:
            mask = (rank >= lo) & (rank <= hi)
    has = mask.fillna(False).to_numpy(dtype=bool)
    return int(has.sum()), int(frame["label"].to_numpy(dtype=bool)[has].sum())


# ---------------------------------------------------------------------------------------------
# the reps' verdicts: criteria against what sales said of the leads handed over


@dataclass
class FeedbackEvidence:
    """How the criteria read the leads the reps accepted or rejected (:func:`feedback_report`).

    `contradictions`: one row per (reason mapped to a criteria group, criterion of that group),
    in taxonomy order: `reason`, `group`, `rejected` (leads rejected for the reason),
    `criterion`, `required`, `pass`, `fail`, `unknown` (the criterion's statuses on those
    leads); a reason with rejections but no criterion in its group has one row with `criterion`
    None. `acceptance`: :func:`report`'s table with acceptance in place of conversion
    (`accepted` for `converted`; `lift` is over the overall acceptance rate).
    """

    contradictions: pd.DataFrame
    acceptance: pd.DataFrame
    leads: int  # leads with a verdict that the source has
    accepted: int
    rejected: int
    not_in_data: int  # leads with a verdict that the source does not have


def feedback_rows(
    crm: CrmData, feedback: pd.DataFrame, *, as_of_days: float, spec: FeatureSpec
) -> pd.DataFrame:
    """The leads of a feedback frame (:func:`~leadscore.features.feedback.load_feedback`) that
    the source has, as a criteria frame with their `disposition` and `reason`.

    Each lead is checked as :func:`labelled_rows` checks it, at created_at + `as_of_days`, or
    at its verdict when that came first: what the rep learnt on the call (and typed into the
    CRM) is not what the criteria knew when the lead was handed over. No label is needed, so
    recent leads count too. ``attrs["not_in_data"]`` counts the leads the source lacks.
    """
    verdicts = feedback.assign(lead_id=feedback["lead_id"].astype("string"))
    verdicts = verdicts.drop_duplicates("lead_id", keep="last").set_index("lead_id")
    ids = crm.leads["lead_id"].astype("string")
    has = isin(ids, verdicts.index.to_series())
    leads = crm.leads[has].reset_index(drop=True)
    lead_ids = leads["lead_id"].astype("string")
    when = as_of_after_creation(leads, as_of_days)
    decided = pd.Series(verdicts["dispositioned_at"].reindex(lead_ids).to_numpy(), index=when.index)
    when = when.where(~(decided < when).fillna(False), decided)
    when = when.where(when >= leads["created_at"], leads["created_at"])
    if len(leads):
        rows = snapshot(replace(crm, leads=leads), spec, when)
    else:  # nothing to snapshot: none of the leads with a verdict is in this source
        rows = pd.DataFrame({"lead_id": lead_ids, "as_of": when.astype("datetime64[ns]")})
    frame = criteria_frame(crm, rows)
    frame["disposition"] = verdicts["disposition"].reindex(lead_ids).to_numpy()
    frame["reason"] = verdicts["reason"].reindex(lead_ids).to_numpy()
    frame.attrs["not_in_data"] = len(verdicts) - len(leads)
    return frame


def feedback_report(
    criteria: Criteria, rows: pd.DataFrame, taxonomy: HandoffConfig
) -> FeedbackEvidence:
    """Each criteria group against the rejections that contradict it, and acceptance by status.

    `rows` is a :func:`feedback_rows` frame. For every reason of `taxonomy` with a
    `criteria_group`, the statuses of that group's criteria on the leads rejected for it: a
    criterion that passes the leads the reps reject for its own reason is one to tighten.
    """
    evaluated = evaluate_frame(criteria, rows)
    disposition = rows["disposition"].to_numpy()
    reason = rows["reason"].astype(object).to_numpy()
    records: list[dict[str, Any]] = []
    groups = reasons_by_group(taxonomy)
    for rid in taxonomy.reason_ids:
        group = next((g for g, ids in groups.items() if rid in ids), None)
        if group is None:
            continue
        members = [bc for bc in criteria if bc.criterion.group == group]
        mask = (disposition == "rejected") & (reason == rid)
        base = {"reason": rid, "group": group, "rejected": int(mask.sum())}
        if not members and mask.any():  # a reason no criterion covers: worth saying
            records.append(base | {"criterion": None, "required": None}
                           | dict.fromkeys(STATUSES, 0))  # fmt: skip
        for bc in members:
            column = evaluated[bc.id].to_numpy()[mask]
            records.append(base | {"criterion": bc.id, "required": bc.required}
                           | {s: int((column == s).sum()) for s in STATUSES})  # fmt: skip
    contradictions = pd.DataFrame(
        records, columns=["reason", "group", "rejected", "criterion", "required", *STATUSES]
    )
    for name in ("criterion", "required"):  # None stays None (not NaN) where there is none
        values = contradictions[name].astype(object)
        contradictions[name] = values.where(values.notna(), None)
    accepted = disposition == "accepted"
    acceptance = report(criteria, rows.assign(label=accepted)).rename(
        columns={"converted": "accepted"}
    )
    return FeedbackEvidence(
        contradictions=contradictions,
        acceptance=acceptance,
        leads=len(rows),
        accepted=int(accepted.sum()),
        rejected=int((disposition == "rejected").sum()),
        not_in_data=int(rows.attrs.get("not_in_data", 0)),
    )


def contradiction_notes(
    evidence: FeedbackEvidence, *, min_rejected: int = 5, min_share: float = 0.5
) -> list[str]:
    """One line per criterion that passes at least `min_share` of at least `min_rejected` leads
    the reps rejected for its own group's reason, and per such reason no criterion covers."""
    notes = []
    for r in _records(evidence.contradictions):
        n = r["rejected"]
        if n < min_rejected:
            continue
        if r["criterion"] is None:
            notes.append(
                f"{n:,} lead(s) rejected for {r['reason']}, but no criterion covers "
                f"{r['group']}: one may be missing"
            )
        elif r["pass"] >= min_share * n:
            notes.append(
                f"leads rejected for {r['reason']}: {n:,}; {r['criterion']} ({r['group']}) said "
                f"pass for {r['pass']:,} of them ({r['pass'] / n:.0%}): a criterion to tighten"
            )
    return notes
