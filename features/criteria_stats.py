"""Evidence for the SQL criteria from history: a draft drawn from won customers, and a report.

* :func:`suggest` asks, for every value of every fit attribute (industry, region, bands,
  roles, lead source, custom fields), whether it is over-represented among converted leads
  compared with all leads, over all history and over the window of the most recent N
  customers. Each value gets its support (share of converted leads that have it), lift
  (its conversion rate over the overall rate), conversion rate with a Wilson interval, and a
  one-sided hypergeometric p-value (Fisher's exact test of over-representation); p-values are
  corrected with Benjamini-Hochberg over every test of both windows, so that noise is not
  proposed. Values that pass the correction and the minimum support become draft criteria
  (:func:`draft_yaml`), with the evidence as comments, for people to review.
* :func:`report` shows, per criterion and for the verdict, how leads that passed, failed or
  were unknown actually converted (counts, rate, Wilson interval).

Labels come from :func:`features.labels.label_snapshots`; the default target and horizon from
`config/training.yaml` (:func:`label_defaults`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd
import yaml
from scipy import stats

from features.config import ConfigError, FeatureConfig, default_config_dir
from features.contract import CrmData, schemas
from features.criteria import (
    ENTITIES,
    STATUSES,
    VERDICTS,
    Criteria,
    CriterionGroup,
    FieldInfo,
    criteria_frame,
    evaluate_frame,
    known_fields,
    parse_criteria,
)
from features.labels import TARGET_COLUMN, LabelError, Target, label_snapshots
from features.snapshot import as_of_after_creation, snapshot
from features.spec import FeatureSpec

CONFIDENCE = 0.95
# Contact attributes speak to authority; every other candidate attribute is fit.
_AUTHORITY = frozenset({"contact.role_function", "contact.seniority", "contact.buyer_role"})
MAX_LEVELS = 30  # attributes with more distinct values are not candidates (names, ids)


def label_defaults(path: Path | str | None = None) -> tuple[Target, float]:
    """(target, horizon_days) from the `label:` section of `training.yaml` (default: config/)."""
    file = Path(path) if path is not None else default_config_dir() / "training.yaml"
    if not file.is_file():
        return "won", 90.0
    label = (yaml.safe_load(file.read_text()) or {}).get("label") or {}
    target = label.get("target", "won")
    if target not in TARGET_COLUMN:
        raise ConfigError(f"{file}: label.target {target!r}; expected one of {list(TARGET_COLUMN)}")
    return cast(Target, target), float(label.get("horizon_days", 90))


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
    :func:`~features.criteria.criteria_frame`, `created_at`, `label` (bool); leads already
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


def format_report(
    table: pd.DataFrame,
    criteria: Criteria,
    rows: pd.DataFrame,
    heading: str,
) -> str:
    """The report as plain text: a heading, one block per criterion, the verdict."""
    label = rows["label"].to_numpy(dtype=bool)
    lines = [
        heading,
        f"scoring cases: {len(label):,}, converted: {int(label.sum()):,} "
        f"({_pct(label.mean() if len(label) else math.nan)})",
        "",
    ]
    header = ("criterion", "req", "status", "leads", "converted", "rate", "95% CI", "lift")
    body: list[tuple[str, ...]] = []
    last = None
    for rec in _records(table):
        first = rec["item"] != last
        last = rec["item"]
        req = "" if rec["required"] is None else ("yes" if rec["required"] else "no")
        empty = rec["leads"] == 0
        body.append(
            (
                str(rec["item"]) if first else "",
                req if first else "",
                str(rec["status"]),
                f"{rec['leads']:,}",
                f"{rec['converted']:,}",
                "" if empty else _pct(rec["rate"]),
                "" if empty else f"{rec['ci_low']:.1%}-{rec['ci_high']:.1%}",
                "" if empty else f"{rec['lift']:.2f}",
            )
        )
    lines += text_table(header, body, right=(3, 4, 5, 7))
    m = baseline_metrics(criteria, rows)
    lines += [
        "",
        f"sql_ready as a prediction: precision {_pct(m['precision'])}, recall "
        f"{_pct(m['recall'])}, {_pct(m['flagged'])} of leads flagged",
    ]
    return "\n".join(lines)


def text_table(
    header: tuple[str, ...], body: Sequence[tuple[str, ...]], right: tuple[int, ...] = ()
) -> list[str]:
    """Rows of text cells as aligned lines (columns in `right` right-aligned)."""
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [fmt(header), *(fmt(r) for r in body)]


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
    :func:`~features.labels.label_snapshots` at creation). Two windows: all history, and the
    leads created since the first of the `last_customers` most recent converted leads (by
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


def _evidence_line(r: dict[str, Any]) -> str:
    return (
        f"{r['value']}: {r['converted']:,} of {r['leads']:,} leads converted, "
        f"{r['rate']:.1%} [{r['ci_low']:.1%}, {r['ci_high']:.1%}]; support {r['support']:.1%} "
        f"of converted vs {r['share_of_leads']:.1%} of leads; lift {r['lift']:.2f}; "
        f"q {r['q_value']:.3g}" + (" *" if r["significant"] else "")
    )


def _describe(p: Proposal, label: str) -> str:
    shown = {
        "in": lambda: "is " + " or ".join(v.replace("_", " ") for v in p.values),
        ">=": lambda: f"is at least {p.values[0]}",
        "<=": lambda: f"is at most {p.values[0]}",
        "between": lambda: f"is between {p.values[0]} and {p.values[1]}",
    }[p.operator]()
    best = p.evidence[(p.evidence["window"] == p.window) & p.evidence["significant"]]
    lift = best["lift"].max()
    where = "all history" if p.window == "all" else "the recent customers only"
    return (
        f"Draft from converted leads: {label} {shown} (over-represented, lift up to "
        f"{lift:.2f}, in {where}). Review before use."
    )


def draft_yaml(s: Suggestion, config: FeatureConfig, *, today: dt.date | None = None) -> str:
    """A criteria file for review: the proposals, with their evidence as comments.

    It loads wherever a criteria file is accepted (`--criteria draft.yaml`).
    """
    today = today or dt.date.today()
    info = known_fields(config)
    overall = s.converted / s.leads if s.leads else math.nan
    head = [
        "# DRAFT SQL criteria, proposed by `leadscore criteria suggest`. Review before use:",
        "# these are attribute values over-represented among converted leads, not causes, and",
        "# they say nothing about budget, authority, need or timeline beyond what the data holds.",
        "# Edit, merge into config/sql_criteria.yaml, and check with `leadscore criteria report`.",
        "#",
        f"# source: {s.source}",
        f"# target: {s.target} within {s.horizon_days:g} days of lead creation",
        f"# all history: {s.leads:,} leads with a final label, {s.converted:,} converted "
        f"({overall:.1%})",
    ]
    if s.recent_since is not None:
        head.append(
            f"# recent: leads created since {s.recent_since:%Y-%m-%d}, when the "
            f"{s.recent_customers} most recent converted leads began: {s.recent_leads:,} leads, "
            f"{s.recent_converted:,} converted"
        )
    head += [
        "# method: per value, converted leads vs all leads; one-sided hypergeometric test",
        "#   (Fisher's exact) of over-representation; Benjamini-Hochberg over all values of",
        "#   all attributes in both windows;",
        f"#   proposed when q <= {s.alpha:g}, lift > 1, support >= {s.min_support:.0%} of "
        f"converted leads and >= {s.min_count} of them",
        "# evidence lines: value: converted of leads, rate [95% Wilson interval]; support;",
        "#   lift; q (* = passes all thresholds)",
        *(f"# note: {n}" for n in s.notes),
        "",
        f"version: {json.dumps(f'draft-{today.isoformat()}')}",
        'owner: "(unassigned: a draft for review)"',
        "",
        "criteria:",
    ]
    body: list[str] = []
    for p in s.proposals:
        label = info[p.field].label if p.field in info else p.field
        key, value = p.yaml_values()
        rate = p.passes_converted / p.passes if p.passes else math.nan
        lo, hi = wilson_interval(p.passes_converted, p.passes)
        recall = p.passes_converted / s.converted if s.converted else math.nan
        body += [f"  # {p.field}"]
        for window in ("all", "recent"):
            rows = p.evidence[p.evidence["window"] == window].sort_values("lift", ascending=False)
            if rows.empty:
                continue
            body.append(f"  #   {'all history' if window == 'all' else 'recent'}:")
            body += [f"  #     {_evidence_line(r)}" for r in _records(rows)]
        body += [
            f"  #   as proposed: {p.passes:,} leads pass, {p.passes_converted:,} converted "
            f"({rate:.1%} [{lo:.1%}, {hi:.1%}] vs {overall:.1%} overall); covers "
            f"{recall:.1%} of converted leads",
            f"  - id: {p.id}",
            f"    description: {json.dumps(_describe(p, label))}",
            f"    group: {p.group}",
            f"    field: {p.field}",
            f"    operator: {json.dumps(p.operator)}",
            f"    {key}: {json.dumps(value)}",
            f"    required: {'true' if p.required else 'false'}",
            "",
        ]
    text = "\n".join(head + body).rstrip() + "\n"
    parse_criteria(text, config, origin="draft")  # the draft must load: fail here, not later
    return text


def format_evidence(s: Suggestion, top: int = 8) -> str:
    """The evidence as plain text: the strongest values of each window, then the proposals."""
    overall = s.converted / s.leads if s.leads else math.nan
    lines = [
        f"{s.leads:,} leads with a final label, {s.converted:,} converted ({overall:.1%}) "
        f"[{s.target} within {s.horizon_days:g} d]"
    ]
    if s.recent_since is not None:
        lines.append(
            f"recent window: leads created since {s.recent_since:%Y-%m-%d}, when the "
            f"{s.recent_customers} most recent converted leads began: {s.recent_leads:,} leads, "
            f"{s.recent_converted:,} converted"
        )
    lines += [f"note: {n}" for n in s.notes]
    header = ("field", "value", "leads", "conv", "rate", "95% CI", "support", "lift", "q", "")
    for window in ("all", "recent"):
        part = s.evidence[s.evidence["window"] == window] if not s.evidence.empty else None
        if part is None or part.empty:
            continue
        part = part.sort_values(["p_value", "lift"], ascending=[True, False]).head(top)
        lines += ["", f"{'all history' if window == 'all' else 'recent window'} (top {top} by p):"]
        body = [
            (
                str(r["field"]),
                str(r["value"]),
                f"{r['leads']:,}",
                f"{r['converted']:,}",
                f"{r['rate']:.1%}",
                f"{r['ci_low']:.1%}-{r['ci_high']:.1%}",
                f"{r['support']:.1%}",
                f"{r['lift']:.2f}",
                f"{r['q_value']:.3g}",
                "*" if r["significant"] else "",
            )
            for r in _records(part)
        ]
        lines += text_table(header, body, right=(2, 3, 4, 6, 7, 8))
    lines.append("")
    if s.proposals:
        lines.append(f"proposed (* above; q <= {s.alpha:g} after Benjamini-Hochberg):")
        for p in s.proposals:
            _, value = p.yaml_values()
            flag = "" if p.required else "  (recent window only: required: false)"
            lines.append(f"  {p.id}: {p.field} {p.operator} {value}{flag}")
    else:
        lines.append(
            f"nothing proposed: no value is over-represented among converted leads at "
            f"q <= {s.alpha:g} (Benjamini-Hochberg) with support >= {s.min_support:.0%}"
        )
    return "\n".join(lines)
