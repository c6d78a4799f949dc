"""Flat lead files: one row per lead, any columns, read through a mapping of column roles.

A mapping (`map.yaml`, drafted by `leadscore data map` for a person to edit) gives each column
one role:

* ``id``, ``created_at`` (none: the file is *undated*), ``source``, ``owner``;
* ``fit``: who the lead is, known when it was created (a canonical column such as
  ``account.industry`` or a field of its own);
* ``engagement``: a total as of the export (visits, time on site): a feature, but not point in
  time, so the model says its metrics are optimistic;
* ``sales_entered``: what a rep typed after working the lead (notes, a quality grade): a
  feature only if the leakage audit lets it through;
* ``label``: the outcome, either a column and its positive values, or a dated outcome column
  (converted at that date, empty = not converted);
* ``ignore``.

The mapped fields become the model's own feature config (stored with the model), so the served
model takes the lead with those fields. A column no role names is listed in a note, never
dropped in silence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.features.config import CustomField, Entity, FeatureConfig
from leadscore.features.contract import CrmData, parse_timestamps
from leadscore.features.readers import read_table
from leadscore.features.schema import (
    CURRENT_STATE_COLUMNS,
    FALSE_TEXT,
    TRUE_TEXT,
    DataContractError,
    schemas,
)
from leadscore.features.sources.canonical import from_frames
from leadscore.features.spec import BUILTIN_FEATURES
from leadscore.features.yamlfile import load_yaml

Role = Literal[
    "id", "created_at", "source", "owner", "fit", "engagement", "sales_entered", "label", "ignore"
]
SINGLE_ROLES = ("id", "created_at", "source", "owner", "label")
UNDATED_START = pd.Timestamp("2000-01-01")  # row order becomes creation order in undated files
NOT_RECORDED = "not_recorded"
_GROUP = {"fit": "fit", "engagement": "engagement", "sales_entered": "sales"}
# canonical attribute columns a flat file's header may name outright: the built-in attribute
# features' names (lead_source -> lead.source) and the contract's column names (industry ->
# account.industry)
def _canonical_names() -> dict[str, tuple[Entity, str]]:
    out: dict[str, tuple[Entity, str]] = {
        "job_title": ("contact", "job_title"), "company_name": ("account", "company_name"),
    }  # fmt: skip
    for f in BUILTIN_FEATURES:
        if f.kind == "attribute":
            entity, column = str(f.source).split(".")
            pair = (cast(Entity, entity), column)
            out[f.name] = out[column] = pair
    return out


_CANONICAL = _canonical_names()
_KNOWN_AT: dict[str, Literal["creation", "export"]] = {
    "fit": "creation", "engagement": "export", "sales_entered": "export",
}  # fmt: skip


class ColumnRole(BaseModel):
    """What one column of the file is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    entity: Entity = "lead"  # fit fields: whose attribute
    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")  # default: from header
    type: Literal["category", "number", "boolean"] | None = None  # default: from the values
    positive: tuple[str, ...] | None = None  # label: the values that mean converted
    dated: bool = False  # label: the column holds the conversion date
    why: str = ""  # why `data map` suggested this role (for the person reviewing it)


class FlatMap(BaseModel):
    """`map.yaml`: the roles of a flat file's columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    date_format: str | None = None
    observation_end: str | None = None  # when the export was taken (dated outcome columns)
    columns: dict[str, ColumnRole]

    @model_validator(mode="after")
    def _one_of_each(self) -> FlatMap:
        for role in SINGLE_ROLES:
            named = [c for c, r in self.columns.items() if r.role == role]
            if len(named) > 1:
                raise ValueError(f"role {role!r} is given to {len(named)} columns {named}; one")
        label = [r for r in self.columns.values() if r.role == "label"]
        if not label:
            raise ValueError("no column has role 'label': say which column holds the outcome")
        if not label[0].dated and not label[0].positive:
            raise ValueError("the label column needs `positive: [...]` values, or `dated: true`")
        return self

    def column_of(self, role: str) -> str | None:
        """The column with a single-column role, if any."""
        return next((c for c, r in self.columns.items() if r.role == role), None)


def load_map(path: Path) -> FlatMap:
    """Read and validate a mapping file (errors name the line)."""
    return load_yaml(path, FlatMap, "column mapping")


def field_name(column: str) -> str:
    """A column header as a field name: `Total Visits` -> total_visits."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower()
    return name if name and name[0].isalpha() else f"col_{name}"


