"""Quarters and low base rates made from a leadforge bundle: new bundle directories to test with.

leadforge creates every lead within one month of 2024-01-01 and its worlds convert at 8-45%.
The quarterly review needs a "next quarter" of a world and worlds at a few percent, so:

* :func:`shift_bundle` moves every date of every table (and of the task splits) by a number of
  days, optionally keeping only a sample of leads that follows a given lead-source mix and
  remapping category values (``employee_band`` 200-499 -> 500-999);
* :func:`subsample_bundle` keeps every non-converting lead and a random share of the converting
  ones, so that the bundle converts at a given lower rate.

Both write a bundle that :mod:`leadscore.features.sources.leadforge` (and ``leadforge validate``)
reads like an original: lead-owned rows follow their lead (touches, sessions, sales activities,
opportunities, then customers and subscriptions by their keys, the task splits and the lead
latents), the manifest's row counts and SHA-256 sums are rewritten, and each column keeps its
Arrow type (leadforge stores dates as ``YYYY-MM-DD`` text). Accounts and contacts are the world,
not the leads (4,200 contacts for 300 leads): they stay whole, as no row of theirs names a lead.
The readers' observation end is the last lead creation plus the manifest's label window, so it
moves with the leads; no date in the manifest is read (``generation_timestamp`` stays as is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leadscore.features.errors import LeadscoreError

TASK = "converted_within_90_days"
SOURCE_COLUMN = "lead_source"
SPLITS = ("train", "valid", "test")
# ISO 8601 dates and date-times as text; a whole-day shift changes only the date part.
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
_SHARE_TOLERANCE = 1e-3
_MAX_BAND_VALUES = 50  # a text column with more distinct values is not offered as a band


class BundleEditError(LeadscoreError, ValueError):
    """A bundle cannot be shifted or subsampled as asked (the message names what and why)."""


@dataclass(frozen=True)
class ShiftReport:
    """What :func:`shift_bundle` changed."""

    days: int
    seed: int
    rows: dict[str, tuple[int, int]]  # table or split file -> (rows before, rows after)
    shifted_columns: dict[str, list[str]]
    source_mix_before: dict[str, float]
    source_mix_after: dict[str, float]
    remapped: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> file -> rows

    def lines(self) -> list[str]:
        """The report as lines for a person."""
        out = [f"dates moved by {self.days} days in {sum(map(len, self.shifted_columns.values()))}"
               f" columns of {len(self.shifted_columns)} files"]  # fmt: skip
        out += [f"{name}: {a} -> {b} rows" for name, (a, b) in self.rows.items() if a != b]
        if self.source_mix_before != self.source_mix_after:
            out.append(f"{SOURCE_COLUMN}: {_shares_text(self.source_mix_before)} -> "
                       f"{_shares_text(self.source_mix_after)}")  # fmt: skip
        for column, counts in self.remapped.items():
            out.append(f"{column} remapped: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return out


@dataclass(frozen=True)
class SubsampleReport:
    """What :func:`subsample_bundle` kept."""

    seed: int
    leads_before: int
    leads_after: int
    converted_before: int
    converted_after: int
    rows: dict[str, tuple[int, int]]  # table or split file -> (rows before, rows after)

    @property
    def base_rate_before(self) -> float:
        """The source bundle's share of converting leads."""
        return self.converted_before / self.leads_before

    @property
    def base_rate_after(self) -> float:
        """The written bundle's share of converting leads."""
        return self.converted_after / self.leads_after

    def lines(self) -> list[str]:
        """The report as lines for a person."""
        return [
            f"base rate {self.base_rate_before:.4f} ({self.converted_before}/{self.leads_before})"
            f" -> {self.base_rate_after:.4f} ({self.converted_after}/{self.leads_after})",
            *(f"{name}: {a} -> {b} rows" for name, (a, b) in self.rows.items() if a != b),
        ]


