"""The canonical tables: names, keys, columns and what each column must hold.

Pure data, no pandas: the one-lead path (the API, `criteria check`) and the batch path
(:mod:`leadscore.features.contract`) both read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from leadscore.features.config import FeatureConfig
from leadscore.features.errors import LeadscoreError

Kind = Literal["id", "ref", "string", "category", "timestamp", "number", "count", "boolean"]

TABLES = ("accounts", "contacts", "leads", "events", "outcomes")


class DataContractError(LeadscoreError, ValueError):
    """Input data breaks the contract; the message lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid input data:\n  - " + "\n  - ".join(problems))

    def lines(self) -> list[str]:
        """One line per problem (each names the file or table, the column and the rows)."""
        return list(self.problems)


class UnseenCategoryWarning(UserWarning):
    """A value outside a declared vocabulary: kept, counted, later reported as unseen."""


@dataclass(frozen=True)
class Column:
    """One canonical column and what the contract expects of it."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = True
    ref: str | None = None  # "table.column" an id must exist in
    vocabulary: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSchema:
    """A canonical table: its key and columns."""

    name: str
    key: str | None
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """The column called `name`."""
        return next(c for c in self.columns if c.name == name)


# Event types the features know. Others are kept (a CRM may log more) and simply match no
# feature filter.
EVENT_TYPES = ("touch", "web_session", "sales_activity", "opportunity_opened", "field_update")

# Columns that encode the outcome or current state. They may be carried by a source (the
# criteria read some of them) but are never features; the spec refuses them.
CURRENT_STATE_COLUMNS = frozenset(
    {
        "stage",
        "current_stage",
        "is_sql",
        "converted_within_90_days",
        "conversion_timestamp",
        "close_outcome",
        "closed_at",
        "sql_at",
        "won_at",
        "lost_at",
        "total_touches_all",
    }
)


def _base_columns() -> dict[str, list[Column]]:
    return {
        # fit attributes are optional columns: an export that lacks one gets empty values
        "accounts": [
            Column("account_id", "id"),
            Column("company_name", "string", required=False),
            Column("industry", "category", required=False),
            Column("region", "category", required=False),
            Column("employee_band", "category", required=False),
            Column("revenue_band", "category", required=False),
        ],
        "contacts": [
            Column("contact_id", "id"),
            Column("account_id", "ref", required=False, ref="accounts.account_id"),
            Column("job_title", "string", required=False),
            Column("role_function", "category", required=False),
            Column("seniority", "category", required=False),
            Column("buyer_role", "category", required=False),
        ],
        "leads": [
            Column("lead_id", "id"),
            Column("account_id", "ref", required=False, ref="accounts.account_id"),
            Column("contact_id", "ref", required=False, ref="contacts.contact_id"),
            Column("created_at", "timestamp", nullable=False),
            Column("source", "category"),  # an export may not know it: the feature is then missing
            # who works the lead (a CRM user id or name): routing and queues, never a feature
            Column("owner", "string", required=False),
            # Undated current state: SQL-criteria inputs only, never features.
            Column("budget_confirmed", "boolean", required=False),
            Column("budget_amount", "number", required=False),
            Column("timeline_days", "number", required=False),
            Column("pain_point", "string", required=False),
        ],
        "events": [
            Column("event_id", "id"),
            Column("lead_id", "ref", nullable=False, ref="leads.lead_id"),
            Column("timestamp", "timestamp", nullable=False),
            Column("type", "category", nullable=False),
            Column("subtype", "category", required=False),
            Column("channel", "category", required=False),
            Column("direction", "category", required=False),
            Column("outcome", "category", required=False),
            Column("value", "number", required=False),
            Column("page_views", "count", required=False),
            Column("pricing_page_views", "count", required=False),
            Column("demo_page_views", "count", required=False),
            Column("duration_seconds", "count", required=False),
            Column("field", "string", required=False),
            Column("field_value", "string", required=False),
        ],
        "outcomes": [
            Column("lead_id", "id", ref="leads.lead_id"),
            Column("sql_at", "timestamp", required=False),
            Column("won_at", "timestamp", required=False),
            Column("lost_at", "timestamp", required=False),
        ],
    }


_ENTITY_TABLE = {"lead": "leads", "account": "accounts", "contact": "contacts"}


def schemas(config: FeatureConfig) -> dict[str, TableSchema]:
    """Canonical table schemas, with declared band orders and the config's custom fields."""
    tables = _base_columns()
    for entity, table in _ENTITY_TABLE.items():
        cols = tables[table]
        for i, col in enumerate(cols):
            order = config.order_of(f"{entity}.{col.name}")
            if order:
                cols[i] = Column(col.name, col.kind, col.required, col.nullable, col.ref, order)
    for custom in config.custom_fields:
        cols = tables[_ENTITY_TABLE[custom.entity]]
        if any(c.name == custom.name for c in cols):
            raise ValueError(f"custom field {custom.qualified} clashes with a built-in column")
        kind: Kind = custom.type if custom.type in ("number", "boolean") else "category"
        # Custom fields are optional columns: a source that lacks one gets nulls, so one config
        # serves several sources.
        cols.append(Column(custom.name, kind, required=False, vocabulary=custom.vocabulary))
    keys = {"accounts": "account_id", "contacts": "contact_id", "leads": "lead_id"}
    keys |= {"events": "event_id", "outcomes": "lead_id"}
    return {name: TableSchema(name, keys[name], tuple(cols)) for name, cols in tables.items()}


# How text spells a boolean, wherever text becomes one (tables, field updates, one-lead bodies).
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})

# A date without a time of day (a CRM's "ConvertedDate", a flat file's "2024-02-01") is read as
# the END of that day, everywhere (tables, lead bodies, --as-of): nothing dated on a day may
# reach an as_of earlier that day. Microseconds, so that every engine keeps the same moment.
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
END_OF_DAY = timedelta(days=1, microseconds=-1)


def end_of_day(day: date) -> datetime:
    """The last microsecond of a day."""
    return datetime(day.year, day.month, day.day) + END_OF_DAY


def date_only_moment(value: Any) -> datetime | None:
    """The end of the day for a date without a time (a `date`, or ISO text like 2024-02-01);
    None for anything else."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return end_of_day(value)
    if isinstance(value, str) and DATE_ONLY.match(value.strip()):
        try:
            return end_of_day(date.fromisoformat(value.strip()))
        except ValueError:  # 2024-13-45: not a date; the caller reports it
            return None
    return None