def _words(column: str) -> str:
    """A header as words for sentences ("total_visits" -> "Total visits")."""
    text = " ".join(column.replace("_", " ").split())
    return text[:1].upper() + text[1:]


def infer_type(values: pd.Series) -> Literal["category", "number", "boolean"]:
    """What a column's values read as: boolean, number (95% parse) or category."""
    present = values.dropna().astype(str).str.strip()
    present = present[present != ""]
    if present.empty:
        return "category"
    lowered = set(present.str.lower().unique())
    if lowered <= (TRUE_TEXT | FALSE_TEXT) and len(lowered) <= 2 and not lowered <= {"0", "1"}:
        return "boolean"
    numbers = pd.to_numeric(present, errors="coerce")
    return "number" if numbers.notna().mean() >= 0.95 else "category"


def _canonical(entity: str, name: str, config: FeatureConfig) -> bool:
    table = {"lead": "leads", "account": "accounts", "contact": "contacts"}[entity]
    return any(c.name == name for c in schemas(config)[table].columns)


def _label(frame: pd.DataFrame, column: str, role: ColumnRole, created: pd.Series,
           config: FeatureConfig) -> tuple[pd.Series, list[str]]:  # fmt: skip
    """The conversion moment of each lead (NaT: never), and sanity problems."""
    text = frame[column].astype("string").str.strip()
    empty = {p.strip().lower() for p in config.placeholders}
    values = text.mask(text.str.lower().isin(empty).fillna(False).astype(bool))
    date_format = config.date_format
    if role.dated:
        moments = parse_timestamps(values, date_format)
        bad = values.notna() & moments.isna()
        if bad.any():
            example = values[bad].iloc[0]
            raise DataContractError([
                f"label column {column!r}: {int(bad.sum())} value(s) are not dates (e.g. "
                f"{example!r}); a dated outcome column holds the conversion date, empty = not "
                "converted"
            ])  # fmt: skip
        before = moments < created
        problems = []
        if before.any():
            problems.append(f"label column {column!r}: {int(before.sum())} lead(s) converted "
                            "before they were created (e.g. row "
                            f"{int(np.flatnonzero(before.to_numpy())[0]) + 2}); check the "
                            "created_at and outcome columns")  # fmt: skip
        return moments, problems
    positive = {str(v).strip().lower() for v in role.positive or ()}
    text = values.astype("string").str.strip().str.lower()
    seen = set(text.dropna().unique())
    if not seen & positive:
        raise DataContractError([f"label column {column!r}: no row holds a positive value "
                                 f"{sorted(positive)}; it holds {sorted(seen)[:10]}"])  # fmt: skip
    # a label without a date: converted right after creation, so that the one snapshot taken
    # at creation is a scoring case and its label is final
    won = created + pd.Timedelta(microseconds=1)
    return won.where(text.isin(positive).fillna(False).astype(bool)), []


