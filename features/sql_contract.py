"""The data contract checked inside a SQL engine, worded as the local path words it.

:func:`validate_views` runs, as engine queries over canonical Parquet views
(:func:`~leadscore.features.engines.canonical_views`), the checks of
:func:`~leadscore.features.contract.validate` that typed Parquet can fail: missing required
columns, empty values where one is required, repeated ids, non-finite numbers, negative or
fractional counts and references to unknown ids. Each problem is one line from
:func:`~leadscore.features.contract.problem_line`, so an engine reports a file exactly as the
local path does. One scan per table counts every check; the example row of a failed check is
fetched only then.

A column stored with the wrong Parquet type (text where a timestamp belongs) is reported as
such: the local path would parse it, the SQL engines read what ``leadscore data convert``
writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import problem_line
from leadscore.features.engines import ROW, SqlEngine, file_view
from leadscore.features.schema import TABLES, Column, DataContractError, schemas

_TEXT_KINDS = ("id", "ref", "string", "category")
_NUMBER_TYPES = ("double", "float", "real", "bigint", "int", "integer", "smallint", "tinyint",
                 "hugeint", "ubigint", "uinteger", "usmallint", "utinyint", "long", "short",
                 "byte", "decimal")  # fmt: skip
_EXPECTED_TYPE = {"timestamp": "a timestamp", "number": "a number", "count": "a number",
                  "boolean": "a boolean", "id": "text", "ref": "text", "string": "text",
                  "category": "text"}  # fmt: skip


@dataclass(frozen=True)
class _Check:
    """One condition on a column's rows and how a failure is worded."""

    where: str
    column: str
    condition: str
    what: str
    expected: str


def _type_fits(kind: str, stored: str) -> bool:
    base = stored.split("(")[0].strip()
    if kind == "timestamp":
        return base.startswith(("timestamp", "date"))
    if kind in ("number", "count"):
        return base in _NUMBER_TYPES
    if kind == "boolean":
        return base == "boolean"
    return base in ("varchar", "string", "text")


def _padded(x: str) -> str:
    """`x` starts or ends with a space (what trim() would change)."""
    return f"({x} LIKE ' %' OR {x} LIKE '% ')"


def _is_float(stored: str) -> bool:
    return stored.split("(")[0].strip() in ("double", "float", "real")


