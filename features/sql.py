"""The feature spec compiled to SQL: the point-in-time snapshot as one query.

:func:`compile_snapshot` turns a :class:`~leadscore.features.spec.FeatureSpec` into one SQL
query over the canonical tables ``leads``, ``accounts``, ``contacts``, ``events`` and a table
``as_of`` (``lead_id``, ``as_of``). It follows the rules of :mod:`~leadscore.features.snapshot`
(the local builder), which a property-based test holds it equal to:

* an event counts when ``events.timestamp <= as_of`` of its own lead (compared as integer
  time since the epoch, so that nanoseconds are neither rounded nor truncated);
* windows: ``first_7d`` is ``created_at <= t <= created_at + 7 d``; ``last_7d`` is
  ``as_of - 7 d < t``; ``prev_7d`` is ``as_of - 14 d < t <= as_of - 7 d``;
* sums treat a missing value as 0; ``max``/``days_since_*`` are missing without a match;
* ``latest`` takes the matching event with the greatest (timestamp, event_id) and parses its
  ``field_value`` as :func:`~leadscore.features.spec.parse_field_value` does.

The query is made of one small function per feature kind (:data:`_AGGREGATES`,
:data:`_FINISH`) over a :class:`Dialect` that holds every piece of syntax engines spell
differently: DuckDB and Spark SQL (:mod:`~leadscore.features.spark` runs it; Spark keeps
microseconds, so moments finer than that are floored when Spark reads them).
:func:`snapshot_duckdb` runs the query on in-memory :class:`CrmData` frames and
:func:`snapshot_duckdb_parquet` on a canonical Parquet directory
(:func:`~leadscore.features.sources.canonical.write_canonical`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from leadscore.features.errors import LeadscoreError
from leadscore.features.schema import FALSE_TEXT, TRUE_TEXT
from leadscore.features.spec import DAY_NS, WINDOW_DAYS, Feature, FeatureSpec, Window

if TYPE_CHECKING:  # pandas and duckdb are only imported when a snapshot is run
    import duckdb
    import pandas as pd

    from leadscore.features.contract import CrmData

DialectName = Literal["duckdb", "spark"]

# What Python's str.strip() removes (parse_field_value strips text that way).
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())  # U+3000 is the last


# float()'s syntax for a finite number, after stripping: digits with single underscores
# between them, an optional fraction and exponent (no backslash: Spark literals escape it)
_DIGITS = "[0-9](_?[0-9])*"
_FLOAT_SYNTAX = f"^[+-]?({_DIGITS}([.]({_DIGITS})?)?|[.]{_DIGITS})([eE][+-]?{_DIGITS})?$"


@dataclass(frozen=True)
class Dialect:
    """The syntax one SQL engine spells its own way; every template takes ``{}`` arguments."""

    name: str
    epoch: str  # a timestamp as an integer count of `units_per_day / 86400` s since 1970
    units_per_day: int  # DuckDB keeps nanoseconds; Spark only microseconds (unix_micros)
    from_epoch: str  # the inverse of `epoch` (as_of computed in the engine)
    quote: str  # identifier quoting: "x" in DuckDB, `x` in Spark
    text: str  # the string type name: VARCHAR / STRING
    record: str  # a comparable record of (t, id, v): struct_pack / named_struct
    field_of: str  # the v of a record: struct_extract(r, 'v') / r.v
    finite: str  # a double that is neither NaN nor infinite: isfinite(x) / no such function
    strip: str  # trim the given characters on both sides: trim(x, c) / trim(BOTH c FROM x)
    # text -> double as float() reads it ({0} the text, {1} the whitespace str.strip() removes)
    number: str
    backslash_escapes: bool = False  # Spark reads \\ in a string literal as an escape

    def literal(self, text: str) -> str:
        """`text` as a string literal of this dialect."""
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"


DIALECTS: dict[str, Dialect] = {
    "duckdb": Dialect(
        name="duckdb",
        epoch="epoch_ns({})",
        units_per_day=DAY_NS,
        from_epoch="make_timestamp_ns({})",
        quote='"{}"',
        text="VARCHAR",
        record="struct_pack(t := {}, id := {}, v := {})",
        field_of="struct_extract({}, 'v')",
        finite="isfinite({})",
        strip="trim({}, {})",
        # DuckDB's cast, like Spark's, reads text float() refuses ("1__0", "0x10"): only
        # float()'s syntax is cast
        number=f"CASE WHEN regexp_full_match(trim({{0}}, {{1}}), '{_FLOAT_SYNTAX}') "
        "THEN TRY_CAST(replace(trim({0}, {1}), '_', '') AS DOUBLE) END",
    ),
    "spark": Dialect(
        name="spark",
        epoch="unix_micros({})",
        units_per_day=DAY_NS // 1000,
        from_epoch="timestamp_micros({})",
        quote="`{}`",
        text="STRING",
        record="named_struct('t', {}, 'id', {}, 'v', {})",
        field_of="{}.v",
        finite="NOT (isnan({0}) OR abs({0}) = double('infinity'))",
        strip="trim(BOTH {1} FROM {0})",
        backslash_escapes=True,
        # Spark's cast reads "1200d" and refuses "1_000" and "\u00a042"; float() does the
        # opposite: only float()'s syntax is cast (inf and nan are not finite anyway)
        number=f"CASE WHEN trim(BOTH {{1}} FROM {{0}}) RLIKE '{_FLOAT_SYNTAX}' "
        "THEN try_cast(replace(trim(BOTH {1} FROM {0}), '_', '') AS DOUBLE) END",
    ),
}


def dialect_of(name: str) -> Dialect:
    """The :class:`Dialect` called `name` (NotImplementedError for one not written yet)."""
    if name not in DIALECTS:
        have = ", ".join(DIALECTS)
        raise NotImplementedError(f"SQL dialect {name!r} is not implemented yet (have: {have})")
    return DIALECTS[name]


class _Sql:
    """Helpers over one dialect: identifiers, literals and the value of a feature's inputs."""

    def __init__(self, dialect: Dialect):
        self.d = dialect
        self.flags: dict[str, str] = {}  # condition on a raw event -> its column name in ev

    def flag(self, condition: str) -> str:
        """`condition` as a boolean column of ev, computed once per event however many
        features test it (the local builder caches its masks for the same reason)."""
        return "ev." + self.flags.setdefault(condition, f"k{len(self.flags)}")

    def q(self, name: str) -> str:
        return self.d.quote.format(name.replace(self.d.quote[0], self.d.quote[0] * 2))

    def lit(self, text: str) -> str:
        return self.d.literal(text)

    def texts(self, values: Collection[str]) -> str:
        return ", ".join(self.lit(v) for v in sorted(values))

    def double(self, expr: str) -> str:
        return f"CAST({expr} AS DOUBLE)"


