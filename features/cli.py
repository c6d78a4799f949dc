"""`leadscore init`, `data ...`, `features ...` and `criteria ...`: thin commands over features.

Each command parses its options and calls the package; heavy libraries are imported inside the
commands, so that `leadscore --help` and `criteria check` start at once. Errors are raised and
printed as one line each by the shared command group (:mod:`leadscore.features.console`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer

from leadscore.features.console import group, note, out, parse_moment, print_blocks, text_table
from leadscore.features.errors import UsageProblem
from leadscore.features.sql_source import (
    DEFAULT_CHUNKS,
    ChunkRowsOpt,
    EngineOpt,
    MemoryLimitOpt,
    engine_name,
)

if TYPE_CHECKING:  # annotations only: these modules load pandas, which --help must not
    import pandas as pd
    from rich.table import Table

    from leadscore.features.config import FeatureConfig
    from leadscore.features.contract import CrmData

data_app = group("Data in: demo worlds and one lead as an API body.")
features_app = group("Point-in-time feature snapshots.")
criteria_app = group(
    "SQL criteria: the written definition, its check, a draft from history, a report."
)

RECIPE = "b2b_saas_procurement_v1"


class Difficulty(StrEnum):
    intro = "intro"
    intermediate = "intermediate"
    advanced = "advanced"


class Mode(StrEnum):
    research_instructor = "research_instructor"
    student_public = "student_public"


class Format(StrEnum):
    leadforge = "leadforge"
    canonical = "canonical"
    salesforce = "salesforce"
    hubspot = "hubspot"
    flat = "flat"


class TargetOpt(StrEnum):
    won = "won"
    sql = "sql"


DataOpt = Annotated[
    Path, typer.Option(help="A leadforge bundle or a directory of canonical CSV/Parquet tables.")
]
MapOpt = Annotated[
    Path | None,
    typer.Option("--map", help="Column roles of a flat lead file (`leadscore data map`)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option(help="features.yaml (default: in the config directory).")
]
CriteriaOpt = Annotated[
    Path | None, typer.Option(help="Criteria file (default: sql_criteria.yaml in the config dir).")
]
TargetDefaultOpt = Annotated[
    TargetOpt | None,
    typer.Option(help="What counts as converting (default: label.target in training.yaml)."),
]
HorizonOpt = Annotated[
    float | None,
    typer.Option(help="Conversion horizon in days (default: label.horizon_days in training.yaml)."),
]
FeedbackOpt = Annotated[
    Path | None,
    typer.Option(help="The reps' verdicts (`leadscore handoff export-feedback`): compare the "
                      "criteria with why reps rejected the leads handed over."),
]  # fmt: skip
AS_OF_DAYS = 30.0  # when `criteria report` checks a lead, unless told: 30 days after creation


def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the config files.")] = Path(
        "leadscore-config"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite files that are already there.")] = False,
) -> None:
    """Write editable copies of the default config files; use them with LEADSCORE_CONFIG_DIR."""
    import shutil

    from leadscore.features.configdir import CONFIG_ENV, CONFIG_FILES, packaged_config_dir

    source = packaged_config_dir()
    existing = [name for name in CONFIG_FILES if (directory / name).exists()]
    if existing and not force:
        raise UsageProblem(
            f"{directory} already has {', '.join(existing)}; edit those, or pass --force to "
            "overwrite them with the defaults"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name in CONFIG_FILES:
        shutil.copyfile(source / name, directory / name)
    console = out()
    console.print(f"wrote {', '.join(CONFIG_FILES)} to {directory}", markup=False)
    console.print(
        f"use them with: export {CONFIG_ENV}={directory.resolve()}  (or leadscore --config-dir "
        f"{directory} ...)",
        markup=False,
    )


@data_app.command("generate")
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the bundle to.")],
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
    shape: Annotated[
        Format,
        typer.Option(
            "--format",
            help="The bundle itself, or the world written as canonical "
            "tables, a Salesforce or HubSpot export (traps included) "
            "or a flat lead file (OUT is then a .csv).",
        ),
    ] = Format.leadforge,
) -> None:
    """Generate a simulated B2B SaaS CRM (a leadforge world) for demos and tests, in the shape
    of a real source."""
    try:
        from leadforge.api import Generator
    except ImportError:
        raise UsageProblem(
            "demo data needs leadforge, an optional extra: pip install 'leadscore[demo]'"
        ) from None
    import tempfile

    from leadscore.features.console import err

    if shape != Format.leadforge and mode != Mode.research_instructor:
        raise UsageProblem(f"--format {shape.value} writes the full dated history: it needs "
                           "--mode research_instructor")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        target = out_dir if shape == Format.leadforge else Path(tmp) / "bundle"
        with err().status(f"simulating {leads} leads (seed {seed}, {difficulty.value}) ..."):
            gen = Generator.from_recipe(RECIPE, seed=seed, exposure_mode=mode.value)
            bundle = gen.generate(n_leads=leads, difficulty=difficulty.value)
            target.parent.mkdir(parents=True, exist_ok=True)
            bundle.save(str(target))
        if shape != Format.leadforge:
            _write_as(shape, target, out_dir)
    out().print(f"wrote a leadforge world ({mode.value}, {leads} leads) as {shape.value} to "
                f"{out_dir}", markup=False)  # fmt: skip


def _write_as(shape: Format, bundle: Path, out_path: Path) -> None:
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_source
    from leadscore.features.sources.canonical import write_canonical
    from leadscore.features.sources.flat import write_flat

    config = load_feature_config()
    crm = load_source(bundle, config)
    if shape == Format.canonical:
        write_canonical(crm, out_path)
    elif shape == Format.salesforce:
        from leadscore.features.sources.salesforce import write_salesforce

        write_salesforce(crm, out_path, config)
    elif shape == Format.hubspot:
        from leadscore.features.sources.hubspot import write_hubspot

        write_hubspot(crm, out_path, config)
    else:
        write_flat(crm, out_path)


def _pairs(given: list[str], option: str, example: str) -> list[tuple[str, str]]:
    """`KEY=VALUE` option values as pairs (UsageProblem naming the option otherwise)."""
    pairs = []
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageProblem(f"{option} {item!r}: expected {example}")
        pairs.append((key.strip(), value.strip()))
    return pairs


@data_app.command("shift")
def shift(
    data: Annotated[Path, typer.Option("--data", help="A leadforge bundle directory.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the shifted bundle.")],
    days: Annotated[int, typer.Option(help="Days every date moves (91: the next quarter).")] = 91,
    source_mix: Annotated[
        list[str] | None,
        typer.Option(
            "--source-mix",
            help="SOURCE=SHARE (repeat; shares sum to 1): keep the "
            "largest sample of leads with this source mix.",
        ),
    ] = None,
    band: Annotated[
        list[str] | None,
        typer.Option("--band", help="COLUMN:OLD=NEW (repeat): replace a category value."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the lead sample.")] = 0,
) -> None:
    """A leadforge bundle as another quarter: every date moved, optionally another source mix
    and shifted bands (to try drift and the quarterly review)."""
    from leadscore.features.sources.quarters import shift_bundle

    mix: dict[str, float] | None = None
    if source_mix:
        mix = {}
        for name, share in _pairs(
            source_mix, "--source-mix", "SOURCE=SHARE, e.g. sdr_outbound=0.5"
        ):
            try:
                mix[name] = float(share)
            except ValueError:
                raise UsageProblem(
                    f"--source-mix {name}={share}: the share must be a number"
                ) from None
    bands: dict[str, dict[str, str]] = {}
    for key, new_value in _pairs(
        band or [], "--band", "COLUMN:OLD=NEW, e.g. employee_band:200-499=500-999"
    ):
        column, sep, old = key.partition(":")
        if not sep or not column or not old:
            raise UsageProblem(f"--band {key}={new_value}: expected COLUMN:OLD=NEW")
        bands.setdefault(column, {})[old] = new_value
    report = shift_bundle(data, out_dir, days=days, source_mix=mix, band_shift=bands or None,
                          seed=seed)  # fmt: skip
    print_lines(report.lines())
    out().print(f"wrote the shifted bundle to {out_dir}", markup=False)


@data_app.command("subsample")
def subsample(
    data: Annotated[Path, typer.Option("--data", help="A leadforge bundle directory.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the smaller bundle.")],
    base_rate: Annotated[
        float, typer.Option(help="Conversion rate of the result (below the bundle's own).")
    ],
    seed: Annotated[int, typer.Option(help="Seed of the converters kept.")] = 0,
) -> None:
    """A leadforge bundle with fewer converters: every other lead kept, a random share of the
    converted ones, so that it converts at --base-rate (a low-base-rate world)."""
    from leadscore.features.sources.quarters import subsample_bundle

    report = subsample_bundle(data, out_dir, base_rate=base_rate, seed=seed)
    print_lines(report.lines())
    out().print(f"wrote the subsampled bundle to {out_dir}", markup=False)


def print_lines(lines: list[str]) -> None:
    """Print lines as they are (no rich markup)."""
    for line in lines:
        out().print(line, markup=False, highlight=False, soft_wrap=True)


@data_app.command("convert")
def convert(
    data: DataOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the canonical tables.")],
    mapping: MapOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Any source as canonical Parquet tables (what every engine reads the same way)."""
    from leadscore.features.sources.canonical import write_canonical

    crm, _ = _load(data, config, mapping)
    write_canonical(crm, out_dir)
    out().print(f"wrote {len(crm.leads):,} leads and {len(crm.events):,} events as canonical "
                f"Parquet to {out_dir}", markup=False)  # fmt: skip


