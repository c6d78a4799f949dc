"""The canonical tables: names, keys, columns and what each column must hold.

Pure data, no pandas: the one-lead path (the API, `criteria check`) and the batch path
(:mod:`leadscore.features.contract`) both read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
        "accounts": [
            Column("account_id", "id"),
            Column("company_name", "string", required=False),
            Column("industry", "category"),
            Column("region", "category"),
            Column("employee_band", "category"),
            Column("revenue_band", "category"),
        ],
        "contacts": [
            Column("contact_id", "id"),
            Column("account_id", "ref", nullable=False, ref="accounts.account_id"),
            Column("job_title", "string", required=False),
            Column("role_function", "category"),
            Column("seniority", "category"),
            Column("buyer_role", "category"),
        ],
        "leads": [
            Column("lead_id", "id"),
            Column("account_id", "ref", nullable=False, ref="accounts.account_id"),
            Column("contact_id", "ref", ref="contacts.contact_id"),
            Column("created_at", "timestamp", nullable=False),
            Column("source", "category", nullable=False),
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


