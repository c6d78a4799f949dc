"""Synthetic canonical Parquet directories of any size for the scaling benchmark, written in
chunks so that 10M leads and 200M events never sit in memory at once.

Each chunk of leads is drawn with ``synthetic.synth_tables`` (its own random stream, derived
from the seed and the chunk's number), its ids made unique across chunks (``L0003-0000017``:
the chunk's number after the prefix) and appended as row groups to one Parquet file per table
with ``pyarrow.parquet.ParquetWriter``. The files have the columns and Arrow types that
``features.sources.canonical.write_canonical`` writes for a validated source (every contract
column; the ones the generator leaves out are all null), plus ``source.yaml`` with the
observation end. A manifest written last makes the directory a cache: the same leads, events
per lead, chunk size and seed are not written again.

    python benchmarks/scale_data.py --leads 1000000 --out data/bench-scale/leads-1000000
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import synthetic

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.schema import TABLES

EVENTS_PER_LEAD = 20
CHUNK_LEADS = 250_000
MANIFEST = "scale_manifest.json"
FORMAT_VERSION = 1  # bump when the generated data changes (a cached directory is then redrawn)
ID_COLUMNS = {
    "accounts": ("account_id",),
    "contacts": ("contact_id", "account_id"),
    "leads": ("lead_id", "account_id", "contact_id"),
    "events": ("event_id", "lead_id"),
    "outcomes": ("lead_id",),
}


def contract_schemas(config: FeatureConfig) -> dict[str, pa.Schema]:
    """The Arrow schema of each table as a validated source writes it (pandas metadata kept,
    so the files read back with the dtypes ``write_canonical``'s do): taken from a tiny
    validated sample."""
    raw = synthetic.synth_tables(np.random.default_rng(0), 20, 200, config)
    crm = synthetic.to_crm(raw, config)
    return {
        name: pa.Table.from_pandas(crm.table(name), preserve_index=False).schema for name in TABLES
    }


def unique_ids(table: pa.Table, columns: Sequence[str], chunk: int) -> pa.Table:
    """`table` with the chunk's number inserted after each id's one-letter prefix (nulls kept):
    ids are unique within a chunk, so they become unique across chunks."""
    tag = f"{chunk:04d}-"
    for name in columns:
        i = table.schema.get_field_index(name)
        ids = pc.utf8_replace_slice(table.column(i), start=1, stop=1, replacement=tag)
        table = table.set_column(i, name, ids)
    return table


def conform(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A raw frame as a table of `schema`: columns cast to its types, in its order, the ones
    the frame lacks all null."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    arrays = [
        table.column(f.name).cast(f.type) if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in schema
    ]  # fmt: skip
    return pa.Table.from_arrays(arrays, schema=schema)


def chunk_sizes(leads: int, chunk_leads: int) -> list[int]:
    """Leads per chunk: `chunk_leads` each, the last one the rest."""
    n = max(1, math.ceil(leads / chunk_leads))
    return [min(chunk_leads, leads - i * chunk_leads) for i in range(n)]


def spec_of(leads: int, seed: int, events_per_lead: int, chunk_leads: int) -> dict[str, Any]:
    """What identifies a generated directory (the manifest's cache key)."""
    return {
        "format_version": FORMAT_VERSION, "leads": leads, "events": leads * events_per_lead,
        "events_per_lead": events_per_lead, "chunk_leads": chunk_leads, "seed": seed,
    }  # fmt: skip


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a generated directory, or None when there is none (or it is unreadable)."""
    try:
        return dict(json.loads((directory / MANIFEST).read_text()))
    except (OSError, ValueError):
        return None


def _write(
    directory: Path, spec: Mapping[str, Any], config: FeatureConfig, progress: bool
) -> pd.Timestamp:
    """Draw and append every chunk; the observation end (the last creation + the synthetic
    source's observation span)."""
    schemas = contract_schemas(config)
    writers = {n: pq.ParquetWriter(directory / f"{n}.parquet", schemas[n]) for n in TABLES}
    last_created = None
    try:
        sizes = chunk_sizes(spec["leads"], spec["chunk_leads"])
        for chunk, n in enumerate(sizes):
            rng = np.random.default_rng([spec["seed"], chunk])
            raw = synthetic.synth_tables(rng, n, n * spec["events_per_lead"], config)
            created = pd.Timestamp(raw["leads"]["created_at"].max())
            last_created = created if last_created is None else max(last_created, created)
            for name in TABLES:
                table = unique_ids(conform(raw[name], schemas[name]), ID_COLUMNS[name], chunk)
                writers[name].write_table(table)
            del raw
            if progress:
                print(f"  chunk {chunk + 1}/{len(sizes)}: {n:,} leads", flush=True)
    finally:
        for writer in writers.values():
            writer.close()
    assert last_created is not None
    return last_created + pd.Timedelta(days=synthetic.OBSERVATION_DAYS)


def ensure_scale_data(
    directory: Path,
    leads: int,
    seed: int,
    events_per_lead: int = EVENTS_PER_LEAD,
    chunk_leads: int = CHUNK_LEADS,
    config: FeatureConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """A synthetic canonical directory of `leads` leads at `directory`, drawn unless its manifest
    says it already holds the same data; its manifest (``cached`` says which happened).

    The tables are written to a sibling temporary folder and moved into place with the manifest
    last, so an interrupted run leaves no directory that looks complete.
    """
    spec = spec_of(leads, seed, events_per_lead, chunk_leads)
    found = read_manifest(directory)
    if found is not None and found.get("spec") == spec:
        return found | {"cached": True}
    config = config or load_feature_config()
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    end = _write(partial, spec, config, progress)
    (partial / "source.yaml").write_text(f"observation_end: '{end.isoformat()}'\n")
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in partial.iterdir())
    manifest = {"spec": spec, "seconds": seconds, "bytes": size,
                "files": sorted(p.name for p in partial.iterdir())}  # fmt: skip
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return manifest | {"cached": False}


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or find cached) one directory and print its manifest."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--leads", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--events-per-lead", type=int, default=EVENTS_PER_LEAD)
    p.add_argument("--chunk-leads", type=int, default=CHUNK_LEADS)
    args = p.parse_args(argv)
    manifest = ensure_scale_data(args.out, args.leads, args.seed, args.events_per_lead,
                                 args.chunk_leads, progress=True)  # fmt: skip
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
