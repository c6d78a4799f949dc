"""SQL criteria: the team's written definition of a sales-qualified lead, and its check.

The definition lives in a human-edited YAML file (`config/sql_criteria.yaml`). Each criterion
names a field of a lead's row, an operator and a value; the check is a pure function of that
row, so training (the verdict as a baseline), the API (one lead) and the report (history) all
use this module and cannot disagree.

A lead's row is its point-in-time feature row (snapshot or :class:`~features.online.OnlineBuilder`)
plus its canonical records under qualified keys: ``lead.x``, ``account.x``, ``contact.x``.

Per criterion the check gives ``pass``, ``fail`` or ``unknown`` (the field is missing or cannot
be compared), the observed value and a sentence. ``present`` is the one operator for which a
missing value is a ``fail``. The verdict is ``sql_ready`` when every required criterion passes,
``not_sql`` when a required criterion fails, ``needs_qualification`` otherwise.

There is exactly one definition of what an operator means, :func:`criterion_status`, applied to
one value; :func:`check` (one lead) and :func:`evaluate_frame` (many) both call it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.config import FeatureConfig, default_config_dir, load_feature_config
from features.contract import Column, CrmData, schemas
from features.spec import FeatureSpec, build_spec

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
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class CriteriaError(ValueError):
    """A criteria file is unreadable or says something the data cannot mean."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = problems
        super().__init__(f"{origin}: invalid SQL criteria:\n  - " + "\n  - ".join(problems))


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


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records where each mapping starts (as `__line__`, 1-based)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Hashable, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _where(raw: Any, index: int) -> str:
    line = raw.get("__line__") if isinstance(raw, dict) else None
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
        raw = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise CriteriaError(origin, [f"{at}not valid YAML ({exc})"]) from exc
    if raw is None or (isinstance(raw, dict) and set(raw) <= {"__line__"}):
        raise CriteriaError(origin, ["the file is empty; expected version, owner and criteria"])
    if not isinstance(raw, dict):
        raise CriteriaError(origin, ["expected a mapping with version, owner and criteria"])
    raw.pop("__line__", None)
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
        where = _where(item, i)
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping (id, description, field, ...)")
            continue
        line = item.pop("__line__", None)
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
    """`sql_criteria.yaml` in the config directory (`$LEADSCORE_CONFIG_DIR` or `config/`)."""
    return default_config_dir() / CRITERIA_FILE


def load_criteria(
    path: Path | str | None = None,
    config: FeatureConfig | None = None,
    spec: FeatureSpec | None = None,
) -> Criteria:
    """Read and validate a criteria file (default: :func:`default_criteria_path`)."""
    file = Path(path) if path is not None else default_criteria_path()
    if not file.is_file():
        raise CriteriaError(str(file), ["file not found"])
    config = config if config is not None else load_feature_config()
    return parse_criteria(file.read_text(), config, spec, origin=str(file))


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


# ---------------------------------------------------------------------------------------------
# the check: one definition of every operator