# ---------------------------------------------------------------------------------------------
# event features: one aggregate over the lead's point-in-time events (ev, with a boolean column
# per condition tested on the raw events r), then a finishing expression over that aggregate
# (g.<feature>), the lead's as_of (p.as_of_t) and created_t


def _window(window: Window, day: int) -> list[str]:
    week = WINDOW_DAYS * day
    if window == "all":
        return []
    if window == "first_7d":
        return ["r.t >= r.created_t", f"r.t <= r.created_t + {week}"]
    if window == "last_7d":
        return [f"r.t > r.as_of_t - {week}"]
    return [f"r.t > r.as_of_t - {2 * week}", f"r.t <= r.as_of_t - {week}"]


def _condition(s: _Sql, f: Feature) -> str:
    parts = _window(f.window, s.d.units_per_day)
    parts += [f"r.{s.q(col)} IN ({s.texts(allowed)})" for col, allowed in f.filter.conditions()]
    return " AND ".join(s.flag(part) for part in parts) or "TRUE"


def _when(s: _Sql, f: Feature, value: str) -> str:
    return f"CASE WHEN {_condition(s, f)} THEN {value} END"


def _source(s: _Sql, f: Feature) -> str:
    return s.double(f"ev.{s.q(str(f.source))}")


_AGGREGATES: dict[str, Callable[[_Sql, Feature], str]] = {
    "count": lambda s, f: f"COUNT({_when(s, f, '1')})",
    "exists": lambda s, f: f"COUNT({_when(s, f, '1')})",
    "sum": lambda s, f: f"SUM({_when(s, f, f'COALESCE({_source(s, f)}, 0)')})",
    "max": lambda s, f: f"MAX({_when(s, f, _source(s, f))})",
    "days_since_last": lambda s, f: f"MAX({_when(s, f, 'ev.t')})",
    "days_since_first": lambda s, f: f"MIN({_when(s, f, 'ev.t')})",
    "latest": lambda s, f: "MAX({})".format(
        _when(s, f, s.d.record.format("ev.t", "ev.event_id", f"ev.{s.q('field_value')}"))
    ),
}


