"""`leadscore data ...` and `leadscore features ...`: demo data and point-in-time snapshots."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from features.config import load_feature_config
from features.contract import CrmData, DataContractError
from features.labels import LabelError, exclusion_counts, label_snapshots
from features.snapshot import as_of_after_creation, snapshot
from features.sources import load_source
from features.spec import build_spec

log = logging.getLogger(__name__)
console = Console(stderr=True, soft_wrap=True)  # errors stay on one line: greppable

data_app = typer.Typer(help="Demo data: generate leadforge CRM worlds.", no_args_is_help=True)
features_app = typer.Typer(help="Point-in-time feature snapshots.", no_args_is_help=True)

RECIPE = "b2b_saas_procurement_v1"


class Difficulty(StrEnum):
    intro = "intro"
    intermediate = "intermediate"
    advanced = "advanced"


class Mode(StrEnum):
    research_instructor = "research_instructor"
    student_public = "student_public"


class TargetOpt(StrEnum):
    won = "won"
    sql = "sql"


@data_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the bundle to.")],
    seed: Annotated[
        int, typer.Option(help="World seed: a different seed is a different world.")
    ] = 42,
    difficulty: Annotated[
        Difficulty, typer.Option(help="Signal-to-noise tier.")
    ] = Difficulty.intermediate,
    leads: Annotated[int, typer.Option(min=1, help="Number of leads.")] = 5000,
    mode: Annotated[
        Mode, typer.Option(help="research_instructor keeps the full dated history and outcomes.")
    ] = Mode.research_instructor,
) -> None:
    """Generate a simulated B2B SaaS CRM (a leadforge bundle) for demos and tests."""
    from leadforge.api import Generator

    with console.status(f"simulating {leads} leads (seed {seed}, {difficulty.value}) ..."):
        gen = Generator.from_recipe(RECIPE, seed=seed, exposure_mode=mode.value)
        bundle = gen.generate(n_leads=leads, difficulty=difficulty.value)
        out.parent.mkdir(parents=True, exist_ok=True)
        bundle.save(str(out))
    console.print(f"wrote leadforge bundle ({mode.value}, {leads} leads) to [bold]{out}[/]")


@data_app.command("lead")
def export_lead(
    data: Annotated[Path, typer.Option(help="A leadforge bundle or a canonical directory.")],
    lead_id: Annotated[str | None, typer.Option(help="The lead (default: the first one).")] = None,
    as_of_days: Annotated[float, typer.Option(help="History up to N x 24 h after creation.")] = 30,
    out: Annotated[Path | None, typer.Option(help="JSON file (default: print).")] = None,
    config: Annotated[Path | None, typer.Option(help="features.yaml (default: config/).")] = None,
) -> None:
    """Write one lead as the JSON body the scoring API and `criteria check` take."""
    import json

    from features.payload import lead_bodies

    crm = load_or_exit(data, config)
    ids = crm.leads["lead_id"]
    chosen = lead_id if lead_id is not None else str(ids.iloc[0])
    if chosen not in set(ids):
        raise _fail(ValueError(f"{data}: no lead {chosen!r} (e.g. {ids.iloc[0]!r})"))
    created = crm.leads.loc[crm.leads["lead_id"] == chosen, "created_at"].iloc[0]
    (body,) = lead_bodies(crm, load_feature_config(config), [chosen],
                          [created + pd.Timedelta(days=as_of_days)])  # fmt: skip
    text = json.dumps(body, indent=2)
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    n_events = len(body["events"])
    console.print(f"wrote lead {chosen} ({n_events} events up to {body['as_of']}) to {out}")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {exc}")
    return typer.Exit(code=2)


def load_or_exit(data: Path, config: Path | None) -> CrmData:
    """Load a source for a CLI command, turning contract errors into a clean exit."""
    try:
        return load_source(data, load_feature_config(config))
    except (DataContractError, ValueError) as exc:
        raise _fail(exc) from exc


@features_app.command("build")
def build(
    data: Annotated[
        Path, typer.Option(help="A leadforge bundle or a canonical CSV/Parquet directory.")
    ],
    out: Annotated[Path, typer.Option(help="Parquet file to write the snapshot rows to.")],
    as_of_days: Annotated[
        float | None, typer.Option(help="Snapshot each lead N x 24 h after its creation.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot every lead at one moment (ISO-8601).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="features.yaml (default: config/).")] = None,
    target: Annotated[
        TargetOpt, typer.Option(help="Outcome counted in the summary.")
    ] = TargetOpt.won,
    horizon_days: Annotated[float, typer.Option(help="Conversion horizon for the summary.")] = 90,
) -> None:
    """Write one feature row per lead, built only from history dated at or before as_of."""
    if (as_of_days is None) == (as_of is None):
        raise _fail(ValueError("give exactly one of --as-of-days N or --as-of TIMESTAMP"))
    crm = load_or_exit(data, config)
    spec = build_spec(load_feature_config(config))
    leads = crm.leads
    if as_of is not None:
        moment = pd.Timestamp(as_of)
        moment = moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment
        not_yet = leads["created_at"] > moment
        if not_yet.any():
            console.print(
                f"{int(not_yet.sum())} lead(s) created after {moment} left out (not yet leads)"
            )
        crm.leads = leads = leads[~not_yet].reset_index(drop=True)
        when = pd.Series(moment, index=leads.index)
    else:
        when = as_of_after_creation(leads, float(str(as_of_days)))
    rows = snapshot(crm, spec, when)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out, index=False)
    _summary(crm, rows, len(spec), out, target.value, horizon_days)


def _summary(
    crm: CrmData, rows: pd.DataFrame, n_features: int, out: Path, target: str, horizon: float
) -> None:
    lines: list[tuple[str, str]] = [
        ("snapshot file", str(out)),
        ("source", crm.source),
        ("leads", f"{len(rows):,}"),
        ("features", str(n_features)),
        ("observation end", str(crm.observation_end)),
    ]
    try:
        labels = label_snapshots(
            rows, crm.outcomes, crm.leads.set_index("lead_id")["created_at"],
            target=target, horizon_days=horizon, observation_end=crm.observation_end,  # type: ignore[arg-type]
            has_outcome_dates=crm.has_outcome_dates,
        )  # fmt: skip
        cases = int(labels["excluded"].isna().sum())
        positives = int(labels.loc[labels["excluded"].isna(), "label"].sum())
        lines.append((f"scoring cases ({target} within {horizon:g} d)", f"{cases:,}"))
        lines.append(("positives", f"{positives:,} ({positives / max(cases, 1):.1%})"))
        lines += [(f"excluded: {k}", f"{v:,}") for k, v in exclusion_counts(labels).items()]
    except LabelError as exc:
        lines.append(("positives", f"n/a: {exc}"))
    lines += [("note", note) for note in crm.notes]
    width = max(len(k) for k, _ in lines)
    typer.echo("\n".join(f"{k:<{width}}  {v}" for k, v in lines))


@features_app.command("list")
def list_features(
    config: Annotated[Path | None, typer.Option(help="features.yaml (default: config/).")] = None,
) -> None:
    """Print the feature spec as a Markdown table (the docs are derived from the spec)."""
    spec = build_spec(load_feature_config(config))
    typer.echo("| feature | group | dtype | how | sentence |\n| --- | --- | --- | --- | --- |")
    for f in spec:
        how = f.source if f.kind == "attribute" else f.kind
        if f.kind not in ("age", "attribute", "ratio", "difference"):
            conditions = ", ".join(f"{c}={'/'.join(v)}" for c, v in f.filter.conditions())
            window = "" if f.window == "all" else f", {f.window}"
            how = f"{f.kind}{'(' + f.source + ')' if f.source else ''} of {conditions}{window}"
        elif f.inputs:
            how = f"{f.kind} of {' and '.join(f.inputs)}"
        typer.echo(f"| `{f.name}` | {f.group} | {f.dtype} | {how} | {f.template} |")


# ---------------------------------------------------------------------------------------------
# `leadscore criteria ...`: the written SQL definition, its check, a draft, a report

criteria_app = typer.Typer(
    help="SQL criteria: the written definition, its check, a draft from history, a report.",
    no_args_is_help=True,
)


def _criteria_fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)  # unwrapped: one problem per line
    return typer.Exit(code=2)


def _shown(origin: str) -> str:
    path = Path(origin)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else origin


def _label_options(target: TargetOpt | None, horizon_days: float | None) -> tuple[TargetOpt, float]:
    from features.config import ConfigError
    from features.criteria_stats import label_defaults

    try:
        default_target, default_horizon = label_defaults()
    except ConfigError as exc:
        raise _criteria_fail(exc) from exc
    chosen = target or TargetOpt(default_target)
    return chosen, horizon_days if horizon_days is not None else default_horizon


CriteriaOpt = Annotated[
    Path | None, typer.Option(help="Criteria file (default: config/sql_criteria.yaml).")
]
ConfigOpt = Annotated[Path | None, typer.Option(help="features.yaml (default: config/).")]
TargetDefaultOpt = Annotated[
    TargetOpt | None,
    typer.Option(help="What counts as converting (default: label.target in training.yaml)."),
]
HorizonOpt = Annotated[
    float | None,
    typer.Option(help="Conversion horizon in days (default: label.horizon_days in training.yaml)."),
]


@criteria_app.command("check")
def criteria_check(
    lead: Annotated[
        Path, typer.Option(help="lead.json: one lead with its account, contact and events.")
    ],
    criteria: CriteriaOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check one lead against the written SQL criteria: each criterion and the verdict."""
    import json

    from pydantic import ValidationError

    from features.config import ConfigError
    from features.criteria import CriteriaError, check, lead_row, load_criteria, show_value
    from features.criteria_stats import text_table
    from features.online import OnlineBuilder
    from features.payload import payload_model

    try:
        feature_config = load_feature_config(config)
        spec = build_spec(feature_config)
        rules = load_criteria(criteria, feature_config, spec)
        body = json.loads(lead.read_text())
        payload = payload_model(feature_config).model_validate(body)
    except (CriteriaError, ConfigError, OSError, json.JSONDecodeError) as exc:
        raise _criteria_fail(exc) from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise _criteria_fail(ValueError(f"{lead}: invalid lead: {problems}")) from exc
    lead_rec, account, contact, events = payload.records()
    features = OnlineBuilder(spec).row(lead_rec, account, contact, events, payload.as_of_or_now())
    result = check(rules, lead_row(features, lead_rec, account, contact))
    if json_out:
        typer.echo(json.dumps(result.to_dict() | {"lead_id": lead_rec["lead_id"]}, indent=2,
                              default=str))  # fmt: skip
        return
    header = ("criterion", "group", "req", "status", "observed", "why")
    rows = [
        (r.id, r.group, "yes" if r.required else "no", r.status, show_value(r.observed),
         r.sentence)
        for r in result.results
    ]  # fmt: skip
    typer.echo(
        f"lead {lead_rec['lead_id']} against {_shown(rules.origin)} "
        f"(version {rules.file.version})\n"
    )
    typer.echo("\n".join(text_table(header, rows)))
    typer.echo(f"\nverdict: {result.verdict} ({result.summary})")