def load_flat(path: Path, mapping: FlatMap, base: FeatureConfig) -> tuple[CrmData, FeatureConfig]:
    """A flat file as canonical tables, and the feature config its mapping declares."""
    frame = read_table(path)
    missing = [c for c in mapping.columns if c not in frame.columns]
    if missing:
        raise DataContractError([f"{path}: the mapping names column(s) {missing} the file does "
                                 f"not have (it has {list(frame.columns)[:12]}...)"])  # fmt: skip
    unnamed = [c for c in frame.columns if c not in mapping.columns]
    date_format = mapping.date_format or base.date_format
    n = len(frame)
    id_col, created_col = mapping.column_of("id"), mapping.column_of("created_at")
    lead_ids = frame[id_col].astype("string") if id_col else pd.Series(
        [f"row{i + 2}" for i in range(n)], dtype="string")  # fmt: skip
    if created_col:
        created_text = frame[created_col]
    else:  # undated: the rows' order stands for time, one second apart
        created_text = pd.Series((UNDATED_START + pd.to_timedelta(np.arange(n), unit="s"))
                                 .strftime("%Y-%m-%dT%H:%M:%S"))  # fmt: skip
    leads = pd.DataFrame({
        "lead_id": lead_ids, "created_at": created_text,
        "account_id": "a:" + lead_ids, "contact_id": "c:" + lead_ids,
    })  # fmt: skip
    source_col, owner_col = mapping.column_of("source"), mapping.column_of("owner")
    leads["source"] = frame[source_col] if source_col else NOT_RECORDED
    candidates: dict[str, str] = {"lead.source": source_col} if source_col else {}
    if owner_col:
        leads["owner"] = frame[owner_col]
    accounts = pd.DataFrame({"account_id": leads["account_id"]})
    contacts = pd.DataFrame({"contact_id": leads["contact_id"], "account_id": leads["account_id"]})
    tables = {"lead": leads, "account": accounts, "contact": contacts}
    custom: list[CustomField] = []
    for column, role in mapping.columns.items():
        if role.role not in _GROUP:
            continue
        name = role.name or field_name(column)
        entity = role.entity if role.role == "fit" else "lead"
        if role.role == "fit" and "entity" not in role.model_fields_set and name in _CANONICAL:
            entity, name = _CANONICAL[name]  # `industry` is the account's
        tables[entity][name] = frame[column].to_numpy()
        candidates[f"{entity}.{name}"] = column
        if name in CURRENT_STATE_COLUMNS:
            continue  # audited (and blocked) by name, never a feature
        if not _canonical(entity, name, base):
            kind = role.type or infer_type(frame[column])
            custom.append(CustomField(
                name=name, entity=entity, type=kind, group=_GROUP[role.role],
                label=_words(column), template=f"{_words(column)}: {{value}}",
                known_at=_KNOWN_AT[role.role], source_column=column,
                description=f"{role.role.replace('_', ' ')} column {column!r} of {path.name}",
            ))  # fmt: skip
    config = base.model_copy(update={
        "custom_fields": tuple(custom), "builtin_features": "attributes",
        "date_format": date_format,
    })  # fmt: skip
    crm = from_frames(
        {"leads": leads, "accounts": accounts, "contacts": contacts}, config,
        origins=dict.fromkeys(("leads", "accounts", "contacts"), str(path)),
        observation_end=pd.Timestamp.max.floor("D"), source=f"flat:{path}",
    )  # fmt: skip
    label_col = mapping.column_of("label")
    assert label_col is not None  # the mapping's validator guarantees one
    won, problems = _label(frame, label_col, mapping.columns[label_col],
                           crm.leads["created_at"], config)  # fmt: skip
    if problems:
        raise DataContractError([f"{path}: {p}" for p in problems])
    crm.outcomes = pd.DataFrame({"lead_id": crm.leads["lead_id"], "sql_at": pd.NaT,
                                 "won_at": won.to_numpy(), "lost_at": pd.NaT})  # fmt: skip
    crm.has_outcome_dates = True
    crm.outcome_moments_real = mapping.columns[label_col].dated
    crm.snapshot_ages = (0.0,)
    crm.candidates = candidates
    # a flat file has no events or outcome table: its totals and its label stand for them
    crm.notes = [n for n in crm.notes if not n.startswith(("no events", "no outcomes",
                                                             "observation end"))]  # fmt: skip
    crm.observation_end = _observation_end(mapping, won, crm, date_format)
    if unnamed:
        crm.notes.append(f"column(s) no role names, ignored: {', '.join(unnamed)} (give them a "
                         "role in the mapping, `ignore` to silence this)")  # fmt: skip
    if not created_col:
        crm.caveats.append(f"{path.name} is undated: rows are split by their order, not by "
                           "time, so test metrics are optimistic")  # fmt: skip
    exported = [c.source_column for c in custom if c.group == "engagement"]
    if exported:
        crm.caveats.append(f"totals as of the export ({', '.join(map(str, exported))}) may "
                           "include activity after conversion: metrics are optimistic")  # fmt: skip
    return crm, config


