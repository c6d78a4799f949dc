"""SQL criteria, the file: the team's written definition of a sales-qualified lead.

The definition lives in a human-edited YAML file (`sql_criteria.yaml`). Each criterion names a
field of a lead's row, an operator and a value. Loading checks every criterion against the
fields the data contract and the feature spec make known, and binds its value(s) to the
field's type, so that :mod:`leadscore.features.criteria.check` never meets a criterion it
cannot apply. Errors name the criterion id and the line it starts on.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leadscore.features.config import ConfigError, FeatureConfig, load_feature_config
from leadscore.features.configdir import config_file
from leadscore.features.schema import Column, schemas
from leadscore.features.spec import FeatureSpec, build_spec
from leadscore.features.yamlfile import YamlError, line_of, parse_yaml, read_text

Operator = Literal["in", "not_in", "equals", ">=", "<=", "between", "is_true", "present"]
CriterionGroup = Literal["need", "authority", "budget", "timeline", "fit"]
Status = Literal["pass", "fail", "unknown"]
Verdict = Literal["sql_ready", "not_sql", "needs_qualification"]
FieldKind = Literal["number", "boolean", "category", "text", "timestamp", "id"]
Scalar = bool | int | float | str

OPERATORS: tuple[str, ...] = get_args(Operator)
GROUPS: tuple[str, ...] = get_args(CriterionGroup)
STATUSES: tuple[Status, ...] = ("pass", "fail", "unknown")
VERDICTS: tuple[Verdict, ...] = ("sql_ready", "needs_qualification", "not_sql")
ENTITIES = {"lead": "leads", "account": "accounts", "contact": "contacts"}
RESERVED_IDS = frozenset({"lead_id", "as_of", "verdict"})
CRITERIA_FILE = "sql_criteria.yaml"

# Which operators each kind of field supports (ordered categories add the comparisons).
_OPERATORS_FOR: dict[FieldKind, tuple[str, ...]] = {
    "number": ("in", "not_in", "equals", ">=", "<=", "between", "present"),
    "boolean": ("equals", "is_true", "present"),
    "category": ("in", "not_in", "equals", "present"),
    "text": ("in", "not_in", "equals", "present"),
    "timestamp": ("present",),
    "id": ("present",),
}
_ORDERED_OPERATORS = (">=", "<=", "between")


class CriteriaError(ConfigError):
    """A criteria file is unreadable or says something the data cannot mean."""

    def __str__(self) -> str:
        return f"{self.origin}: invalid SQL criteria:\n  - " + "\n  - ".join(self.problems)


# ---------------------------------------------------------------------------------------------
# the file


class Criterion(BaseModel):
    """One written criterion, as it appears in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    group: CriterionGroup
    field: str = Field(min_length=1)
    operator: Operator
    value: Scalar | None = None
    values: tuple[Scalar, ...] | None = None
    required: bool
    label: str | None = None  # how sentences name the field (default: the feature's label)
    line: int | None = Field(default=None, exclude=True)  # where it starts in the file


class CriteriaFile(BaseModel):
    """The whole file: who owns the definition, which version, when it was last reviewed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    reviewed_on: dt.date | None = None
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )


@dataclass(frozen=True)
class FieldInfo:
    """What a criterion's field is: its kind, declared vocabulary and order, and its label."""

    name: str
    kind: FieldKind
    label: str
    vocabulary: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BoundCriterion:
    """A criterion checked against the known fields, with its value(s) in the field's type."""

    criterion: Criterion
    info: FieldInfo
    bounds: tuple[Any, ...]  # the value(s), coerced: one for equals/>=/<=, two for between

    @property
    def id(self) -> str:
        """The criterion's id."""
        return self.criterion.id

    @property
    def required(self) -> bool:
        """Whether the verdict depends on it."""
        return self.criterion.required

    @property
    def label(self) -> str:
        """How sentences name the field."""
        return self.criterion.label or self.info.label


@dataclass(frozen=True)
class Criteria:
    """A loaded, validated criteria file, ready to check leads."""

    file: CriteriaFile
    criteria: tuple[BoundCriterion, ...]
    origin: str = "<criteria>"

    def __iter__(self) -> Iterator[BoundCriterion]:
        return iter(self.criteria)

    def __len__(self) -> int:
        return len(self.criteria)

    @property
    def ids(self) -> list[str]:
        """Criterion ids in file order."""
        return [c.id for c in self.criteria]

    @property
    def fields(self) -> list[str]:
        """The row keys the criteria read."""
        return sorted({c.criterion.field for c in self.criteria})