@criteria_app.command("suggest")
def criteria_suggest(
    data: Annotated[
        Path, typer.Option(help="A leadforge bundle or a canonical CSV/Parquet directory.")
    ],
    last_customers: Annotated[
        int, typer.Option(min=1, help="Size of the recent window: the N most recent customers.")
    ] = 30,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the draft criteria file here (else print it).")
    ] = None,
    min_support: Annotated[
        float, typer.Option(min=0, max=1, help="Least share of converted leads a value needs.")
    ] = 0.05,
    alpha: Annotated[
        float, typer.Option(min=0, max=1, help="Benjamini-Hochberg false discovery rate.")
    ] = 0.05,
    config: ConfigOpt = None,
) -> None:
    """Draft criteria from history: attribute values over-represented among converted leads."""
    from features.criteria import CriteriaError
    from features.criteria_stats import draft_yaml, format_evidence, suggest

    chosen, horizon = _label_options(target, horizon_days)
    crm = load_or_exit(data, config)
    feature_config = load_feature_config(config)
    try:
        found = suggest(
            crm, feature_config, target=chosen.value, horizon_days=horizon,
            last_customers=last_customers, min_support=min_support, alpha=alpha,
        )  # fmt: skip
        draft = draft_yaml(found, feature_config) if found.proposals else None
    except (LabelError, CriteriaError) as exc:
        raise _criteria_fail(exc) from exc
    typer.echo(format_evidence(found))
    if draft is None:
        typer.echo("no draft written")
        return
    if out is None:
        typer.echo("\n" + draft)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft)
    typer.echo(f"\ndraft written to {out}: review it, then use it with --criteria {out}")