def _days_since(s: _Sql, moment: str) -> str:
    return f"{s.double(f'p.as_of_t - {moment}')} / {s.d.units_per_day}.0"


def _parsed(s: _Sql, f: Feature, raw: str) -> str:
    """`raw` text as parse_field_value reads it for the feature's dtype (NULL if unreadable)."""
    stripped = s.d.strip.format(raw, s.lit(_WHITESPACE))
    if f.dtype in ("number", "count"):
        number = s.d.number.format(raw, s.lit(_WHITESPACE))
        return f"CASE WHEN {s.d.finite.format(number)} THEN {number} END"
    if f.dtype == "boolean":
        lower = f"lower({stripped})"
        return (f"CASE WHEN {lower} IN ({s.texts(TRUE_TEXT)}) THEN TRUE "
                f"WHEN {lower} IN ({s.texts(FALSE_TEXT)}) THEN FALSE END")  # fmt: skip
    return f"NULLIF({stripped}, '')"


_FINISH: dict[str, Callable[[_Sql, Feature, str], str]] = {
    "count": lambda s, f, g: f"COALESCE({g}, 0)",
    "exists": lambda s, f, g: f"COALESCE({g}, 0) > 0",
    "sum": lambda s, f, g: f"COALESCE({g}, 0.0)",
    "max": lambda s, f, g: g,
    "days_since_last": lambda s, f, g: _days_since(s, g),
    "days_since_first": lambda s, f, g: _days_since(s, g),
    "latest": lambda s, f, g: _parsed(s, f, s.d.field_of.format(g)),
}


# ---------------------------------------------------------------------------------------------
# lead-level features: attributes, and ratio/difference of earlier features

_ENTITY_ALIAS = {"lead": "l", "account": "a", "contact": "c"}
_ENTITY_TABLE = {"lead": "leads", "account": "accounts", "contact": "contacts"}
_ENTITY_JOINS = {
    "account": "LEFT JOIN accounts a ON a.account_id = l.account_id",
    "contact": "LEFT JOIN contacts c ON c.contact_id = l.contact_id",
}


def _typed_null(s: _Sql, f: Feature) -> str:
    return f"CAST(NULL AS {_sql_type(s, f)})"


def _sql_type(s: _Sql, f: Feature) -> str:
    if f.dtype in ("category", "ordinal"):
        return s.d.text
    return "BOOLEAN" if f.dtype == "boolean" else "DOUBLE"


def _attribute(s: _Sql, f: Feature, columns: Mapping[str, Collection[str]] | None) -> str:
    entity, column = str(f.source).split(".")
    known = None if columns is None else columns.get(_ENTITY_TABLE[entity], ())
    if known is not None and column not in known:  # as the local builder: an absent column
        return _typed_null(s, f)
    return f"CAST({_ENTITY_ALIAS[entity]}.{s.q(column)} AS {_sql_type(s, f)})"


def _ratio(s: _Sql, num: str, den: str) -> str:
    return f"CASE WHEN {s.double(den)} <> 0 THEN {s.double(num)} / {s.double(den)} END"


def _difference(s: _Sql, a: str, b: str) -> str:
    return f"{s.double(a)} - {s.double(b)}"


_COMBINE: dict[str, Callable[[_Sql, str, str], str]] = {
    "ratio": _ratio,
    "difference": _difference,
}


# ---------------------------------------------------------------------------------------------
# the query

# event columns every query reads, besides the spec's filters and sources
_EVENT_BASE = ("event_id", "lead_id", "timestamp")