@dataclass
class _Bundle:
    """A bundle in memory: its manifest and every Parquet file by its path in the bundle."""

    root: Path
    manifest: dict[str, Any]
    tables: dict[str, str]  # table name -> relative path
    files: dict[str, pa.Table]  # relative path -> data (tables, then task splits)

    def table(self, name: str) -> pa.Table:
        """One table by its leadforge name."""
        return self.files[self.tables[name]]


def shift_bundle(
    src: Path,
    out: Path,
    *,
    days: int,
    source_mix: Mapping[str, float] | None = None,
    band_shift: Mapping[str, Mapping[str, str]] | None = None,
    seed: int = 0,
) -> ShiftReport:
    """Write a copy of the bundle `src` to `out` with every date moved by `days` (91 for the
    next quarter); with `source_mix` only a sample of the leads, the largest whose
    ``lead_source`` shares are the given ones (sources left out get none), and with
    `band_shift` (``{"employee_band": {"200-499": "500-999"}}``) those values replaced wherever
    the column occurs. The same arguments and `seed` give the same bundle."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise BundleEditError(f"days {days!r}: expected a whole number of days (91: a quarter)")
    bundle = _read(src)
    _check_out(src, out)
    leads = bundle.table("leads")
    sources = leads.column(SOURCE_COLUMN).to_pylist()
    before = _shares(sources)
    keep: set[str] | None = None
    if source_mix is not None:
        counts = _mix_counts(before, sources, source_mix)
        keep = _sample_by_source(leads.column("lead_id").to_pylist(), sources, counts, seed)
    if band_shift:
        _check_bands(bundle, band_shift)
    rows_before = {path: data.num_rows for path, data in bundle.files.items()}
    if keep is not None:
        _keep_leads(bundle, keep)
    remapped = _remap(bundle, band_shift or {})
    shifted = _shift_dates(bundle, days)
    after = _shares(bundle.table("leads").column(SOURCE_COLUMN).to_pylist())
    transform = {"tool": "shift_bundle", "days": days, "seed": seed,
                 "source_mix": dict(source_mix) if source_mix is not None else None,
                 "band_shift": {k: dict(v) for k, v in (band_shift or {}).items()}}  # fmt: skip
    _write(bundle, out, keep, transform)
    return ShiftReport(
        days=days,
        seed=seed,
        rows=_rows(rows_before, bundle),
        shifted_columns=shifted,
        source_mix_before=before,
        source_mix_after=after,
        remapped=remapped,
    )


def subsample_bundle(src: Path, out: Path, *, base_rate: float, seed: int = 0) -> SubsampleReport:
    """Write a copy of the bundle `src` to `out` that keeps every lead not converted within 90
    days (the task splits' label) and a random subset of the converted ones, so that the copy
    converts at `base_rate` (to within one lead); it can only lower the bundle's own rate."""
    bundle = _read(src)
    _check_out(src, out)
    labels = _labels(bundle)
    converted = sorted(lead for lead, label in labels.items() if label)
    n_leads, n_conv = len(labels), len(converted)
    own = n_conv / n_leads if n_leads else 0.0
    if not 0 < base_rate < 1 or not math.isfinite(base_rate):
        raise BundleEditError(f"base_rate {base_rate!r}: expected a share between 0 and 1")
    if base_rate > own:
        raise BundleEditError(
            f"base_rate {base_rate:g} is above the bundle's own {own:.4f} ({n_conv} of "
            f"{n_leads} leads converted in {src}); subsampling can only lower it"
        )
    others = n_leads - n_conv
    # k converters among `others + k` leads: k = r * others / (1 - r), rounded, is within half
    # a lead of the exact rate.
    k = min(n_conv, round(base_rate * others / (1 - base_rate)))
    if k == 0:
        raise BundleEditError(
            f"base_rate {base_rate:g} keeps no converted lead of {n_leads} ({n_conv} converted): "
            "use a larger bundle or a higher rate"
        )
    rng = np.random.default_rng(seed)
    chosen = {converted[i] for i in rng.choice(n_conv, size=k, replace=False)}
    keep = {lead for lead, label in labels.items() if not label} | chosen
    rows_before = {path: data.num_rows for path, data in bundle.files.items()}
    _keep_leads(bundle, keep)
    transform = {"tool": "subsample_bundle", "base_rate": base_rate, "seed": seed}
    _write(bundle, out, keep, transform)
    return SubsampleReport(
        seed=seed,
        leads_before=n_leads,
        leads_after=len(keep),
        converted_before=n_conv,
        converted_after=k,
        rows=_rows(rows_before, bundle),
    )


def shift_dates(data: pa.Table, days: int) -> tuple[pa.Table, list[str]]:
    """`data` with every date column moved by `days`, each keeping its type, and the names of
    the columns moved: timestamps, dates, and text whose every value is an ISO 8601 date or
    date-time (the text after the date, a time and offset, stays as written)."""
    names: list[str] = []
    columns = []
    for name, column in zip(data.column_names, data.columns, strict=True):
        moved = _shift_column(column.combine_chunks(), days)
        if moved is not None:
            names.append(name)
        columns.append(moved if moved is not None else column)
    return pa.Table.from_arrays(columns, schema=data.schema), names


# -- reading and checking -------------------------------------------------------------------


def _read(src: Path) -> _Bundle:
    manifest_file = Path(src) / "manifest.json"
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or "recipe_id" not in manifest:
        raise BundleEditError(
            f"{src}: not a leadforge bundle (expected a manifest.json with a recipe_id)"
        )
    tables = {name: entry.get("file", f"tables/{name}.parquet")
              for name, entry in manifest.get("tables", {}).items()}  # fmt: skip
    files = [*tables.values(), *_split_files(Path(src), manifest)]
    missing = [path for path in files if not (Path(src) / path).is_file()]
    if missing or "leads" not in tables:
        raise BundleEditError(
            f"{src}: leadforge bundle without {', '.join(missing) or 'a leads table'}"
        )
    data = {path: pq.read_table(Path(src) / path) for path in files}
    return _Bundle(root=Path(src), manifest=manifest, tables=tables, files=data)


def _split_files(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    paths = [
        f"tasks/{task}/{split}.parquet" for task in manifest.get("tasks", {}) for split in SPLITS
    ]
    return [path for path in paths if (root / path).is_file()]


def _check_out(src: Path, out: Path) -> None:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleEditError(f"{out}: exists and is not an empty folder; give a new folder")
    if out.resolve().is_relative_to(Path(src).resolve()):
        raise BundleEditError(f"{out}: inside the bundle {src}; give a folder outside it")


def _labels(bundle: _Bundle) -> dict[str, bool]:
    """Each lead's task label, read from the task splits as the leadforge reader does."""
    labels: dict[str, bool] = {}
    for path, data in bundle.files.items():
        if path.startswith(f"tasks/{TASK}/") and TASK in data.column_names:
            ids, values = data.column("lead_id").to_pylist(), data.column(TASK).to_pylist()
            labels.update(zip(ids, (bool(v) for v in values), strict=True))
    leads = bundle.table("leads").column("lead_id").to_pylist()
    unlabelled = [lead for lead in leads if lead not in labels]
    if unlabelled:
        raise BundleEditError(
            f"{bundle.root}: {len(unlabelled)} of {len(leads)} leads have no {TASK} label in "
            f"tasks/{TASK}/ (e.g. {unlabelled[0]})"
        )
    return {lead: labels[lead] for lead in leads}


def _shares(values: Iterable[Any]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    total = sum(counts.values())
    return {key: counts[key] / total for key in sorted(counts)}


def _shares_text(shares: Mapping[str, float]) -> str:
    return ", ".join(f"{key} {share:.3f}" for key, share in shares.items())


def _mix_counts(
    before: Mapping[str, float], sources: list[Any], mix: Mapping[str, float]
) -> dict[str, int]:
    """How many leads of each source the largest sample with the shares `mix` holds."""
    unknown = sorted(set(mix) - set(before))
    if unknown:
        raise BundleEditError(
            f"source_mix: unknown {SOURCE_COLUMN} {', '.join(map(repr, unknown))}; the bundle's "
            f"sources are {', '.join(before)}"
        )
    bad = [f"{key}={share!r}" for key, share in mix.items() if not _is_share(share)]
    if bad:
        raise BundleEditError(f"source_mix: shares must be numbers >= 0, got {', '.join(bad)}")
    total = sum(mix.values())
    if abs(total - 1) > _SHARE_TOLERANCE:
        raise BundleEditError(f"source_mix: shares sum to {total:.4g}, expected 1")
    shares = {key: mix.get(key, 0.0) / total for key in before}
    available = {key: sum(1 for s in sources if str(s) == key) for key in before}
    n = math.floor(min(available[k] / s for k, s in shares.items() if s > 0) + 1e-9)
    exact = {key: shares[key] * n for key in before}
    counts = {key: math.floor(value + 1e-9) for key, value in exact.items()}
    # largest remainders first, so the counts add up to n (never above what a source has)
    by_remainder = sorted(before, key=lambda k: (counts[k] - exact[k], k))
    for key in by_remainder[: n - sum(counts.values())]:
        counts[key] += 1
    return {key: min(count, available[key]) for key, count in counts.items()}


def _is_share(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def _sample_by_source(
    lead_ids: list[str], sources: list[Any], counts: Mapping[str, int], seed: int
) -> set[str]:
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for key in sorted(counts):
        ids = sorted(lead for lead, source in zip(lead_ids, sources, strict=True)
                     if str(source) == key)  # fmt: skip
        keep.update(ids[i] for i in rng.choice(len(ids), size=counts[key], replace=False))
    return keep


def _band_columns(bundle: _Bundle) -> dict[str, set[str]]:
    """Text columns of the tables that look like categories: column -> its values."""
    values: dict[str, set[str]] = {}
    for name in bundle.tables:
        data = bundle.table(name)
        for column, field_ in zip(data.column_names, data.schema, strict=True):
            text = pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type)
            if not text or column.endswith("_id") or _is_iso_text(data.column(column)):
                continue
            values.setdefault(column, set()).update(
                v for v in pc.unique(data.column(column)).to_pylist() if v is not None
            )
    return {k: v for k, v in values.items() if len(v) <= _MAX_BAND_VALUES}


def _check_bands(bundle: _Bundle, band_shift: Mapping[str, Mapping[str, str]]) -> None:
    columns = _band_columns(bundle)
    for column, mapping in band_shift.items():
        if column not in columns:
            raise BundleEditError(
                f"band_shift: no category column {column!r} in {bundle.root}; expected one of "
                f"{', '.join(sorted(columns))}"
            )
        absent = sorted(set(mapping) - columns[column])
        if absent:
            raise BundleEditError(
                f"band_shift[{column!r}]: {', '.join(map(repr, absent))} never occurs; its "
                f"values are {', '.join(sorted(columns[column]))}"
            )


# -- editing --------------------------------------------------------------------------------


def _keep_leads(bundle: _Bundle, keep: set[str]) -> None:
    """Drop every row owned by a lead not in `keep`: rows naming the lead, then rows naming an
    opportunity or customer that went with it (each table's first `*_id` column is its key)."""
    kept = {"lead_id": pa.array(sorted(keep), type=pa.string())}
    world = {bundle.tables[name] for name in ("accounts", "contacts") if name in bundle.tables}
    for path, data in bundle.files.items():
        if path in world:
            continue
        for key, ids in kept.items():
            if key in data.column_names:
                column = data.column(key)
                data = data.filter(pc.or_kleene(pc.is_in(column, ids.cast(column.type)),
                                                pc.is_null(column)))  # fmt: skip
        own_key = data.column_names[0]
        if own_key.endswith("_id") and own_key not in kept and not path.startswith("tasks/"):
            kept[own_key] = pc.unique(data.column(own_key)).cast(pa.string())
        bundle.files[path] = data


def _remap(
    bundle: _Bundle, band_shift: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for column, mapping in band_shift.items():
        counts[column] = {}
        for path, data in bundle.files.items():
            if column not in data.column_names:
                continue
            values = data.column(column).to_pylist()
            new = [mapping.get(v, v) if v is not None else None for v in values]
            counts[column][path] = sum(1 for a, b in zip(values, new, strict=True) if a != b)
            index = data.column_names.index(column)
            array = pa.array(new, type=data.schema.field(column).type)
            bundle.files[path] = data.set_column(index, data.schema.field(column), array)
    return counts


def _shift_dates(bundle: _Bundle, days: int) -> dict[str, list[str]]:
    shifted: dict[str, list[str]] = {}
    for path, data in bundle.files.items():
        bundle.files[path], names = shift_dates(data, days)
        if names:
            shifted[path] = names
    return shifted


def _is_iso_text(column: pa.Array | pa.ChunkedArray) -> bool:
    present = column.drop_null()
    return len(present) > 0 and bool(pc.all(pc.match_substring_regex(present, _ISO)).as_py())


def _shift_text(value: str, days: int) -> str:
    moved = dt.date.fromisoformat(value[:10]) + dt.timedelta(days=days)
    return moved.isoformat() + value[10:]


def _shift_column(column: pa.Array, days: int) -> pa.Array | None:
    """The column moved by `days`, or None when it holds no dates."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return pc.add(column, pa.scalar(dt.timedelta(days=days), type=pa.duration(kind.unit)))
    if pa.types.is_date32(kind):
        return pc.add(column.cast(pa.int32()), pa.scalar(days, pa.int32())).cast(kind)
    if pa.types.is_date64(kind):
        return pc.add(column.cast(pa.int64()), days * 86_400_000).cast(kind)
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and _is_iso_text(column):
        unique = pc.unique(column.drop_null())
        moved = pa.array([_shift_text(v, days) for v in unique.to_pylist()], type=kind)
        return pc.take(moved, pc.index_in(column, value_set=unique))
    return None


# -- writing --------------------------------------------------------------------------------


def _rows(before: Mapping[str, int], bundle: _Bundle) -> dict[str, tuple[int, int]]:
    return {path: (before[path], data.num_rows) for path, data in bundle.files.items()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(bundle: _Bundle, out: Path, keep: set[str] | None, transform: dict[str, Any]) -> None:
    """Write the bundle to a temporary sibling of `out`, then move it into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        shutil.copytree(bundle.root, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.parquet", "manifest.json"))  # fmt: skip
        for path, data in bundle.files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, work / path)
        if keep is not None:
            _filter_lead_latents(work / "metadata" / "latent_registry.json", keep)
        (work / "manifest.json").write_text(json.dumps(_manifest(bundle, work, transform),
                                                       indent=2) + "\n")  # fmt: skip
        if out.exists():
            out.rmdir()  # checked empty before any work
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _filter_lead_latents(path: Path, keep: set[str]) -> None:
    if not path.is_file():
        return
    registry = json.loads(path.read_text())
    if isinstance(registry.get("lead_latents"), dict):
        registry["lead_latents"] = {k: v for k, v in registry["lead_latents"].items() if k in keep}
        path.write_text(json.dumps(registry, indent=2))


def _manifest(bundle: _Bundle, work: Path, transform: dict[str, Any]) -> dict[str, Any]:
    """The source manifest with the new row counts and file sums, and what was done."""
    manifest = json.loads(json.dumps(bundle.manifest))
    for name, path in bundle.tables.items():
        entry = manifest["tables"][name]
        entry.update(row_count=bundle.files[path].num_rows, sha256=_sha256(work / path))
    manifest["n_leads"] = bundle.table("leads").num_rows
    for task, entry in manifest.get("tasks", {}).items():
        for split in SPLITS:
            path = f"tasks/{task}/{split}.parquet"
            if path in bundle.files:
                entry[f"{split}_rows"] = bundle.files[path].num_rows
                entry[f"{split}_sha256"] = _sha256(work / path)
    manifest["leadscore_derived"] = [*manifest.get("leadscore_derived", []),
                                     {"from": str(bundle.root), **transform}]  # fmt: skip
    return manifest
