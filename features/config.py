"""Human-edited configuration: where the files are, and `features.yaml` (bands, custom fields).

The defaults ship inside the package (`leadscore.config`); `leadscore init DIR` writes editable
copies, and ``LEADSCORE_CONFIG_DIR`` (or the command line's ``--config-dir``) points every
command at them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.features.configdir import config_file
from leadscore.features.yamlfile import ConfigError as ConfigError  # every loader raises it
from leadscore.features.yamlfile import load_yaml

Entity = Literal["lead", "account", "contact"]
Group = Literal["fit", "engagement", "sales"]



class CustomField(BaseModel):
    """One of the user's own CRM fields, declared in config instead of code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    entity: Entity
    type: Literal["category", "ordinal", "number", "boolean"]
    values: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None
    group: Group = "fit"
    label: str
    description: str = ""
    template: str
    dated: bool = False
    # When an undated value is known: `creation` (a fit attribute: a feature), `export` (a total
    # as of the export: a feature, but the model is then not point in time), or unset. An
    # undated LEAD field left unset is criteria-only (BANT answers, sales-entered state), never a
    # feature; account and contact fields are firmographics, known at creation.
    known_at: Literal["creation", "export"] | None = None
    source_column: str | None = None  # the export's own column name (flat files), for people

    @property
    def is_feature(self) -> bool:
        """Whether the field becomes a model input (see `known_at`)."""
        return self.dated or self.entity != "lead" or self.known_at is not None

    @model_validator(mode="after")
    def _order_matches_type(self) -> CustomField:
        if self.type == "ordinal" and not self.order:
            raise ValueError(f"custom field {self.name!r}: type ordinal needs `order`")
        if self.type != "ordinal" and self.order:
            raise ValueError(f"custom field {self.name!r}: `order` is only for type ordinal")
        if self.values and self.type != "category":
            raise ValueError(f"custom field {self.name!r}: `values` is only for type category")
        if "{value}" not in self.template:
            raise ValueError(f"custom field {self.name!r}: template must contain {{value}}")
        return self

    @property
    def qualified(self) -> str:
        """`entity.name`, as the contract and the criteria address it."""
        return f"{self.entity}.{self.name}"

    @property
    def vocabulary(self) -> tuple[str, ...] | None:
        """Declared values (the order for ordinals), or None when learned at training."""
        return self.order or self.values


class FeatureConfig(BaseModel):
    """Contents of `features.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ordered: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    custom_fields: tuple[CustomField, ...] = ()
    # how the readers see "no value" and dates that are not ISO-8601 (exports, flat files)
    placeholders: tuple[str, ...] = ("", "Select", "N/A", "unknown", "-")
    date_format: str | None = None  # a strftime pattern, e.g. "%m/%d/%Y"
    # which built-in features the spec keeps: all of them, or only the attributes (a flat file
    # has no events: its engagement is the totals it maps)
    builtin_features: Literal["all", "attributes"] = "all"
    # features left out of the spec (the leakage audit refused them at training)
    exclude_features: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureConfig:
        names = [f.name for f in self.custom_fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"custom field names must be unique; repeated: {dupes}")
        for key, order in self.ordered.items():
            if "." not in key:
                raise ValueError(f"ordered: key {key!r} must be qualified, e.g. account.{key}")
            if len(set(order)) != len(order):
                raise ValueError(f"ordered: {key} lists a value twice")
        return self

    def order_of(self, qualified: str) -> tuple[str, ...] | None:
        """Declared order of a band-like column (`account.employee_band`), if any."""
        for field in self.custom_fields:
            if field.qualified == qualified and field.order:
                return field.order
        return self.ordered.get(qualified)


def load_feature_config(path: Path | str | None = None) -> FeatureConfig:
    """Read and validate `features.yaml` (default: in :func:`default_config_dir`)."""
    file = Path(path) if path is not None else config_file("features.yaml")
    return load_yaml(file, FeatureConfig, "feature config")