@criteria_app.command("report")
def criteria_report(
    data: Annotated[
        Path, typer.Option(help="A leadforge bundle or a canonical CSV/Parquet directory.")
    ],
    criteria: CriteriaOpt = None,
    as_of_days: Annotated[
        float, typer.Option(min=0, help="Check each lead N x 24 h after its creation.")
    ] = 30,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """How leads that passed, failed or were unknown on each criterion actually converted."""
    from features.criteria import CriteriaError, load_criteria
    from features.criteria_stats import format_report, labelled_rows, report

    chosen, horizon = _label_options(target, horizon_days)
    feature_config = load_feature_config(config)
    spec = build_spec(feature_config)
    try:
        rules = load_criteria(criteria, feature_config, spec)
    except CriteriaError as exc:
        raise _criteria_fail(exc) from exc
    crm = load_or_exit(data, config)
    try:
        rows = labelled_rows(
            crm, target=chosen.value, horizon_days=horizon, as_of_days=as_of_days, spec=spec
        )
    except LabelError as exc:
        raise _criteria_fail(exc) from exc
    table = report(rules, rows)
    if json_out:
        typer.echo(table.to_json(orient="records", indent=2))
        return
    heading = (
        f"criteria {_shown(rules.origin)} (version {rules.file.version}) on {crm.source}, "
        f"each lead {as_of_days:g} days after creation; {chosen.value} within {horizon:g} days"
    )
    typer.echo(format_report(table, rules, rows, heading))
