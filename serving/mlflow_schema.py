"""The MLflow pyfunc signature and input example, built from the data contract.

`lead`, `account` and `contact` are objects whose properties are the contract's columns
(custom fields from config included), optional unless the contract requires them, never
inferred from one example. `events` is an array of maps: event payloads differ by type and
CRMs add their own keys, which the contract keeps and ignores; the scorer validates each event
against the contract itself (`features.payload`) and names the bad index and field.
"""

from __future__ import annotations

from mlflow.models.signature import ModelSignature
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from leadscore.features.config import FeatureConfig
from leadscore.features.schema import Column, schemas

_TYPES = {
    "number": DataType.double,
    "count": DataType.long,
    "boolean": DataType.boolean,
}
_REQUIRED = {"leads": {"lead_id", "created_at"}}


def _object(table: str, columns: tuple[Column, ...]) -> Object:
    props = [
        Property(
            c.name,
            _TYPES.get(c.kind, DataType.string),  # ids, text, categories, ISO timestamps
            required=c.name in _REQUIRED.get(table, set()),
        )
        for c in columns
    ]
    return Object(props)


def signature(config: FeatureConfig) -> ModelSignature:
    """Input: one row per lead; output: the scores; param: `as_of` (ISO-8601, default now)."""
    tables = schemas(config)
    inputs = Schema(
        [
            ColSpec(_object("leads", tables["leads"].columns), "lead"),
            ColSpec(_object("accounts", tables["accounts"].columns), "account", required=False),
            ColSpec(_object("contacts", tables["contacts"].columns), "contact", required=False),
            ColSpec(Array(Map(AnyType())), "events", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "lead_id"),
            ColSpec(DataType.double, "mql_probability"),
            ColSpec(DataType.string, "tier"),
            ColSpec(DataType.boolean, "is_mql"),
            ColSpec(DataType.double, "threshold"),
        ]
    )
    params = ParamSchema([ParamSpec("as_of", DataType.string, None)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