def _load(data: Path, config: Path | None, mapping: Path | None) -> tuple[CrmData, FeatureConfig]:
    """The source and the feature config to read it with (a flat file's mapping declares its
    own fields); its notes and caveats shown once, as it is read."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources import load_data

    note(f"reading {data} ...")
    crm, feature_config = load_data(data, mapping, load_feature_config(config))
    for line in crm.notes:
        note(f"note: {line}")
    for line in crm.caveats:
        note(f"caveat: {line}")
    return crm, feature_config


@data_app.command("lead")
def export_lead(
    data: DataOpt,
    lead_id: Annotated[str | None, typer.Option(help="The lead (default: the first one).")] = None,
    as_of_days: Annotated[float, typer.Option(help="History up to N x 24 h after creation.")] = 30,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="JSON file (default: print).")
    ] = None,
    config: ConfigOpt = None,
    mapping: MapOpt = None,
) -> None:
    """Write one lead as the JSON body the scoring API and `criteria check` take."""
    import json

    import pandas as pd

    from leadscore.features.bodies import lead_bodies

    crm, feature_config = _load(data, config, mapping)
    ids = crm.leads["lead_id"]
    chosen = lead_id if lead_id is not None else str(ids.iloc[0])
    if chosen not in set(ids):
        raise UsageProblem(f"--lead-id: {data} has no lead {chosen!r} (e.g. {ids.iloc[0]!r})")
    created = crm.leads.loc[crm.leads["lead_id"] == chosen, "created_at"].iloc[0]
    (body,) = lead_bodies(crm, feature_config, [chosen],
                          [created + pd.Timedelta(days=as_of_days)])  # fmt: skip
    text = json.dumps(body, indent=2)
    if out_file is None:
        typer.echo(text)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text + "\n")
    n_events = len(body["events"])
    note(f"wrote lead {chosen} ({n_events} events up to {body['as_of']}) to {out_file}")


@features_app.command("build")
def build(
    data: DataOpt,
    out_file: Annotated[
        str, typer.Option("--out", help="Parquet file for the snapshot rows, or DIR/ (parts).")
    ],
    as_of_days: Annotated[
        float | None, typer.Option(help="Snapshot each lead N x 24 h after its creation.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot every lead at one moment (ISO-8601).")
    ] = None,
    config: ConfigOpt = None,
    mapping: MapOpt = None,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    engine: EngineOpt = "auto",
    memory_limit: MemoryLimitOpt = None,
    chunk_rows: ChunkRowsOpt = DEFAULT_CHUNKS,
) -> None:
    """Write one feature row per lead, built only from history dated at or before as_of."""
    if (as_of_days is None) == (as_of is None):
        raise UsageProblem("give exactly one of --as-of-days N or --as-of TIMESTAMP")
    moment = parse_moment(as_of, "--as-of") if as_of is not None else None

    import pandas as pd

    from leadscore.features.engines import choose_engine
    from leadscore.features.sinks import ParquetSink

    which = choose_engine(engine_name(engine), data)
    if which != "local":
        _build_on_sql(which, data, out_file, as_of_days, moment, config, mapping, memory_limit,
                      chunk_rows)  # fmt: skip
        return

    from leadscore.features.snapshot import as_of_after_creation, snapshot
    from leadscore.features.spec import build_spec

    crm, feature_config = _load(data, config, mapping)
    spec = build_spec(feature_config)
    leads = crm.leads
    if moment is not None:
        not_yet = leads["created_at"] > pd.Timestamp(moment)
        if not_yet.any():
            note(f"{int(not_yet.sum())} lead(s) created after {moment} left out (not yet leads)")
        crm.leads = leads = leads[~not_yet].reset_index(drop=True)
        when = pd.Series(pd.Timestamp(moment), index=leads.index)
    else:
        when = as_of_after_creation(leads, float(str(as_of_days)))
    rows = snapshot(crm, spec, when)
    sink = ParquetSink(out_file)
    sink.write(rows)
    sink.close()
    chosen, horizon = _label_options(target, horizon_days)
    out().print(_summary(crm, rows, len(spec), Path(out_file), chosen.value, horizon))


def _build_on_sql(
    engine: Literal["duckdb", "spark"], data: Path, out_file: str, as_of_days: float | None,
    moment: Any, config: Path | None, mapping: Path | None,
    memory_limit: str | None, chunk_rows: int,
) -> None:  # fmt: skip
    """`features build` on DuckDB or Spark: the snapshot streamed to `out_file` in chunks."""
    import pandas as pd

    from leadscore.features.config import load_feature_config
    from leadscore.features.engines import (
        ROW,
        moments_view,
        ordered_snapshot_sql,
        snapshot_batches,
    )
    from leadscore.features.sinks import ParquetSink
    from leadscore.features.spec import build_spec
    from leadscore.features.sql_source import sql_source

    feature_config = load_feature_config(config)
    spec = build_spec(feature_config)
    with sql_source(engine, data, mapping, feature_config, memory_limit, note) as sql:
        moments_view(sql, as_of_days, None if moment is None else pd.Timestamp(moment))
        rows_view = "moments"
        if moment is not None:  # as the local path: leads created after the moment are left out
            d = sql.dialect
            later = f"{d.epoch.format('l.created_at')} > {d.epoch.format('m.as_of')}"
            sql.view("built", f"SELECT m.lead_id, m.as_of, m.{ROW} FROM moments m JOIN leads l "
                              f"ON l.lead_id = m.lead_id WHERE NOT ({later})")  # fmt: skip
            ((not_yet,),) = sql.rows(f"SELECT count(*) FROM moments m JOIN leads l "
                                     f"ON l.lead_id = m.lead_id WHERE {later}")  # fmt: skip
            if not_yet:
                note(f"{int(not_yet)} lead(s) created after {moment} left out (not yet leads)")
            rows_view = "built"
        if engine == "spark":  # written by Spark, as a directory: nothing through the driver
            from leadscore.features.spark import SparkEngine

            out_file = out_file.rstrip("/") + "/"
            query = ordered_snapshot_sql(sql, spec, rows_view)
            written = cast(SparkEngine, sql).write_parquet(query, out_file)
        else:
            sink = ParquetSink(out_file)
            for rows in snapshot_batches(sql, spec, rows_view, chunk_rows):
                sink.write(rows)
            sink.close()
            written = sink.rows
        if not written:
            raise UsageProblem(f"{data}: no lead to build a snapshot of")
    out().print(text_table(("", ""), [
        ("snapshot file", str(out_file)), ("source", str(data)), ("engine", engine),
        ("leads", f"{written:,}"), ("features", str(len(spec))),
    ]))  # fmt: skip


def _summary(
    crm: CrmData, rows: pd.DataFrame, n_features: int, path: Path, target: str, horizon: float
) -> Table:
    from leadscore.features.labels import LabelError, exclusion_counts, label_snapshots

    lines: list[tuple[str, str]] = [
        ("snapshot file", str(path)),
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
    return text_table(("", ""), lines)


@features_app.command("list")
def list_features(config: ConfigOpt = None) -> None:
    """Print the feature spec as a Markdown table (the docs are derived from the spec)."""
    from leadscore.features.config import load_feature_config
    from leadscore.features.spec import build_spec, markdown_table

    typer.echo(markdown_table(build_spec(load_feature_config(config))))


def _label_options(target: TargetOpt | None, horizon_days: float | None) -> tuple[TargetOpt, float]:
    from leadscore.features.criteria.evidence import label_defaults

    default_target, default_horizon = label_defaults()
    chosen = target or TargetOpt(default_target)
    return chosen, horizon_days if horizon_days is not None else default_horizon


def _shown(origin: str) -> str:
    path = Path(origin)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else origin


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

    from leadscore.features.config import load_feature_config
    from leadscore.features.criteria.check import check, lead_row
    from leadscore.features.criteria.rules import load_criteria, show_value
    from leadscore.features.online import OnlineBuilder
    from leadscore.features.payload import payload_model, validate_lead
    from leadscore.features.spec import build_spec

    feature_config = load_feature_config(config)
    spec = build_spec(feature_config)
    rules = load_criteria(criteria, feature_config, spec)
    try:
        body = json.loads(lead.read_text())
    except OSError as exc:
        raise UsageProblem(f"--lead {lead}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"--lead {lead}: not JSON ({exc})") from None
    parsed = validate_lead(payload_model(feature_config), body, origin=str(lead))
    features = OnlineBuilder(spec).row(parsed.lead, parsed.account, parsed.contact,
                                       parsed.events, parsed.as_of)  # fmt: skip
    result = check(rules, lead_row(features, parsed.lead, parsed.account, parsed.contact))
    lead_id = parsed.lead["lead_id"]
    if json_out:
        typer.echo(json.dumps(result.to_dict() | {"lead_id": lead_id,
                                                   "ignored_fields": list(parsed.ignored_fields)},
                              indent=2, default=str))  # fmt: skip
        return
    header = ("criterion", "group", "req", "status", "observed", "why")
    rows = [
        (r.id, r.group, "yes" if r.required else "no", r.status, show_value(r.observed),
         r.sentence)
        for r in result.results
    ]  # fmt: skip
    console = out()
    console.print(f"lead {lead_id} against {_shown(rules.origin)} (version {rules.file.version})",
                  markup=False)  # fmt: skip
    console.print(text_table(header, rows))
    console.print(f"verdict: {result.verdict} ({result.summary})", markup=False)
    if parsed.ignored_fields:
        note(f"ignored (no feature reads them): {', '.join(parsed.ignored_fields)}")


@criteria_app.command("suggest")
def criteria_suggest(
    data: DataOpt,
    last_customers: Annotated[
        int, typer.Option(min=1, help="Size of the recent window: the N most recent customers.")
    ] = 30,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the draft criteria file here (else print it)."),
    ] = None,
    min_support: Annotated[
        float, typer.Option(min=0, max=1, help="Least share of converted leads a value needs.")
    ] = 0.05,
    alpha: Annotated[
        float, typer.Option(min=0, max=1, help="Benjamini-Hochberg false discovery rate.")
    ] = 0.05,
    config: ConfigOpt = None,
    mapping: MapOpt = None,
    feedback: FeedbackOpt = None,
    criteria: Annotated[
        Path | None,
        typer.Option(
            help="With --feedback: the criteria to hold against the verdicts "
            "(default: sql_criteria.yaml in the config dir)."
        ),
    ] = None,
) -> None:
    """Draft criteria from history: attribute values over-represented among converted leads."""
    from leadscore.features.criteria.draft import draft_yaml, format_evidence
    from leadscore.features.criteria.evidence import suggest

    verdicts = _verdicts(feedback)
    chosen, horizon = _label_options(target, horizon_days)
    crm, feature_config = _load(data, config, mapping)
    found = suggest(
        crm, feature_config, target=chosen.value, horizon_days=horizon,
        last_customers=last_customers, min_support=min_support, alpha=alpha,
    )  # fmt: skip
    draft = draft_yaml(found, feature_config) if found.proposals else None
    if verdicts is not None:
        found.notes += _feedback_notes(crm, feature_config, verdicts, criteria, draft)
        draft = draft_yaml(found, feature_config) if found.proposals else None
    print_blocks(format_evidence(found))
    console = out()
    if draft is None:
        console.print("no draft written")
        return
    if out_file is None:
        typer.echo("\n" + draft)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(draft)
    console.print(f"draft written to {out_file}: review it, then use it with --criteria "
                  f"{out_file}", markup=False)  # fmt: skip


@criteria_app.command("report")
def criteria_report(
    data: DataOpt,
    criteria: CriteriaOpt = None,
    as_of_days: Annotated[
        float, typer.Option(min=0, help="Check each lead N x 24 h after its creation.")
    ] = AS_OF_DAYS,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    config: ConfigOpt = None,
    mapping: MapOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    feedback: FeedbackOpt = None,
) -> None:
    """How leads that passed, failed or were unknown on each criterion actually converted."""
    from leadscore.features.criteria.draft import format_feedback, format_report
    from leadscore.features.criteria.evidence import (
        feedback_report,
        feedback_rows,
        labelled_rows,
        report,
    )
    from leadscore.features.criteria.rules import load_criteria
    from leadscore.features.feedback import load_handoff_config
    from leadscore.features.spec import build_spec

    verdicts = _verdicts(feedback)
    chosen, horizon = _label_options(target, horizon_days)
    crm, feature_config = _load(data, config, mapping)
    spec = build_spec(feature_config)
    rules = load_criteria(criteria, feature_config, spec)
    rows = labelled_rows(
        crm, target=chosen.value, horizon_days=horizon, as_of_days=as_of_days, spec=spec
    )
    table = report(rules, rows)
    evidence = None
    if verdicts is not None:
        found = feedback_rows(crm, verdicts, as_of_days=as_of_days, spec=spec)
        evidence = feedback_report(rules, found, load_handoff_config())
    if json_out:
        if evidence is None:
            typer.echo(table.to_json(orient="records", indent=2))
            return
        import json

        def records(frame: pd.DataFrame) -> object:
            return json.loads(frame.to_json(orient="records"))

        typer.echo(json.dumps({
            "report": records(table),
            "feedback": {
                "file": str(feedback), "leads": evidence.leads, "accepted": evidence.accepted,
                "rejected": evidence.rejected, "not_in_data": evidence.not_in_data,
                "contradictions": records(evidence.contradictions),
                "acceptance": records(evidence.acceptance),
            },
        }, indent=2))  # fmt: skip
        return
    heading = (
        f"criteria {_shown(rules.origin)} (version {rules.file.version}) on {crm.source}, "
        f"each lead {as_of_days:g} days after creation; {chosen.value} within {horizon:g} days"
    )
    print_blocks(format_report(table, rules, rows, heading))
    if evidence is not None:
        print_blocks(["", *format_feedback(evidence, (
            f"the reps' verdicts ({feedback}): each lead checked {as_of_days:g} days after "
            "creation, or at its verdict if that came first"))])  # fmt: skip


def _verdicts(feedback: Path | None) -> pd.DataFrame | None:
    """The feedback file, read and checked before the data (a bad file fails at once)."""
    if feedback is None:
        return None
    from leadscore.features.feedback import load_feedback, load_handoff_config

    verdicts = load_feedback(feedback, load_handoff_config())
    if verdicts.attrs.get("superseded"):
        note(f"{feedback}: {verdicts.attrs['superseded']:,} earlier verdict(s) replaced by a "
             "later one for the same lead")  # fmt: skip
    return verdicts


def _feedback_notes(
    crm: CrmData,
    config: FeatureConfig,
    verdicts: pd.DataFrame,
    criteria: Path | None,
    draft: str | None,
) -> list[str]:
    """`criteria suggest --feedback`: the criteria groups, current and drafted, that pass many
    leads the reps rejected for the group's own reason."""
    from leadscore.features.criteria.evidence import (
        contradiction_notes,
        feedback_report,
        feedback_rows,
    )
    from leadscore.features.criteria.rules import CriteriaError, load_criteria, parse_criteria
    from leadscore.features.feedback import load_handoff_config
    from leadscore.features.spec import build_spec

    spec = build_spec(config)
    taxonomy = load_handoff_config()
    rows = feedback_rows(crm, verdicts, as_of_days=AS_OF_DAYS, spec=spec)
    try:
        rules = load_criteria(criteria, config, spec)
    except CriteriaError as exc:
        if criteria is not None:
            raise
        rules = None
        notes = [f"reps' verdicts: not compared with the criteria: {exc.lines()[0]} (give "
                 "--criteria)"]  # fmt: skip
    if rules is not None:
        ev = feedback_report(rules, rows, taxonomy)
        notes = [
            f"reps' verdicts: {ev.leads:,} lead(s) in the data, {ev.rejected:,} rejected; "
            f"{_shown(rules.origin)} checked {AS_OF_DAYS:g} days after creation or at the "
            "verdict (`criteria report --feedback` has the detail)",
            *contradiction_notes(ev),
        ]
    if draft is not None:
        drafted = parse_criteria(draft, config, spec, origin="draft")
        notes += [f"this draft: {n}" for n in contradiction_notes(
            feedback_report(drafted, rows, taxonomy))]  # fmt: skip
    return notes


