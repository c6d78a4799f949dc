"""A directory of CSV or Parquet files already in canonical shape.

Files: `accounts`, `contacts`, `leads`, `events`, `outcomes` (each `.parquet` or `.csv`).
An optional `source.yaml` may give `observation_end` (when the export was taken); otherwise
it is the latest timestamp anywhere in the source.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from features.config import FeatureConfig
from features.contract import TABLES, CrmData, DataContractError, parse_timestamps, validate


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    # Everything as text: the contract parses each column by its declared kind, so a CSV
    # cannot smuggle in a type guess (leading zeros in ids, "1e3" counts).
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def _find(root: Path, table: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        candidate = root / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_canonical(root: Path, config: FeatureConfig) -> CrmData:
    """Load and validate a canonical directory."""
    found = {t: _find(root, t) for t in TABLES}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise DataContractError(
            [f"{root}: missing table file(s) {[f'{t}.csv|.parquet' for t in missing]}; "
             f"expected one file per table {list(TABLES)} (or a leadforge bundle)"]
        )
    paths = {t: p for t, p in found.items() if p is not None}
    tables = validate({t: _read(p) for t, p in paths.items()}, config,
                      {t: str(p) for t, p in paths.items()})
    meta_file = root / "source.yaml"
    meta = yaml.safe_load(meta_file.read_text()) if meta_file.is_file() else {}
    notes = []
    if meta and meta.get("observation_end"):
        end = parse_timestamps(pd.Series([str(meta["observation_end"])])).iloc[0]
        if pd.isna(end):
            raise DataContractError([f"{meta_file}: observation_end is not a timestamp"])
    else:
        stamps = [tables["leads"]["created_at"].max(), tables["events"]["timestamp"].max()]
        stamps += [tables["outcomes"][c].max() for c in ("sql_at", "won_at", "lost_at")]
        end = max(s for s in stamps if pd.notna(s))
        notes.append(f"observation end taken as the latest timestamp in the source: {end}")
    return CrmData(
        **tables,
        observation_end=pd.Timestamp(end),
        has_outcome_dates=True,
        source=f"canonical:{root}",
        notes=notes,
    )
