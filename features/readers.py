"""Reading one exported table: CSV (delimiter sniffed), Parquet or Excel, told apart by content.

Every value is read as text (Parquet keeps its own types), so that the data contract parses each
column by its declared kind and a reader cannot smuggle in a guess (leading zeros in ids,
"1e3" counts); the contract also reads a CRM's placeholders ("Select", "N/A") as empty. A file
with no rows, or no bytes, is an error naming the file: an export that silently yields nothing
would train on nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from leadscore.features.schema import DataContractError

_SNIFF_BYTES = 64 * 1024
_ZIP, _PARQUET = b"PK\x03\x04", b"PAR1"


class EmptyFileError(DataContractError):
    """A table file with no bytes, or a header and no rows."""


def kind_of(path: Path) -> str:
    """``parquet``, ``excel`` or ``csv``, from the file's first bytes (not its name)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == _PARQUET:
        return "parquet"
    if head == _ZIP:  # an .xlsx is a zip archive with an xl/ folder
        import zipfile

        with zipfile.ZipFile(path) as archive:
            if any(name.startswith("xl/") for name in archive.namelist()):
                return "excel"
        raise DataContractError([f"{path}: a zip archive, not a table; unpack it first"])
    return "csv"


def _delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell: a comma is the CSV default


def read_table(path: Path) -> pd.DataFrame:
    """One table from a file; text columns as strings.

    Raises :class:`EmptyFileError` for a file with no data rows and
    :class:`~leadscore.features.schema.DataContractError` for one that cannot be read.
    """
    if path.stat().st_size == 0:
        raise EmptyFileError([f"{path}: the file is empty (0 bytes); expected a header and rows"])
    kind = kind_of(path)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "excel":
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        else:
            raw = path.read_bytes()
            text = raw.decode("utf-8-sig", errors="replace")
            frame = pd.read_csv(io.StringIO(text), sep=_delimiter(text[:_SNIFF_BYTES]),
                                dtype=str, keep_default_na=False)  # fmt: skip
    except ImportError as exc:  # Excel needs openpyxl
        raise DataContractError(
            [f"{path}: reading {kind} needs {exc.name}; pip install it"]
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataContractError([f"{path}: cannot read it as {kind} ({first})"]) from None
    if frame.empty:
        raise EmptyFileError(
            [f"{path}: no data rows (columns {list(frame.columns)[:8]}); expected at least one"]
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