@data_app.command("map")
def map_columns(
    file: Annotated[Path, typer.Argument(help="A flat lead file: CSV, Parquet or Excel.")],
    label: Annotated[str, typer.Option(help="The column that holds the outcome.")],
    positive: Annotated[
        list[str] | None,
        typer.Option(
            help="A value of --label that means converted (repeat for several); "
            "without it --label holds the conversion date."
        ),
    ] = None,
    created_at: Annotated[
        str | None, typer.Option(help="The column with each lead's creation date, if any.")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the draft here (default: print).")
    ] = None,
) -> None:
    """Draft the column roles of a flat lead file, with why each was suggested, to edit."""
    from leadscore.features.sources.flat import draft_map

    text = draft_map(file, label, positive, created_at)
    if out_file is None:
        typer.echo(text)
        return
    out_file.write_text(text)
    note(f"wrote {out_file}: review the roles, then use it with --data {file} --map {out_file}")


@data_app.command("audit")
def audit(
    data: DataOpt,
    mapping: MapOpt = None,
    config: ConfigOpt = None,
    target: TargetDefaultOpt = None,
    horizon_days: HorizonOpt = None,
    allow_column: Annotated[
        list[str] | None,
        typer.Option("--allow-column", help="Keep this blocked column (repeat for several)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the audit as JSON.")] = False,
) -> None:
    """The leakage audit: which undated columns encode the outcome (training runs it too)."""
    import json

    from leadscore.features.audit import audit_source

    chosen, horizon = _label_options(target, horizon_days)
    crm, feature_config = _load(data, config, mapping)
    result = audit_source(crm, feature_config, target=chosen.value, horizon_days=horizon,
                          allow=allow_column or ())  # fmt: skip
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    print_blocks([
        f"{result.leads:,} leads, {result.converted:,} converted ({result.base_rate:.1%}); "
        f"{chosen.value} within {horizon:g} days",
        text_table(("column", "verdict", "CV AUC", "missing", "why"), result.rows()),
        f"blocked: {', '.join(c.column for c in result.refused()) or 'none'}"
        + ("  (training leaves them out unless kept: --allow-column NAME)" if result.refused()
           else ""),
    ])  # fmt: skip