def event_columns(spec: FeatureSpec) -> list[str]:
    """The events columns the compiled query reads (so that callers load only those)."""
    cols = list(_EVENT_BASE)
    for f in spec:
        if f.kind not in _AGGREGATES:
            continue
        cols += [col for col, _ in f.filter.conditions()]
        cols += [str(f.source)] if f.kind in ("sum", "max") else []
        cols += ["field_value"] if f.kind == "latest" else []
    return list(dict.fromkeys(cols))


def compile_snapshot(
    spec: FeatureSpec,
    dialect: DialectName = "duckdb",
    columns: Mapping[str, Collection[str]] | None = None,
    order_by: str | None = None,
) -> str:
    """One SQL query computing the point-in-time snapshot of every lead listed in ``as_of``.

    Reads tables ``leads``, ``accounts``, ``contacts``, ``events`` and ``as_of`` (``lead_id``,
    ``as_of``); returns ``lead_id``, ``as_of``, ``lead_age_days`` and every other spec feature
    in spec order, one row per ``as_of`` row whose lead exists, in no particular order.
    `columns` (table -> its column names) makes an attribute of an absent column missing, as
    the local builder does; without it every attribute column must exist. `order_by` names a
    column of ``as_of`` to sort the rows by (a row number), instead of no particular order.
    Raises NotImplementedError for a feature kind or dialect not compiled yet.
    """
    s = _Sql(dialect_of(dialect))
    pit = _point_in_time_events(s, spec)
    out = ["l.lead_id AS lead_id", "p.as_of AS as_of",
           f"{_days_since(s, 'p.created_t')} AS lead_age_days"]  # fmt: skip
    exprs: dict[str, str] = {}
    aggregates: list[str] = []
    for f in spec:
        if f.kind == "age":
            continue  # lead_age_days is always a column
        if f.kind in _AGGREGATES:
            aggregates.append(f"{_AGGREGATES[f.kind](s, f)} AS {s.q(f.name)}")
            exprs[f.name] = _FINISH[f.kind](s, f, f"g.{s.q(f.name)}")
        elif f.kind == "attribute":
            exprs[f.name] = _attribute(s, f, columns)
        elif f.kind in _COMBINE:
            a, b = (_input(s, exprs, spec, name) for name in f.inputs)
            exprs[f.name] = _COMBINE[f.kind](s, f"({a})", f"({b})")
        else:
            raise NotImplementedError(f"feature {f.name!r}: kind {f.kind!r} has no SQL yet")
        out.append(f"{exprs[f.name]} AS {s.q(f.name)}")
    joins = [join for entity, join in _ENTITY_JOINS.items() if _reads(spec, entity)]
    carried = f", o.{s.q(order_by)} AS ord" if order_by else ""
    ctes = [f"p AS (\n  SELECT o.lead_id, o.as_of{carried},\n"
            f"    {s.d.epoch.format('o.as_of')} AS as_of_t,\n"
            f"    {s.d.epoch.format('l.created_at')} AS created_t\n"
            "  FROM as_of o JOIN leads l ON l.lead_id = o.lead_id\n)"]  # fmt: skip
    if aggregates:
        ctes.append(f"r AS (\n{pit}\n)")
        ctes.append(_flagged_events(s, spec))
        ctes.append("g AS (\n  SELECT ev.lead_id,\n    " + ",\n    ".join(aggregates)
                    + "\n  FROM ev GROUP BY ev.lead_id\n)")  # fmt: skip
        joins.append("LEFT JOIN g ON g.lead_id = l.lead_id")
    return (
        "WITH " + ",\n".join(ctes) + "\nSELECT\n  " + ",\n  ".join(out)
        + "\nFROM p JOIN leads l ON l.lead_id = p.lead_id\n"
        + "\n".join(joins)
        + ("\nORDER BY p.ord" if order_by else "")
    )  # fmt: skip


def _input(s: _Sql, exprs: Mapping[str, str], spec: FeatureSpec, name: str) -> str:
    if name in exprs:
        return exprs[name]
    if spec[name].kind == "age":
        return _days_since(s, "p.created_t")
    raise NotImplementedError(f"feature {name!r}: not compiled before it is used")


def _reads(spec: FeatureSpec, entity: str) -> bool:
    return any(f.kind == "attribute" and str(f.source).startswith(f"{entity}.") for f in spec)