class _Checks:
    """The checks of one table, written in the engine's dialect."""

    def __init__(self, engine: SqlEngine, config: FeatureConfig):
        self.engine = engine
        self.d = engine.dialect
        self.config = config
        # a 64-bit hash of text (Spark's hash() is 32-bit: too many collisions at 10M ids)
        self.hash = {"duckdb": "hash({})", "spark": "xxhash64({})"}[self.d.name]
        self.anti = {"duckdb": "ANTI JOIN", "spark": "LEFT ANTI JOIN"}[self.d.name]

    def q(self, name: str) -> str:
        return self.d.quote.format(name)

    def missing(self, col: Column, stored: str, alias: str = "") -> str:
        """The local path's "no value": NULL, NaN, or a placeholder in a text column (unless
        the column declares it as a value)."""
        x = alias + self.q(col.name)
        if _is_float(stored):
            return f"({x} IS NULL OR isnan({x}))"
        if col.kind not in _TEXT_KINDS:
            return f"{x} IS NULL"
        declared = {v.lower() for v in col.vocabulary or ()}
        empty = sorted({p.strip().lower() for p in self.config.placeholders} - declared | {""})
        listed = ", ".join(self.d.literal(p) for p in empty)
        # only text short enough, or padded, can trim to a placeholder: CASE spares the other
        # values lower(trim()), most of a scan of 20M ids
        could = f"length({x}) <= {max(map(len, empty))} OR {_padded(x)}"
        return f"({x} IS NULL OR CASE WHEN {could} THEN lower(trim({x})) IN ({listed}) END)"

    def of_column(self, where: str, col: Column, stored: str) -> list[_Check]:
        """The value checks of one present, well-typed column, in the local path's order."""
        x, checks = self.q(col.name), []
        present = f"NOT {self.missing(col, stored)}"
        if col.kind in ("number", "count") and _is_float(stored):
            infinite = f"{present} AND abs({x}) = CAST('Infinity' AS DOUBLE)"
            checks.append(_Check(where, col.name, infinite, "are infinite", "a finite number"))
        if col.kind == "count":
            # as the local path, an infinite count is also "not whole" (inf % 1 is NaN there)
            fraction = f"{present} AND (abs({x}) = CAST('Infinity' AS DOUBLE) OR {x} <> floor({x}))"
            checks.append(_Check(where, col.name, f"{present} AND {x} < 0", "are negative",
                                 "a count >= 0"))  # fmt: skip
            checks.append(_Check(where, col.name, fraction, "are not whole", "a whole count"))
        if not col.nullable or col.kind == "id":
            checks.append(_Check(where, col.name, self.missing(col, stored), "are empty",
                                 "a value in every row"))  # fmt: skip
        return checks

    def scan(
        self, table: str, checks: list[_Check], ids: list[Column]
    ) -> tuple[list[tuple[_Check, int, int]], list[bool]]:
        """One scan of `table`: each failed check with its row count and first (0-based) row,
        and, per id column of `ids`, whether some value is padded with spaces."""
        parts = [f"count_if({c.condition})" for c in checks]
        parts += [f"count_if({_padded(self.q(col.name))})" for col in ids]
        if not parts:
            return [], []
        (row,) = self.engine.rows(f"SELECT {', '.join(parts)} FROM {table}")
        bad = [(c, int(n)) for c, n in zip(checks, row, strict=False) if n]
        firsts: tuple[Any, ...] = ()
        if bad:  # the first row of each failed check: a second scan, only then
            mins = ", ".join(f"min(CASE WHEN {c.condition} THEN {ROW} END)" for c, _ in bad)
            firsts = self.engine.rows(f"SELECT {mins} FROM {table}")[0]
        failed = [(c, n, int(first)) for (c, n), first in zip(bad, firsts, strict=True)]
        return failed, [bool(n) for n in row[len(checks):]]

    def may_repeat(self, table: str, col: Column, padded: bool) -> bool:
        """Whether an id column may list a value twice: distinct 64-bit hashes prove distinct
        values (of the trimmed text, unless no value is padded), so the exact, slower check
        runs only when some hash repeats."""
        x = self.q(col.name)
        hashed = self.hash.format(f"trim({x})" if padded else x)
        keep = f"NOT {self.missing(col, 'varchar')}"
        ((n,),) = self.engine.rows(f"SELECT count(*) FROM (SELECT {hashed} AS h FROM {table} "
                                   f"WHERE {keep} GROUP BY {hashed} HAVING count(*) > 1) d")
        return bool(n)

    def value_at(self, table: str, column: str, row: int, trimmed: bool = False) -> object:
        x = self.q(column)
        shown = f"trim({x})" if trimmed else x
        (value,) = self.engine.rows(f"SELECT {shown} FROM {table} WHERE {ROW} = {int(row)}")
        return value[0]

    def repeats(self, table: str, col: Column) -> tuple[int, int] | None:
        """Rows whose id is listed more than once: their count and first row."""
        x = f"trim({self.q(col.name)})"
        keep = f"NOT {self.missing(col, 'varchar')}"
        sql = (f"SELECT count(*), min(t.{ROW}) FROM {table} t JOIN (SELECT {x} AS k FROM "
               f"{table} WHERE {keep} GROUP BY {x} HAVING count(*) > 1) d ON d.k = trim(t."
               f"{self.q(col.name)})")  # fmt: skip
        ((count, first),) = self.engine.rows(sql)
        return (int(count), int(first)) if count else None

    def unknown(self, table: str, col: Column, ref_table: str, ref_col: str) -> tuple[int, int]:
        """Rows referring to an id their reference table does not list. A value found as it
        is is found trimmed too: the trimmed comparison runs only for the rest."""
        keep = f"NOT {self.missing(col, 'varchar', 't.')}"
        raw = (f"SELECT count(*) FROM {table} t {self.anti} {ref_table} r ON r.{self.q(ref_col)} "
               f"= t.{self.q(col.name)} WHERE {keep}")  # fmt: skip
        if not self.engine.rows(raw)[0][0]:
            return 0, 0
        x = f"trim(t.{self.q(col.name)})"
        sql = (f"SELECT count(*), min(t.{ROW}) FROM {table} t LEFT JOIN (SELECT DISTINCT "
               f"trim({self.q(ref_col)}) AS k FROM {ref_table}) r ON r.k = {x} "
               f"WHERE {keep} AND r.k IS NULL")  # fmt: skip
        ((count, first),) = self.engine.rows(sql)
        return int(count), int(first or 0)