def _observation_end(mapping: FlatMap, won: pd.Series, crm: CrmData,
                     date_format: str | None) -> pd.Timestamp:  # fmt: skip
    label_col = mapping.column_of("label")
    dated = label_col is not None and mapping.columns[label_col].dated
    if mapping.observation_end:
        end = parse_timestamps(pd.Series([mapping.observation_end]), date_format).iloc[0]
        if pd.isna(end):
            raise DataContractError([f"observation_end {mapping.observation_end!r} is not a date"])
        return pd.Timestamp(end)
    if not dated:  # a label as of the export: every label is final
        return pd.Timestamp(crm.leads["created_at"].max()) + pd.Timedelta(days=3650)
    last = won.max()
    crm.notes.append(
        f"no observation_end given; the last outcome date was used ({last}), so the newest "
        "leads have no final label: give `observation_end:` in the mapping"
    )
    return pd.Timestamp(last)


# ---------------------------------------------------------------------------------------------
# the draft a person edits

_AFTER_THE_FACT = re.compile(
    r"status|stage|quality|score|rating|reason|note|tag|converted|closed|won|lost", re.I
)
_ENGAGEMENT = re.compile(
    r"visit|view|time|page|click|open|session|download|activity|count|touch|attend|email|"
    r"webinar|call|meeting", re.I,
)  # fmt: skip
_SOURCE = re.compile(r"source|origin|channel", re.I)
_DATE = re.compile(r"date|created|time ?stamp", re.I)


def suggest_role(column: str, values: pd.Series) -> ColumnRole:
    """A role for one column from its name, type and cardinality, with the reason."""
    kind = infer_type(values)
    present = values.dropna()
    unique_share = present.nunique() / max(len(present), 1)
    lowered = column.lower()
    if lowered in ("id", "lead_id") or (re.search(r"\b(id|number|key)\b", lowered)
                                         and unique_share == 1.0):  # fmt: skip
        return ColumnRole(role="id", why="named like an id, one value per row")
    if _AFTER_THE_FACT.search(column):
        return ColumnRole(role="sales_entered", type=kind,
                          why="named like something recorded after the lead was worked: the "
                              "audit decides; `ignore` it if it is")  # fmt: skip
    if "owner" in lowered:
        return ColumnRole(role="owner", why="named like the lead's owner")
    if _SOURCE.search(column) and kind == "category":
        return ColumnRole(role="source", why="named like the lead's source")
    if kind == "number" and _ENGAGEMENT.search(column):
        return ColumnRole(role="engagement", type="number",
                          why="a number named like activity: a total as of the export")  # fmt: skip
    if kind == "category" and unique_share > 0.5 and present.nunique() > 50:
        return ColumnRole(role="ignore", why="mostly distinct text (names, e-mails, free text)")
    return ColumnRole(role="fit", type=kind,
                      why=f"a {kind} column: an attribute known when the lead was created")