def _normalise(value: Any) -> Any:
    """Missing (None, NaN, NA, NaT, empty text) -> None; numpy scalars -> Python scalars."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return True if value == 1 else False if value == 0 else None
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _list(values: Sequence[Any]) -> str:
    return ", ".join(show_value(v) for v in values)


def criterion_status(bc: BoundCriterion, value: Any) -> tuple[Status, Any, str]:
    """Check one value against one criterion: (status, observed value, sentence).

    A missing value is ``unknown`` (``fail`` for ``present``); a value that cannot be read as
    the field's type, or an ordered category outside the declared order, is ``unknown`` too:
    never a crash, never a silent pass.
    """
    op, info, label, b = bc.criterion.operator, bc.info, bc.label, bc.bounds
    observed = _normalise(value)
    if op == "present":
        if observed is None:
            return "fail", None, f"{label} is not recorded"
        return "pass", observed, f"{label} is recorded ({show_value(observed)})"
    expected = _expectation(bc)
    if observed is None:
        return "unknown", None, f"{label} is unknown ({expected})"
    shown = show_value(observed)
    if info.kind == "boolean":
        flag = _as_bool(observed)
        if flag is None:
            return "unknown", observed, f"{label} {observed!r} is not true/false ({expected})"
        ok = flag if op == "is_true" else flag == b[0]
        return ("pass" if ok else "fail"), flag, f"{label}: {show_value(flag)} ({expected})"
    if info.kind == "number":
        number = _as_number(observed)
        if number is None:
            return "unknown", observed, f"{label} {observed!r} is not a number ({expected})"
        key: Any = number
        rank = number
        shown = show_value(number)
        observed = number
    else:
        key = str(observed)
        rank = float(info.order.index(key)) if info.order and key in info.order else math.nan
        if op in _ORDERED_OPERATORS and math.isnan(rank):
            return (
                "unknown",
                observed,
                f"{label} {shown} is not one of the declared bands, so it cannot be compared "
                f"({expected})",
            )
    if op == "in":
        ok = key in b
    elif op == "not_in":
        ok = key not in b
    elif op == "equals":
        ok = key == b[0]
    elif op == ">=":
        ok = rank >= _rank(info, b[0])
    elif op == "<=":
        ok = rank <= _rank(info, b[0])
    else:  # between
        ok = _rank(info, b[0]) <= rank <= _rank(info, b[1])
    return ("pass" if ok else "fail"), observed, _sentence(bc, shown, ok)


def _expectation(bc: BoundCriterion) -> str:
    op, b = bc.criterion.operator, bc.bounds
    return {
        "in": lambda: f"expected one of {_list(b)}",
        "not_in": lambda: f"expected none of {_list(b)}",
        "equals": lambda: f"expected {show_value(b[0])}",
        ">=": lambda: f"expected at least {show_value(b[0])}",
        "<=": lambda: f"expected at most {show_value(b[0])}",
        "between": lambda: f"expected {_range(bc)}",
        "is_true": lambda: "expected yes",
        "present": lambda: "expected a value",
    }[op]()


def _sentence(bc: BoundCriterion, shown: str, ok: bool) -> str:
    op, label, b = bc.criterion.operator, bc.label, bc.bounds
    if op == "in" and len(b) == 1:
        return f"{label} is {shown}" + ("" if ok else f", not {show_value(b[0])}")
    if op == "in":
        return f"{label} {shown} is {'' if ok else 'not '}one of {_list(b)}"
    if op == "not_in":
        return f"{label} {shown} is " + ("not one of " if ok else "one of the excluded ") + _list(b)
    if op == "equals":
        return f"{label} is {shown}" + ("" if ok else f", not {show_value(b[0])}")
    if op == ">=":
        return f"{label} {shown} is " + (
            f"at least {show_value(b[0])}" if ok else f"below {show_value(b[0])}"
        )
    if op == "<=":
        return f"{label} {shown} is " + (
            f"at most {show_value(b[0])}" if ok else f"above {show_value(b[0])}"
        )
    where = "in" if ok else "outside"
    return f"{label} {shown} is {where} the target range {_range(bc)}"


def _range(bc: BoundCriterion) -> str:
    """`200-1999` for bands 200-499 to 1000-1999; `low to high` otherwise."""
    lo, hi = bc.bounds
    if bc.info.kind != "number" and str(lo).count("-") == 1 and str(hi).count("-") == 1:
        return f"{str(lo).split('-')[0]}-{str(hi).split('-')[1]}"
    return f"{show_value(lo)} to {show_value(hi)}"


def verdict_of(statuses: Iterable[Status]) -> Verdict:
    """The verdict from the statuses of the *required* criteria."""
    seen = set(statuses)
    if "fail" in seen:
        return "not_sql"
    if "unknown" in seen:
        return "needs_qualification"
    return "sql_ready"


@dataclass(frozen=True)
class CriterionResult:
    """One criterion checked on one lead."""

    id: str
    group: str
    required: bool
    status: Status
    observed: Any
    sentence: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        observed = self.observed
        if isinstance(observed, dt.date | pd.Timestamp):
            observed = observed.isoformat()
        return {
            "id": self.id,
            "group": self.group,
            "required": self.required,
            "status": self.status,
            "observed": observed,
            "sentence": self.sentence,
            "description": self.description,
        }


@dataclass(frozen=True)
class CriteriaResult:
    """A lead checked against the written criteria: each criterion, and the verdict."""

    verdict: Verdict
    results: tuple[CriterionResult, ...]
    version: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line for a rep: "3 of 4 required criteria met; unknown: budget"."""
        required = [r for r in self.results if r.required]
        met = sum(r.status == "pass" for r in required)
        text = f"{met} of {len(required)} required criteria met"
        failed = [r.id for r in required if r.status == "fail"]
        unknown = [r.id for r in required if r.status == "unknown"]
        if failed:
            text += f"; not met: {', '.join(failed)}"
        if unknown:
            text += f"; unknown: {', '.join(unknown)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: verdict, summary, criteria version and one entry per criterion."""
        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "criteria_version": self.version,
            "criteria": [r.to_dict() for r in self.results],
        }


