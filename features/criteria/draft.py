"""SQL criteria, the writing: the report and the evidence as tables, and the draft file.

:func:`draft_yaml` turns :func:`~leadscore.features.criteria.evidence.suggest`'s proposals into
a criteria file for people to review, with the evidence as comments; it loads wherever a
criteria file is accepted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, cast

import pandas as pd
from rich.table import Table

from leadscore.features.config import FeatureConfig
from leadscore.features.console import text_table
from leadscore.features.criteria.evidence import (
    FeedbackEvidence,
    Proposal,
    Suggestion,
    baseline_metrics,
    contradiction_notes,
    wilson_interval,
)
from leadscore.features.criteria.rules import Criteria, known_fields, parse_criteria

Block = str | Table  # what the report and evidence functions return, printed in order


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"


def format_report(
    table: pd.DataFrame,
    criteria: Criteria,
    rows: pd.DataFrame,
    heading: str,
) -> list[Block]:
    """The report: a heading, a table with one block per criterion and the verdict, and the
    verdict read as a prediction."""
    label = rows["label"].to_numpy(dtype=bool)
    lines: list[Block] = [
        heading,
        f"scoring cases: {len(label):,}, converted: {int(label.sum()):,} "
        f"({_pct(label.mean() if len(label) else math.nan)})",
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
    lines.append(text_table(header, body, right=(3, 4, 5, 7)))
    m = baseline_metrics(criteria, rows)
    lines.append(
        f"sql_ready as a prediction: precision {_pct(m['precision'])}, recall "
        f"{_pct(m['recall'])}, {_pct(m['flagged'])} of leads flagged"
    )
    return lines


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


def format_evidence(s: Suggestion, top: int = 8) -> list[Block]:
    """The evidence: the strongest values of each window, then the proposals."""
    overall = s.converted / s.leads if s.leads else math.nan
    lines: list[Block] = [
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
        lines.append(f"{'all history' if window == 'all' else 'recent window'} (top {top} by p):")
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
        lines.append(text_table(header, body, right=(2, 3, 4, 6, 7, 8)))
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
    return lines


def format_feedback(ev: FeedbackEvidence, heading: str) -> list[Block]:
    """The reps' verdicts against the criteria: rejections against their own criteria group,
    a sentence per criterion they contradict (:func:`contradiction_notes`), then acceptance by
    status."""
    rate = ev.accepted / ev.leads if ev.leads else math.nan
    lines: list[Block] = [
        heading,
        f"leads with a verdict: {ev.leads:,} in the data, {ev.accepted:,} accepted "
        f"({_pct(rate)}), {ev.rejected:,} rejected"
        + (f"; {ev.not_in_data:,} not in the data (left out)" if ev.not_in_data else ""),
    ]
    if ev.leads == 0:
        return [*lines, "no lead with a verdict is in the data: nothing to compare"]
    lines.append(
        "rejections against their own criteria group (a criterion that passes the leads the "
        "reps reject for its own reason is one to tighten):"
    )
    body = []
    last = None
    for r in _records(ev.contradictions):
        first = r["reason"] != last
        last = r["reason"]
        n = r["rejected"]
        body.append(
            (
                str(r["reason"]) if first else "",
                str(r["group"]) if first else "",
                f"{n:,}" if first else "",
                str(r["criterion"] or "(no criterion in this group)"),
                *(("", "", "") if r["criterion"] is None else
                  (f"{r['pass']:,}", f"{r['fail']:,}", f"{r['unknown']:,}")),
            )
        )  # fmt: skip
    header = ("reason", "group", "rejected", "criterion", "pass", "fail", "unknown")
    lines.append(text_table(header, body, right=(2, 4, 5, 6)))
    lines += contradiction_notes(ev)
    lines.append(f"acceptance by criterion status (overall {_pct(rate)}):")
    rows = []
    last = None
    for rec in _records(ev.acceptance):
        first = rec["item"] != last
        last = rec["item"]
        empty = rec["leads"] == 0
        rows.append(
            (
                str(rec["item"]) if first else "",
                str(rec["status"]),
                f"{rec['leads']:,}",
                f"{rec['accepted']:,}",
                "" if empty else _pct(rec["rate"]),
                "" if empty else f"{rec['ci_low']:.1%}-{rec['ci_high']:.1%}",
            )
        )
    lines.append(text_table(("criterion", "status", "leads", "accepted", "rate", "95% CI"),
                            rows, right=(2, 3, 4)))  # fmt: skip
    return lines