def validate_views(engine: SqlEngine, tables: Mapping[str, Path], config: FeatureConfig) -> None:
    """Check the canonical views of `tables` (name -> its file) against the contract; raise
    :class:`~leadscore.features.schema.DataContractError` with every problem, worded as
    :func:`~leadscore.features.contract.validate` words it for the same file."""
    checks = _Checks(engine, config)
    problems: list[str] = []
    stored: dict[str, dict[str, str]] = {}
    for name in TABLES:
        if name not in tables:
            continue
        schema = schemas(config)[name]
        where_table = f"{name} ({tables[name]})"
        stored[name] = cols = engine.columns(file_view(name))
        required = [c.name for c in schema.columns if c.required]
        missing = [c for c in required if c not in cols]
        if missing:
            problems.append(f"{where_table}: missing column(s) {missing}; expected columns "
                            f"{required} (found {list(cols)})")  # fmt: skip
            continue
        problems += _table_problems(checks, name, where_table, schema.columns, cols)
    if not problems:
        problems += _reference_problems(checks, tables, stored, config)
    if problems:
        raise DataContractError(problems)


def _table_problems(
    checks: _Checks,
    name: str,
    where_table: str,
    columns: tuple[Column, ...],
    stored: Mapping[str, str],
) -> list[str]:
    """The problems of one table's columns, in the local path's order (column by column:
    type, values, then repeated ids), from one scan plus an exact query where ids may repeat."""
    view = file_view(name)
    typed = [c for c in columns if c.name in stored and _type_fits(c.kind, stored[c.name])]
    of_column = {c.name: checks.of_column(f"{where_table}.{c.name}", c, stored[c.name])
                 for c in typed}  # fmt: skip
    ids = [c for c in typed if c.kind == "id"]
    failed, padded = checks.scan(view, [k for c in typed for k in of_column[c.name]], ids)
    maybe = [c for c, pad in zip(ids, padded, strict=True) if checks.may_repeat(view, c, pad)]
    problems = []
    for col in columns:
        if col.name not in stored:
            continue
        where = f"{where_table}.{col.name}"
        if col not in typed:
            problems.append(f"{where}: stored as {stored[col.name].upper()}; expected "
                            f"{_EXPECTED_TYPE[col.kind]} (canonical Parquet as `leadscore data "
                            "convert` writes it)")  # fmt: skip
            continue
        for check, count, row in failed:
            if check.column == col.name:
                value = checks.value_at(view, col.name, row)
                problems.append(problem_line(where, count, row, value, check.what, check.expected))
        if col in maybe and (dup := checks.repeats(view, col)) is not None:
            value = checks.value_at(view, col.name, dup[1], trimmed=True)
            problems.append(problem_line(where, dup[0], dup[1], value, "repeat an id",
                                         "each id once"))  # fmt: skip
    return problems


def _reference_problems(
    checks: _Checks,
    tables: Mapping[str, Path],
    stored: Mapping[str, Mapping[str, str]],
    config: FeatureConfig,
) -> list[str]:
    problems = []
    for name, schema in schemas(config).items():
        if name not in tables:
            continue
        for col in schema.columns:
            if col.ref is None or col.name not in stored[name]:
                continue
            ref_table, ref_col = col.ref.split(".")
            if ref_table not in tables or ref_col not in stored[ref_table]:
                continue  # as the local path: an absent table has nothing to refer to
            count, row = checks.unknown(file_view(name), col, file_view(ref_table), ref_col)
            if count:
                value = checks.value_at(file_view(name), col.name, row, trimmed=True)
                where = f"{name} ({tables[name]}).{col.name}"
                problems.append(problem_line(where, count, row, value,
                                             f"reference an unknown {ref_col}",
                                             f"an id present in {ref_table}.{ref_col}"))
    return problems