def _point_in_time_events(s: _Sql, spec: FeatureSpec) -> str:
    """Every event of a listed lead dated at or before that lead's as_of, with its moment as
    epoch units (t), the lead's as_of_t and created_t. When every event feature names event
    types, only events of those types are read."""
    cols = [c for c in event_columns(spec) if c not in _EVENT_BASE]
    picked = ", ".join(f"e.{s.q(c)}" for c in cols)
    where = [f"{s.d.epoch.format('e.' + s.q('timestamp'))} <= p.as_of_t"]
    event_features = [f for f in spec if f.kind in _AGGREGATES]
    if all(f.filter.type for f in event_features):
        types = {t for f in event_features for t in f.filter.type}
        where.append(f"e.{s.q('type')} IN ({s.texts(types)})")
    return (
        f"  SELECT e.event_id, e.lead_id, {s.d.epoch.format('e.' + s.q('timestamp'))} AS t,"
        f" p.as_of_t, p.created_t{', ' + picked if picked else ''}\n"
        "  FROM events e JOIN p ON e.lead_id = p.lead_id\n"
        "  WHERE " + " AND ".join(where)
    )


def _flagged_events(s: _Sql, spec: FeatureSpec) -> str:
    """The ev CTE: r's events with the columns the aggregates read and one boolean per
    condition they test."""
    values = {str(f.source) for f in spec if f.kind in ("sum", "max")}
    values |= {"field_value"} if any(f.kind == "latest" for f in spec) else set()
    picked = ["r.lead_id", "r.event_id", "r.t", *(f"r.{s.q(c)}" for c in sorted(values))]
    picked += [f"{condition} AS {name}" for condition, name in s.flags.items()]
    return "ev AS (\n  SELECT " + ",\n    ".join(picked) + "\n  FROM r\n)"


# ---------------------------------------------------------------------------------------------
# running it on DuckDB


class SqlSnapshotError(LeadscoreError, ValueError):
    """A SQL snapshot cannot be run on this input (missing table file, bad as_of)."""


def _connect(memory_limit: str | None, threads: int | None) -> duckdb.DuckDBPyConnection:
    import duckdb  # imported only when a DuckDB snapshot runs

    con = duckdb.connect()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = {DIALECTS['duckdb'].literal(memory_limit)}")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _finish(result: pd.DataFrame, spec: FeatureSpec, lead_ids: pd.Series) -> pd.DataFrame:
    """The engine's rows in the order of `lead_ids`, with the local builder's dtypes."""
    import pandas as pd

    rows = pd.Index(result["lead_id"].astype(str)).get_indexer(pd.Index(lead_ids.astype(str)))
    if (rows < 0).any():
        missing = lead_ids[rows < 0].iloc[0]
        raise SqlSnapshotError(f"lead {missing!r}: no row in the SQL snapshot")
    result = result.take(rows).reset_index(drop=True)
    return typed_rows(result.assign(lead_id=lead_ids.reset_index(drop=True)), spec)


def typed_rows(result: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Rows of the compiled query (as the engine returned them) with the local builder's
    columns and dtypes, in their order."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {
        "lead_id": result["lead_id"].astype("string").reset_index(drop=True),
        "as_of": result["as_of"].astype("datetime64[ns]").reset_index(drop=True),
        "lead_age_days": result["lead_age_days"].astype("float64").reset_index(drop=True),
    }
    for f in spec:
        if f.kind == "age":
            continue
        col = result[f.name].reset_index(drop=True)
        if f.kind == "count":
            out[f.name] = col.astype(np.int64)
        elif f.kind == "exists":
            out[f.name] = col.astype(bool)
        elif f.kind in ("attribute", "latest") and f.dtype in ("category", "ordinal"):
            out[f.name] = col.astype("string")
        elif f.kind in ("attribute", "latest") and f.dtype == "boolean":
            out[f.name] = col.astype("boolean")
        else:
            out[f.name] = col.astype("float64")
    return pd.DataFrame(out)


def _arrow(frame: pd.DataFrame, keep: Collection[str] | None = None) -> Any:
    import pyarrow as pa

    cols = list(frame.columns) if keep is None else [c for c in frame.columns if c in keep]
    return pa.Table.from_pandas(frame[cols], preserve_index=False)