def draft_map(
    path: Path, label: str, positive: list[str] | None = None, created_at: str | None = None
) -> str:
    """A mapping file for `path` with suggested roles and their reasons, for a person to edit."""
    import yaml

    frame = read_table(path)
    for name in (label, created_at):
        if name is not None and name not in frame.columns:
            raise DataContractError([f"{path}: no column {name!r}; it has {list(frame.columns)}"])
    roles: dict[str, dict[str, object]] = {}
    taken: set[str] = set()
    for column in frame.columns:
        if column == label:
            role = ColumnRole(role="label", positive=tuple(positive) if positive else None,
                              dated=not positive, why="given with --label")  # fmt: skip
        elif column == created_at:
            role = ColumnRole(role="created_at", why="given with --created-at")
        else:
            role = suggest_role(column, frame[column])
            if role.role in SINGLE_ROLES and role.role in taken:
                role = ColumnRole(role="fit", type=infer_type(frame[column]),
                                  why=f"another column is already the {role.role}")  # fmt: skip
        taken.add(role.role)
        roles[column] = role.model_dump(exclude_defaults=True)
    FlatMap.model_validate({"columns": roles})  # the draft must load
    head = (f"# Column roles of {path.name}, drafted by `leadscore data map`: review each one.\n"
            "# roles: id, created_at, source, owner, fit (known when the lead was created),\n"
            "#   engagement (a total as of the export), sales_entered (typed by a rep after\n"
            "#   working the lead: the leakage audit blocks what encodes the outcome), label,\n"
            "#   ignore. `why` says why a role was suggested.\n")  # fmt: skip
    body = {"file": path.name, "columns": roles}
    if created_at is None:
        head += "# no created_at column: the file is undated (split by row order: optimistic)\n"
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


# ---------------------------------------------------------------------------------------------
# the writer: a world in the flat shape, traps included (tests and demos)

_NOTES_WON = ("Budget approved, moving to contract", "Strong fit, champion engaged",
              "Verbal yes from the CFO")  # fmt: skip
_NOTES_LOST = ("Not interested", "No budget this year", "Went with a competitor",
               "Unresponsive after demo", "Wrong contact")  # fmt: skip


def write_flat(crm: CrmData, out: Path, horizon_days: float = 90, seed: int = 0) -> Path:
    """One row per lead as a CRM's lead list would export it: attributes, engagement totals as
    of the export (after conversion too), a rep's notes and a quality grade derived from the
    outcome (the planted leak the audit must block), and a Converted column."""
    rng = np.random.default_rng(seed)
    leads = crm.leads.reset_index(drop=True)
    accounts = crm.accounts.set_index("account_id").reindex(leads["account_id"])
    contacts = crm.contacts.set_index("contact_id").reindex(leads["contact_id"])
    events = crm.events

    def total(kind: str, column: str | None = None, subtype: str | None = None) -> np.ndarray:
        mask = events["type"] == kind
        if subtype is not None:
            mask &= events["subtype"] == subtype
        part = events[mask]
        values = part.groupby("lead_id")[column].sum() if column else part.groupby("lead_id").size()
        return leads["lead_id"].map(values).fillna(0).to_numpy()

    won_at = leads["lead_id"].map(crm.outcomes.set_index("lead_id")["won_at"])
    converted = (won_at <= leads["created_at"] + pd.Timedelta(days=horizon_days)).to_numpy()
    flip = rng.uniform(size=len(leads)) < 0.05  # a rep's notes are nearly always right
    truthful = converted ^ flip
    notes = np.where(truthful, rng.choice(_NOTES_WON, len(leads)),
                     rng.choice(_NOTES_LOST, len(leads)))  # fmt: skip
    good, poor = ["High in Relevance", "Might be"], ["Not Sure", "Low in Relevance", "Worst"]
    quality = np.where(truthful, rng.choice(good, len(leads)), rng.choice(poor, len(leads)))
    frame = pd.DataFrame({
        "Lead Number": leads["lead_id"],
        "Created On": leads["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "Lead Source": leads["source"],
        "Lead Owner": leads.get("owner"),
        "Industry": accounts["industry"].to_numpy(),
        "Region": accounts["region"].to_numpy(),
        "Company Size": accounts["employee_band"].to_numpy(),
        "Revenue Band": accounts["revenue_band"].to_numpy(),
        "Job Title": contacts["job_title"].to_numpy() if "job_title" in contacts else None,
        "Seniority": contacts["seniority"].to_numpy(),
        "Total Visits": total("web_session"),
        "Page Views": total("web_session", "page_views"),
        "Pricing Page Views": total("web_session", "pricing_page_views"),
        "Email Touches": total("touch", subtype="email"),
        "Webinars Attended": total("touch", subtype="webinar"),
        "Sales Notes": notes,
        "Lead Quality": quality,
        "Converted": np.where(converted, "Yes", "No"),
    })  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return out
