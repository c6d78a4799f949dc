"""Rows written as they come, to one Parquet file or a directory of part files.

`--out FILE.parquet` appends row groups to one file; `--out DIR/` (a trailing slash, or an
existing directory) writes ``part-00000.parquet``, ... there, the layout Spark writes and every
Parquet reader takes as one dataset. Excluded leads go beside either (:func:`excluded_path`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def is_directory_output(out: Path | str) -> bool:
    """`--out DIR/` (a trailing slash, or an existing directory): partitioned Parquet."""
    return str(out).endswith(("/", "\\")) or Path(out).is_dir()


def excluded_path(out: Path | str) -> str:
    """Where the excluded leads go: ``scores.parquet`` -> ``scores.excluded.parquet``,
    ``scores/`` -> ``scores.excluded/``."""
    path = Path(out)
    if is_directory_output(out):
        return str(path.parent / f"{path.name}.excluded") + "/"
    return str(path.with_suffix(".excluded.parquet"))


class ParquetSink:
    """Frames written as they come: to one Parquet file (row groups appended), or to a
    directory of part files (``part-00000.parquet``, ...) for `--out DIR/`. Every frame must
    have the first one's columns; nothing is held back but the open file."""

    def __init__(self, path: Path | str):
        self.directory = is_directory_output(path)
        self.path = Path(path)
        self.parts = 0
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        if self.directory:
            self.path.mkdir(parents=True, exist_ok=True)
            for old in self.path.glob("part-*.parquet"):  # a rerun replaces, as Spark's overwrite
                old.unlink()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        """Append `frame` (its first call fixes the schema)."""
        table = pa.Table.from_pandas(frame, preserve_index=False, schema=self._schema)
        if self._schema is None:
            self._schema = table.schema
        if self.directory:
            if len(frame) or not self.parts:
                pq.write_table(table, self.path / f"part-{self.parts:05d}.parquet")
                self.parts += 1
        else:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> Path:
        """Finish the file; returns the path written."""
        if self._writer is not None:
            self._writer.close()
        return self.path