def check(criteria: Criteria, row: Mapping[str, Any]) -> CriteriaResult:
    """Check one lead's row (features plus ``lead.x``/``account.x``/``contact.x``)."""
    results = []
    for bc in criteria:
        status, observed, sentence = criterion_status(bc, row.get(bc.criterion.field))
        crit = bc.criterion
        results.append(
            CriterionResult(
                crit.id, crit.group, crit.required, status, observed, sentence, crit.description
            )
        )
    verdict = verdict_of(r.status for r in results if r.required)
    counts: dict[str, int] = {s: sum(r.status == s for r in results) for s in STATUSES}
    return CriteriaResult(verdict, tuple(results), criteria.file.version, counts)


def lead_row(
    features: Mapping[str, Any],
    lead: Mapping[str, Any] | None = None,
    account: Mapping[str, Any] | None = None,
    contact: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One lead's criteria row: its feature row plus its canonical records as qualified keys."""
    row = dict(features)
    for entity, record in (("lead", lead), ("account", account), ("contact", contact)):
        for key, value in (record or {}).items():
            row[f"{entity}.{key}"] = value
    return row


def criteria_frame(crm: CrmData, rows: pd.DataFrame) -> pd.DataFrame:
    """Snapshot rows (with `lead_id`) joined with their lead, account and contact columns as
    ``lead.x``, ``account.x``, ``contact.x``: the frame :func:`evaluate_frame` reads."""
    ids = rows["lead_id"].astype("string").to_numpy()
    leads = crm.leads.assign(lead_id=crm.leads["lead_id"].astype("string"))
    lead_part = leads.set_index("lead_id", drop=False).reindex(ids)
    accounts = crm.accounts.set_index("account_id", drop=False)
    contacts = crm.contacts.set_index("contact_id", drop=False)
    parts = [
        rows.reset_index(drop=True),
        lead_part.add_prefix("lead.").reset_index(drop=True),
        accounts.reindex(lead_part["account_id"].to_numpy())
        .add_prefix("account.")
        .reset_index(drop=True),
        contacts.reindex(lead_part["contact_id"].to_numpy())
        .add_prefix("contact.")
        .reset_index(drop=True),
    ]
    out = pd.concat(parts, axis=1)
    out.index = rows.index
    return out


def evaluate_frame(criteria: Criteria, rows: pd.DataFrame) -> pd.DataFrame:
    """Statuses of every criterion for every row, and the verdict (index aligned to `rows`).

    Columns: `lead_id` (when `rows` has it), one column per criterion id holding
    ``pass``/``fail``/``unknown``, and `verdict`. A field the frame lacks is missing for every
    row. Each distinct value is checked once with :func:`criterion_status`.
    """
    out: dict[str, Any] = {}
    if "lead_id" in rows.columns:
        out["lead_id"] = rows["lead_id"].to_numpy()
    n = len(rows)
    required: list[np.ndarray] = []
    for bc in criteria:
        name = bc.criterion.field
        if name in rows.columns:
            values = rows[name].astype(object).to_numpy()
        else:
            values = np.full(n, None, dtype=object)
        cache: dict[tuple[type, Any], str] = {}
        statuses = np.empty(n, dtype=object)
        for i, value in enumerate(values):
            value = _normalise(value)
            try:
                key = (type(value), value)
                hit = cache.get(key)
                if hit is None:
                    hit = cache[key] = criterion_status(bc, value)[0]
            except TypeError:  # unhashable: check it directly
                hit = criterion_status(bc, value)[0]
            statuses[i] = hit
        out[bc.id] = statuses
        if bc.required:
            required.append(statuses)
    if required:
        stacked = np.vstack(required)
        any_fail = (stacked == "fail").any(axis=0)
        all_pass = (stacked == "pass").all(axis=0)
        verdict = np.where(
            any_fail, "not_sql", np.where(all_pass, "sql_ready", "needs_qualification")
        )
    else:
        verdict = np.full(n, "sql_ready", dtype=object)
    out["verdict"] = verdict.astype(object)
    return pd.DataFrame(out, index=rows.index)


def sql_ready(criteria: Criteria, rows: pd.DataFrame) -> np.ndarray:
    """The verdict as a baseline prediction: True where a row is ``sql_ready``."""
    verdicts: np.ndarray = evaluate_frame(criteria, rows)["verdict"].to_numpy() == "sql_ready"
    return verdicts
