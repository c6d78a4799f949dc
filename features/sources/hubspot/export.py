"""One HubSpot export folder being read (:class:`_Export`): its files as text, the properties
the mapping names, dates and numbers checked, associations, and the problems and notes found on
the way; and the frame helpers the reader builds its tables with."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import parse_timestamps
from leadscore.features.readers import EmptyFileError, read_table
from leadscore.features.schema import DataContractError
from leadscore.features.sources.hubspot.mapping import Coded, HubSpotMapping, object_type
from leadscore.features.sources.hubspot.values import _iso_moment, _Known, _shown, decode

SUFFIXES = (".parquet", ".csv", ".xlsx", ".tsv", ".txt")
_EPOCH_MS = r"\d{11,}(?:\.0*)?"


def _find(root: Path, stem: str) -> Path | None:
    if Path(stem).suffix and (root / stem).is_file():
        return root / stem
    return next((root / f"{stem}{s}" for s in SUFFIXES if (root / f"{stem}{s}").is_file()), None)


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as stripped text, empty as missing (typed Parquet columns included)."""
    out = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = parse_timestamps(values).map(_iso_moment, na_action="ignore")
        text = values.astype("string").str.strip()
        out[str(name)] = text.mask(text == "")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def parse_moments(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """ISO-8601 text, a date alone (the end of that day) or epoch milliseconds -> naive UTC
    `datetime64[ns]`; unreadable values become NaT (compare with the input to report them)."""
    text = values.astype("string").str.strip()
    epoch = text.str.fullmatch(_EPOCH_MS).fillna(False).astype(bool)
    parsed = parse_timestamps(text.where(~epoch), date_format)
    if epoch.any():
        millis = pd.to_numeric(text.where(epoch), errors="coerce")
        parsed = parsed.where(~epoch, pd.to_datetime(millis, unit="ms"))
    return parsed.astype("datetime64[ns]")


class _Export:
    """One HubSpot export folder being read: its files, what the mapping names, the problems
    and notes found on the way."""

    def __init__(self, root: Path, mapping: HubSpotMapping, config: FeatureConfig):
        self.root, self.m, self.config = root, mapping, config
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.named: dict[Path, set[str]] = {}
        self.columns: dict[Path, list[str]] = {}
        self.known = _Known(config)
        self._links: pd.DataFrame | None = None

    # -- files and columns

    def read(self, stem: str, required: bool = False) -> tuple[pd.DataFrame, Path] | None:
        path = _find(self.root, stem)
        if path is None:
            if required:
                raise DataContractError([f"{self.root}: no {stem} file ({stem}.csv, .parquet or "
                                         ".xlsx); a HubSpot export needs its contacts"])
            return None
        try:
            frame = _text(read_table(path))
        except EmptyFileError:
            if required:
                raise
            self.notes.append(f"{path} has no data rows: read as none")
            return None
        self.named.setdefault(path, set())
        self.columns[path] = list(frame.columns)
        return frame, path

    def name(self, path: Path, *props: str | None) -> None:
        self.named.setdefault(path, set()).update(p for p in props if p)

    def column(self, frame: pd.DataFrame, path: Path, prop: str | None) -> pd.Series:
        """A property's text (missing values, or all missing when the file lacks it)."""
        self.name(path, prop)
        if prop is None or prop not in frame.columns:
            return pd.Series(pd.NA, index=frame.index, dtype="string")
        return frame[prop]

    def require(self, frame: pd.DataFrame, path: Path, props: tuple[str, ...] | str,
                what: str) -> pd.Series:  # fmt: skip
        """The first of `props` present; a problem naming the file when none is, or when it
        has empty values."""
        names = (props,) if isinstance(props, str) else props
        self.name(path, *names)
        present = next((p for p in names if p in frame.columns), None)
        if present is None:
            which = repr(names[0]) if len(names) == 1 else f"one of {list(names)}"
            self.problems.append(
                f"{path}: no property {which} ({what}); found {_shown(frame.columns, 8)}"
            )
            return pd.Series(pd.NA, index=frame.index, dtype="string")
        values = frame[present]
        empty = values.isna().to_numpy()
        if empty.any():
            self.problems.append(
                f"{path}: property {present}: {int(empty.sum())} row(s) empty (e.g. data row "
                f"{int(np.flatnonzero(empty)[0]) + 1}); {what} needs a value in every row"
            )
        return values

    def moments(self, values: pd.Series, where: str) -> pd.Series:
        parsed = parse_moments(values, self.config.date_format)
        bad = np.flatnonzero((values.notna() & parsed.isna()).to_numpy())
        if len(bad):
            self.problems.append(
                f"{where}: {len(bad)} value(s) not a date or date-time (e.g. data row "
                f"{bad[0] + 1}: {values.iloc[bad[0]]!r}); expected ISO-8601 "
                "(2024-02-01T09:30:00Z), a date (2024-02-01) or epoch milliseconds"
            )
        return parsed

    def numbers(self, values: pd.Series, where: str) -> pd.Series:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = np.flatnonzero((values.notna() & numbers.isna()).to_numpy())
        if len(bad):
            self.problems.append(
                f"{where}: {len(bad)} value(s) not a number (e.g. data row {bad[0] + 1}: "
                f"{values.iloc[bad[0]]!r})"
            )
        return numbers

    def decoded(self, coded: Coded, values: pd.Series, where: str,
                known: Iterable[str] = ()) -> pd.Series:  # fmt: skip
        """`decode` over a column, noting values the mapping does not name."""
        known = tuple(known)
        table, unnamed = {}, []
        for raw in values.dropna().unique():
            table[raw], named = decode(coded, str(raw), known)
            if not named:
                unnamed.append(raw)
        out = values.map(table).astype("string")
        out = out.where(values.notna(), coded.default)
        if unnamed:
            rows = int(values.isin(unnamed).sum())
            fate = f"read as {coded.default!r}" if coded.default is not None else "kept as they are"
            self.notes.append(
                f"{where}: {rows} row(s) hold {len(unnamed)} value(s) the mapping does not "
                f"name ({_shown(sorted(map(str, unnamed)))}): {fate}"
            )
        return out.astype("string")

    def unnamed_columns(self) -> None:
        for path, columns in self.columns.items():
            left = [c for c in columns if c not in self.named.get(path, set())]
            if left:
                self.notes.append(
                    f"{path}: {len(left)} column(s) no mapping names, not read: {_shown(left, 8)}"
                    " (name them in hubspot.yaml, under ignore if unused)"
                )

    def check(self) -> None:
        if self.problems:
            raise DataContractError(self.problems)

    # -- associations

    def links(self, a: str, b: str) -> pd.DataFrame:
        """(a_id, b_id) pairs between two object types, from either direction, in file order."""
        if self._links is None:
            am = self.m.associations
            found = self.read(am.file)
            if found is None:
                self._links = pd.DataFrame(columns=["a", "a_id", "b", "b_id"], dtype="string")
            else:
                frame, path = found
                self.name(path, *am.ignore)
                cols = [self.require(frame, path, c, "an association end")
                        for c in (am.from_type, am.from_id, am.to_type, am.to_id)]  # fmt: skip
                self.check()
                types = [c.map(object_type, na_action="ignore").astype("string") for c in cols[::2]]
                fwd = pd.DataFrame({"a": types[0], "a_id": cols[1], "b": types[1], "b_id": cols[3]})
                back = fwd.rename(columns={"a": "b", "a_id": "b_id", "b": "a", "b_id": "a_id"})
                self._links = pd.concat([fwd, back], ignore_index=True)
        found_links = self._links
        pairs = found_links[(found_links["a"] == a) & (found_links["b"] == b)]
        pairs = pairs[["a_id", "b_id"]].drop_duplicates()
        return pairs.rename(columns={"a_id": a, "b_id": b}).reset_index(drop=True)

    def attach(self, ids: pd.Series, obj: str, leads: pd.Index, where: str) -> pd.DataFrame:
        """(row, lead_id) for every row of an object file, through its contact associations."""
        pairs = self.links(obj, "contacts")
        rows = pd.DataFrame({"row": np.arange(len(ids)), obj: ids.astype("string").to_numpy()})
        joined = rows.merge(pairs, on=obj, how="left")
        joined = joined[joined["contacts"].isin(leads)]
        lost = len(ids) - joined["row"].nunique()
        if lost:
            self.notes.append(f"{where}: {lost} row(s) associated with no contact: not read")
        return joined[["row", "contacts"]].rename(columns={"contacts": "lead_id"})


def _frame(n: int, **columns: Any) -> pd.DataFrame:
    return pd.DataFrame({k: (v.to_numpy() if isinstance(v, pd.Series) else v)
                         for k, v in columns.items()}, index=pd.RangeIndex(n))  # fmt: skip


def _moments_of(ids: pd.Series, by_id: pd.Series) -> pd.Series:
    """The moment `by_id` gives each id (NaT for none)."""
    if not len(by_id):
        return pd.Series(pd.NaT, index=ids.index, dtype="datetime64[ns]")
    return pd.to_datetime(ids.map(by_id)).astype("datetime64[ns]")


def _first(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """The earliest `value` per `key` (frame sorted by time already)."""
    return frame.drop_duplicates(key).set_index(key)[value]
