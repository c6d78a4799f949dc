"""A directory of CSV or Parquet files already in canonical shape.

Files: `accounts`, `contacts`, `leads`, `events`, `outcomes` (each `.parquet` or `.csv`).
An optional `source.yaml` may give `observation_end` (when the export was taken); otherwise
it is the latest timestamp anywhere in the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData, parse_timestamps, validate
from leadscore.features.readers import EmptyFileError, read_table
from leadscore.features.schema import TABLES, DataContractError, schemas
from leadscore.features.yamlfile import load_yaml


class SourceMeta(BaseModel):
    """`source.yaml`: what the export says about itself."""

    model_config = ConfigDict(extra="forbid")

    observation_end: datetime | None = Field(
        default=None, description="When the export was taken (ISO-8601 date or date-time)."
    )


def _find(root: Path, table: str) -> Path | None:
    for suffix in (".parquet", ".csv", ".xlsx", ".tsv", ".txt"):
        candidate = root / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_canonical(root: Path, config: FeatureConfig) -> CrmData:
    """Load and validate a canonical directory (only `leads` is required)."""
    found = {t: _find(root, t) for t in TABLES}
    if found["leads"] is None:
        raise DataContractError(
            [
                f"{root}: no leads file (leads.csv, .parquet or .xlsx); a canonical directory "
                f"holds one file per table {list(TABLES)}, only leads required (or give a "
                "leadforge bundle, a Salesforce or HubSpot export, or a flat file with --map)"
            ]
        )
    paths = {t: p for t, p in found.items() if p is not None}
    frames, empty = {}, []
    for table, path in paths.items():
        try:
            frames[table] = read_table(path)
        except EmptyFileError:
            if table == "leads":
                raise
            empty.append(f"{path} has no data rows: read as no {table} table")
    meta_file = root / "source.yaml"
    end = None
    if meta_file.is_file():
        meta = load_yaml(meta_file, SourceMeta, "source description")
        if meta.observation_end is not None:
            end = parse_timestamps(pd.Series([meta.observation_end])).iloc[0]
    crm = from_frames(
        frames,
        config,
        origins={t: str(p) for t, p in paths.items()},
        observation_end=end,
        source=f"canonical:{root}",
    )
    crm.notes[:0] = empty
    return crm


def from_frames(
    raw: Mapping[str, pd.DataFrame],
    config: FeatureConfig,
    *,
    origins: Mapping[str, str] | None = None,
    observation_end: pd.Timestamp | None = None,
    source: str = "frames",
) -> CrmData:
    """Validate in-memory canonical frames into :class:`CrmData`.

    Without `observation_end`, the latest timestamp anywhere in the source is used (and
    noted): labels whose horizon ends after it are not final.
    """
    tables = validate(raw, config, origins)
    notes = [
        f"no {name} table: {why}"
        for name, why in (
            ("accounts", "account fit fields are empty"),
            ("contacts", "contact fit fields are empty"),
            ("events", "no engagement or sales features"),
            ("outcomes", "nothing to learn from (scoring only)"),
        )
        if name not in raw
    ]
    known = schemas(config)
    for name, frame in raw.items():
        if name == "outcomes":
            continue  # where adapters park current state on purpose (stage, score): no feature
        named = {c.name for c in known[name].columns} if name in known else set()
        extra = [c for c in frame.columns if c not in named]
        if extra:  # carried, read by no feature: said, never dropped in silence
            notes.append(f"{name}: column(s) the contract does not name, read by no feature: "
                         f"{', '.join(map(str, extra))}")  # fmt: skip
    if observation_end is None:
        stamps = [tables["leads"]["created_at"].max(), tables["events"]["timestamp"].max()]
        stamps += [tables["outcomes"][c].max() for c in ("sql_at", "won_at", "lost_at")]
        observation_end = max(s for s in stamps if pd.notna(s))
        notes.append(
            f"observation end taken as the latest timestamp in the source: {observation_end}"
        )
    return CrmData(
        accounts=tables["accounts"],
        contacts=tables["contacts"],
        leads=tables["leads"],
        events=tables["events"],
        outcomes=tables["outcomes"],
        observation_end=pd.Timestamp(observation_end),
        has_outcome_dates="outcomes" in raw,
        source=source,
        notes=notes,
    )


def write_canonical(crm: CrmData, out: Path) -> Path:
    """A source as a canonical directory: one Parquet file per table and `source.yaml` (its
    observation end), what every engine reads the same way."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        crm.table(name).to_parquet(out / f"{name}.parquet", index=False)
    (out / "source.yaml").write_text(f"observation_end: {crm.observation_end.isoformat()}\n")
    return out
