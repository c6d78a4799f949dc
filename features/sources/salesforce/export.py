"""The object files of one Salesforce export folder, found by name and read as text."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import parse_timestamps
from leadscore.features.readers import EmptyFileError, read_table
from leadscore.features.sources.salesforce.frames import _example, _nat, _none, _text
from leadscore.features.sources.salesforce.mapping import OBJECTS, SalesforceMap

SUFFIXES = (".parquet", ".csv", ".xlsx", ".tsv", ".txt")


def _find_objects(root: Path) -> dict[str, Path]:
    """Object name -> its file in `root` (names matched ignoring case; Parquet first)."""
    if not root.is_dir():
        return {}
    by_stem: dict[str, list[Path]] = {}
    for path in root.iterdir():
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            by_stem.setdefault(path.stem.lower(), []).append(path)
    found = {}
    for obj in OBJECTS:
        paths = by_stem.get(obj.lower(), [])
        if paths:
            found[obj] = min(paths, key=lambda p: SUFFIXES.index(p.suffix.lower()))
    return found


class _Export:
    """The object files of one export, read as text, with what was read and what went wrong."""

    def __init__(self, root: Path, mapping: SalesforceMap, config: FeatureConfig):
        self.root = root
        self.mapping = mapping
        self.config = config
        self.paths = _find_objects(root)
        self.frames: dict[str, pd.DataFrame] = {}
        self.used: dict[str, set[str]] = {obj: set() for obj in OBJECTS}
        self.problems: list[str] = []
        self.notes: list[str] = []
        for obj, path in self.paths.items():
            try:
                self.frames[obj] = read_table(path).reset_index(drop=True)
            except EmptyFileError:
                if obj == "Lead":
                    raise
                self.notes.append(f"{path} has no data rows: read as no {obj} records")

    def has(self, obj: str) -> bool:
        return obj in self.frames

    def rows(self, obj: str) -> int:
        return len(self.frames[obj]) if obj in self.frames else 0

    def columns(self, obj: str) -> list[str]:
        return list(self.frames[obj].columns) if obj in self.frames else []

    def where(self, obj: str) -> str:
        return str(self.paths[obj])

    def raw(self, obj: str, name: str | None, *, outcome: bool = False) -> pd.Series | None:
        """A column as given; None when absent, or current state read for a feature."""
        frame = self.frames.get(obj)
        if frame is None or name is None or name not in frame.columns:
            return None
        if not outcome and name in self.mapping.state(obj):
            return None
        self.used[obj].add(name)
        return frame[name]

    def text(self, obj: str, name: str | None, *, outcome: bool = False) -> pd.Series:
        raw = self.raw(obj, name, outcome=outcome)
        return _none(self.rows(obj)) if raw is None else _text(raw)

    def first_of(self, obj: str, names: Iterable[str]) -> pd.Series:
        """The first of several columns that the file has, as text."""
        for name in names:
            if name in self.columns(obj):
                return self.text(obj, name)
        return _none(self.rows(obj))

    def times(self, obj: str, name: str | None, *, required: bool = False,
              outcome: bool = False) -> pd.Series:  # fmt: skip
        """A date or date-time column, naive UTC (a date alone: the end of that day)."""
        raw = self.raw(obj, name, outcome=outcome)
        if raw is None:
            return _nat(self.rows(obj))
        raw = raw.reset_index(drop=True)
        parsed = parse_timestamps(raw, self.config.date_format).reset_index(drop=True)
        given = _text(raw).notna()
        bad = given & parsed.isna()
        if bad.any():
            fmt = self.config.date_format
            self.problems.append(
                f"{self.where(obj)}: column {name}: {int(bad.sum())} row(s) have an unparseable "
                f"timestamp ({_example(raw, bad)}); expected an ISO-8601 date or date-time "
                "(2024-01-05 or 2024-01-05T10:00:00.000Z)"
                + (f" or {fmt!r}" if fmt else ", or declare date_format in features.yaml")
            )
        if required and (~given).any():
            self.problems.append(
                f"{self.where(obj)}: column {name}: {int((~given).sum())} row(s) are empty "
                f"({_example(raw, ~given)}); expected a date-time in every row"
            )
        return parsed

    def numbers(self, obj: str, name: str | None) -> pd.Series:
        raw = self.raw(obj, name)
        if raw is None:
            return pd.Series(np.nan, index=pd.RangeIndex(self.rows(obj)), dtype="float64")
        raw = raw.reset_index(drop=True)
        numbers = pd.to_numeric(_text(raw), errors="coerce").astype("float64")
        bad = _text(raw).notna() & numbers.isna()
        if bad.any():
            self.problems.append(
                f"{self.where(obj)}: column {name}: {int(bad.sum())} row(s) are not numbers "
                f"({_example(raw, bad)}); expected a number"
            )
        return numbers

    def require(self, obj: str, *needed: tuple[str, ...]) -> bool:
        """Each group of `needed` names a column the file must have (any one of the group)."""
        have = set(self.columns(obj))
        missing = [" or ".join(group) for group in needed if not have & set(group)]
        if missing:
            self.problems.append(
                f"{self.where(obj)}: missing column(s) {missing}; a Salesforce {obj} export "
                f"needs {[' or '.join(g) for g in needed]} (found {self.columns(obj)[:12]})"
            )
        return not missing

    def ids(self, obj: str) -> pd.Series:
        """The Id column, or ids made from the object and row when the file has none."""
        if "Id" in self.columns(obj):
            ids = self.text(obj, "Id")
            made = pd.Series([f"{obj}:{i + 1}" for i in range(self.rows(obj))], dtype="string")
            return ids.fillna(made)
        return pd.Series([f"{obj}:{i + 1}" for i in range(self.rows(obj))], dtype="string")

    def unnamed(self) -> list[str]:
        """`Object.Column` for every column nothing read and the mapping does not name."""
        out = []
        for obj in self.frames:
            named = self.used[obj] | self.mapping.ignored(obj) | self.mapping.state(obj)
            out += [f"{obj}.{c}" for c in self.columns(obj) if c not in named]
        return out