def snapshot_duckdb(
    crm: CrmData,
    spec: FeatureSpec,
    as_of: pd.Series,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """:func:`~leadscore.features.snapshot.snapshot`, computed by DuckDB from the compiled SQL.

    `as_of` is a Series aligned to ``crm.leads``. Returns the same columns, in the same order
    and with the same dtypes as the local builder. `memory_limit` (DuckDB's, e.g. ``"2GB"``)
    makes DuckDB spill to disk rather than grow past it.
    """
    import pandas as pd

    if len(as_of) != len(crm.leads):
        raise ValueError("as_of must have one entry per lead")
    lead_ids = crm.leads["lead_id"].reset_index(drop=True)
    moments = pd.Series(as_of).reset_index(drop=True).astype("datetime64[ns]")
    lead_cols = {"lead_id", "account_id", "contact_id", "created_at"}
    lead_cols |= {str(f.source).split(".")[1] for f in spec
                  if f.kind == "attribute" and str(f.source).startswith("lead.")}  # fmt: skip
    tables = {
        "leads": _arrow(crm.leads, lead_cols),
        "accounts": _arrow(crm.accounts),
        "contacts": _arrow(crm.contacts),
        "events": _arrow(crm.events, event_columns(spec)),
        "as_of": _arrow(pd.DataFrame({"lead_id": lead_ids, "as_of": moments})),
    }
    columns = {name: set(table.column_names) for name, table in tables.items()}
    con = _connect(memory_limit, threads)
    try:
        for name, table in tables.items():
            con.register(name, table)
        result = con.execute(compile_snapshot(spec, "duckdb", columns)).df()
    finally:
        con.close()
    return _finish(result, spec, lead_ids)


PARQUET_TABLES = ("leads", "accounts", "contacts", "events")


def snapshot_duckdb_parquet(
    directory: Path | str,
    spec: FeatureSpec,
    as_of: pd.DataFrame | pd.Timestamp | float,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """The snapshot computed by DuckDB straight from a canonical Parquet directory.

    `as_of` is a frame (``lead_id``, ``as_of``), one moment for every lead, or a number of
    days after each lead's creation (``created_at + days x 24 h``, as
    :func:`~leadscore.features.snapshot.as_of_after_creation`). Rows come in the order of
    ``leads.parquet``.
    """
    import pandas as pd

    root, duck = Path(directory), DIALECTS["duckdb"]
    con = _connect(memory_limit, threads)
    try:
        columns: dict[str, set[str]] = {}
        for name in PARQUET_TABLES:
            path = root / f"{name}.parquet"
            if not path.is_file():
                raise SqlSnapshotError(f"{path}: no such file; a canonical Parquet directory "
                                       f"holds {', '.join(PARQUET_TABLES)} (.parquet)")  # fmt: skip
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet("
                        f"{duck.literal(str(path))})")
            columns[name] = {row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()}
        if isinstance(as_of, pd.DataFrame):
            con.register("as_of", _arrow(as_of.astype({"as_of": "datetime64[ns]"}),
                                         ("lead_id", "as_of")))  # fmt: skip
        elif isinstance(as_of, pd.Timestamp):
            moment = duck.from_epoch.format(as_of.value)
            con.execute(f"CREATE VIEW as_of AS SELECT lead_id, {moment} AS as_of FROM leads")
        else:
            shift = pd.Timedelta(days=float(as_of)).value  # as as_of_after_creation, to the ns
            moment = duck.from_epoch.format(f"{duck.epoch.format('created_at')} + {shift}")
            con.execute(f"CREATE VIEW as_of AS SELECT lead_id, {moment} AS as_of FROM leads")
        result = con.execute(compile_snapshot(spec, "duckdb", columns)).df()
        lead_ids = con.execute("SELECT lead_id FROM leads").df()["lead_id"]
    finally:
        con.close()
    if isinstance(as_of, pd.DataFrame):  # only the leads asked for, in leads.parquet order
        lead_ids = lead_ids[lead_ids.isin(set(as_of["lead_id"]))]
    return _finish(result, spec, lead_ids)