def _humanize(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def known_fields(config: FeatureConfig, spec: FeatureSpec | None = None) -> dict[str, FieldInfo]:
    """Every field a criterion may name: canonical lead/account/contact columns (custom fields
    included) as ``entity.column``, and the spec's features by name."""
    spec = spec if spec is not None else build_spec(config)
    labels = {f.source: f.label for f in spec if f.kind == "attribute" and f.source}
    labels |= {c.qualified: c.label for c in config.custom_fields}
    tables = schemas(config)
    out: dict[str, FieldInfo] = {}
    for entity, table in ENTITIES.items():
        for col in tables[table].columns:
            qualified = f"{entity}.{col.name}"
            out[qualified] = FieldInfo(
                qualified,
                _column_kind(col),
                labels.get(qualified, _humanize(col.name)),
                col.vocabulary,
                config.order_of(qualified),
            )
    for f in spec:
        kind: FieldKind = {"count": "number", "number": "number", "boolean": "boolean"}.get(
            f.dtype, "category"
        )  # type: ignore[assignment]
        order = f.categories if f.dtype == "ordinal" else None
        out[f.name] = FieldInfo(f.name, kind, f.label, f.categories, order)
    out.setdefault("lead_age_days", FieldInfo("lead_age_days", "number", "Lead age"))
    return out


def _column_kind(col: Column) -> FieldKind:
    return {
        "number": "number",
        "count": "number",
        "boolean": "boolean",
        "category": "category",
        "string": "text",
        "timestamp": "timestamp",
    }.get(col.kind, "id")  # type: ignore[return-value]


def _where(raw: Any, index: int, line: int | None) -> str:
    cid = raw.get("id") if isinstance(raw, dict) else None
    name = f"criterion {cid!r}" if isinstance(cid, str) and cid else f"criterion #{index + 1}"
    return f"{name} (line {line})" if line else name


def _pydantic_problems(where: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key {key!r}")
        elif err["type"] == "missing":
            problems.append(f"{where}: missing key {key!r}")
        elif key == "operator" and err["type"] == "literal_error":
            problems.append(
                f"{where}: unknown operator {err['input']!r}; expected one of {list(OPERATORS)}"
            )
        elif key == "group" and err["type"] == "literal_error":
            problems.append(
                f"{where}: unknown group {err['input']!r}; expected one of {list(GROUPS)}"
            )
        elif key in ("value", "values"):
            problems.append(
                f"{where}: {loc} {err['input']!r} has the wrong type; expected a number, "
                "true/false or text" + (" (a list of them)" if key == "values" else "")
            )
        else:
            problems.append(f"{where}: {loc}: {err['msg']} (got {err['input']!r})")
    return problems


def parse_criteria(
    text: str,
    config: FeatureConfig,
    spec: FeatureSpec | None = None,
    *,
    origin: str = "<criteria>",
) -> Criteria:
    """Validate criteria YAML text against the fields `config` and `spec` make known.

    Raises :class:`CriteriaError` listing every problem, each naming the criterion id and the
    line it starts on.
    """
    try:
        raw, node = parse_yaml(text, origin)
    except YamlError as exc:
        raise CriteriaError(origin, exc.problems) from None
    if raw is None or raw == {}:
        raise CriteriaError(origin, ["the file is empty; expected version, owner and criteria"])
    if not isinstance(raw, dict):
        raise CriteriaError(origin, ["expected a mapping with version, owner and criteria"])
    items = raw.get("criteria")
    if items is None or items == []:
        raise CriteriaError(origin, ["no criteria: the file lists none under `criteria:`"])
    if not isinstance(items, list):
        raise CriteriaError(origin, ["`criteria` must be a list of criteria"])
    fields = known_fields(config, spec)
    problems: list[str] = []
    parsed: list[Criterion] = []
    bound: list[BoundCriterion] = []
    seen: dict[str, int | None] = {}
    for i, item in enumerate(items):
        line = line_of(node, ("criteria", i))
        where = _where(item, i, line)
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping (id, description, field, ...)")
            continue
        cid = item.get("id")
        if isinstance(cid, str) and cid in seen:
            problems.append(
                f"{where}: duplicate id {cid!r} (first used on line {seen[cid]}); ids must be "
                "unique"
            )
            continue
        if isinstance(cid, str):
            seen[cid] = line
        try:
            crit = Criterion.model_validate({**item, "line": line})
        except ValidationError as exc:
            problems += _pydantic_problems(where, exc)
            continue
        if crit.id in RESERVED_IDS:
            problems.append(f"{where}: id {crit.id!r} is reserved; choose another")
            continue
        try:
            bound.append(bind(crit, fields))
            parsed.append(crit)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    top = {k: v for k, v in raw.items() if k != "criteria"}
    try:
        file = CriteriaFile.model_validate({**top, "criteria": parsed or [None]})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if key == "criteria":
                continue  # reported per criterion above
            if err["type"] == "extra_forbidden":
                problems.append(
                    f"unknown top-level key {key!r}; expected version, owner, reviewed_on, criteria"
                )
            elif err["type"] == "missing":
                problems.append(f"missing top-level key {key!r}")
            else:
                problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    if problems:
        raise CriteriaError(origin, problems)
    return Criteria(file, tuple(bound), origin)


def default_criteria_path() -> Path:
    """`sql_criteria.yaml` in the config directory (``$LEADSCORE_CONFIG_DIR`` or the
    packaged defaults)."""
    return config_file(CRITERIA_FILE)


def load_criteria(
    path: Path | str | None = None,
    config: FeatureConfig | None = None,
    spec: FeatureSpec | None = None,
) -> Criteria:
    """Read and validate a criteria file (default: :func:`default_criteria_path`)."""
    file = Path(path) if path is not None else default_criteria_path()
    try:
        text = read_text(file, "criteria file")
    except ConfigError as exc:
        raise CriteriaError(str(file), exc.problems) from None
    config = config if config is not None else load_feature_config()
    return parse_criteria(text, config, spec, origin=str(file))


# ---------------------------------------------------------------------------------------------
# binding: field, operator and value(s) checked together


def show_value(value: Any) -> str:
    """A value as a sentence shows it: yes/no, whole numbers without decimals, words."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.3g}"
    return str(value).replace("_", " ")


def _coerce_bound(value: Scalar, info: FieldInfo, what: str) -> Any:
    if info.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{what} {value!r} has the wrong type; {info.name} is a number")
        return float(value)
    if info.kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{what} {value!r} has the wrong type; {info.name} is true/false")
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"{what} {value!r} has the wrong type; {info.name} is text (quote it in YAML)"
        )
    if info.vocabulary is not None and value not in info.vocabulary:
        raise ValueError(
            f"{what} {value!r} is not a known category of {info.name}; expected one of "
            f"{list(info.vocabulary)}"
        )
    return value


def bind(crit: Criterion, fields: Mapping[str, FieldInfo]) -> BoundCriterion:
    """Check one criterion's field, operator and value(s); raise ValueError naming the problem."""
    info = fields.get(crit.field)
    if info is None:
        entity = crit.field.split(".")[0] if "." in crit.field else None
        hint = (
            f"expected a column of {ENTITIES[entity]} ({entity}.<column>)"
            if entity in ENTITIES
            else "expected lead.<column>, account.<column>, contact.<column> or a feature name "
            "(`leadscore features list`)"
        )
        close = difflib.get_close_matches(crit.field, list(fields), n=1)
        if close:
            hint += f"; did you mean {close[0]!r}?"
        raise ValueError(f"unknown field {crit.field!r}; {hint}")
    op = crit.operator
    allowed = _OPERATORS_FOR[info.kind] + (_ORDERED_OPERATORS if info.order else ())
    if op not in allowed:
        kind = "an unordered category" if info.kind == "category" else info.kind
        raise ValueError(
            f"operator {op!r} does not apply to {info.name} ({kind}); use one of "
            f"{[o for o in OPERATORS if o in allowed]}"
        )
    if crit.value is not None and crit.values is not None:
        raise ValueError("give `value` or `values`, not both")
    if op in ("is_true", "present"):
        if crit.value is not None or crit.values is not None:
            raise ValueError(f"operator {op!r} takes no value")
        return BoundCriterion(crit, info, ())
    if op in ("in", "not_in"):
        if not crit.values:
            raise ValueError(f"operator {op!r} needs `values`: a non-empty list")
        vals = tuple(_coerce_bound(v, info, "value") for v in crit.values)
        return BoundCriterion(crit, info, vals)
    if op == "between":
        given = crit.values if crit.values is not None else ()
        if len(given) != 2:
            raise ValueError(
                f"operator 'between' needs two bounds, `values: [low, high]` (got {len(given)})"
            )
        lo, hi = (_coerce_bound(v, info, "bound") for v in given)
        if _rank(info, lo) > _rank(info, hi):
            raise ValueError(f"between bounds are reversed: {lo!r} is above {hi!r}")
        return BoundCriterion(crit, info, (lo, hi))
    if crit.value is None:
        raise ValueError(f"operator {op!r} needs one `value`")
    return BoundCriterion(crit, info, (_coerce_bound(crit.value, info, "value"),))


def _rank(info: FieldInfo, value: Any) -> float:
    """A comparable number: the value itself, or its position in the declared order."""
    if info.kind == "number":
        return float(value)
    assert info.order is not None
    return float(info.order.index(value))


