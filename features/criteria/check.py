"""SQL criteria, the check: one lead's row against the written criteria.

A lead's row is its point-in-time feature row (a snapshot or
:class:`~leadscore.features.online.OnlineBuilder`) plus its canonical records under qualified
keys: ``lead.x``, ``account.x``, ``contact.x``.

Per criterion the check gives ``pass``, ``fail`` or ``unknown`` (the field is missing or cannot
be compared), the observed value and a sentence. ``present`` is the one operator for which a
missing value is a ``fail``. The verdict is ``sql_ready`` when every required criterion passes,
``not_sql`` when a required criterion fails, ``needs_qualification`` otherwise.

There is exactly one definition of what an operator means, :func:`criterion_status`, applied to
one value; :func:`check` (one lead) and
:func:`~leadscore.features.criteria.evidence.evaluate_frame` (many) both call it. No pandas
here: the API and `criteria check` stay light.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadscore.features.criteria.rules import (
    _ORDERED_OPERATORS,
    STATUSES,
    BoundCriterion,
    Criteria,
    Status,
    Verdict,
    _rank,
    show_value,
)
from leadscore.features.schema import FALSE_TEXT, TRUE_TEXT

# ---------------------------------------------------------------------------------------------
# the check: one definition of every operator


def _normalise(value: Any) -> Any:
    """Missing (None, NaN, NA, NaT, empty text) -> None; numpy scalars -> Python scalars.

    pandas and numpy values only exist when those libraries are loaded (a frame is being
    checked), so they are looked up there rather than imported by the one-lead path.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, bool | int):
        return value
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return None
    if np is not None and isinstance(value, np.datetime64):
        return None if np.isnat(value) else dt.datetime.fromisoformat(str(value)[:26])
    if np is not None and isinstance(value, np.generic):
        return _normalise(value.item())
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
    return True if text in TRUE_TEXT else False if text in FALSE_TEXT else None


def _list(values: Sequence[Any]) -> str:
    return ", ".join(show_value(v) for v in values)


def criterion_status(bc: BoundCriterion, value: Any) -> tuple[Status, Any, str]:
    """Check one value against one criterion: (status, observed value, sentence).

    A missing value is ``unknown`` (``fail`` for ``present``); a value that cannot be read as
    the field's type, or an ordered category outside the declared order, is ``unknown`` too:
    never a crash, never a silent pass.
    """
    observed = _normalise(value)
    if not _memoisable(observed):
        return _status(bc, observed)
    result = _memoised(bc, observed)
    return result.status, result.observed, result.sentence


def _status(bc: BoundCriterion, observed: Any) -> tuple[Status, Any, str]:
    """:func:`criterion_status` of a normalised value."""
    op, info, label, b = bc.criterion.operator, bc.info, bc.label, bc.bounds
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
    if op == "in":
        return f"expected one of {_list(b)}"
    if op == "not_in":
        return f"expected none of {_list(b)}"
    if op == "equals":
        return f"expected {show_value(b[0])}"
    if op == ">=":
        return f"expected at least {show_value(b[0])}"
    if op == "<=":
        return f"expected at most {show_value(b[0])}"
    if op == "between":
        return f"expected {_range(bc)}"
    if op == "is_true":
        return "expected yes"
    if op == "present":
        return "expected a value"
    raise KeyError(op)  # as the table this replaces did: every operator is listed above


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
        if isinstance(observed, dt.date):
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
    results = tuple(_checked(bc, row.get(bc.criterion.field)) for bc in criteria)
    verdict = verdict_of(r.status for r in results if r.required)
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for r in results:
        if r.status in counts:
            counts[r.status] += 1
    return CriteriaResult(verdict, results, criteria.file.version, counts)


# Results per criterion (each entry holds its criterion, so that the id stays its own) and
# normalised value: a lead's fields take few distinct values. Both levels are bounded.
_MEMO: dict[int, tuple[BoundCriterion, dict[tuple[type, Any], CriterionResult]]] = {}
MEMO_CRITERIA = 256
MEMO_VALUES = 512
MEMO_TEXT_LENGTH = 64


def _checked(bc: BoundCriterion, value: Any) -> CriterionResult:
    """One criterion checked on one value (:func:`criterion_status`), as a result."""
    observed = _normalise(value)
    return _memoised(bc, observed) if _memoisable(observed) else _result(bc, observed)


def _memoisable(observed: Any) -> bool:
    """A normalised value whose equals are checked and shown alike (-0.0 equals 0.0 but is
    shown apart; None is cheap to check), and no long text (the memo stays small)."""
    kind = type(observed)
    if kind is str:
        return len(observed) <= MEMO_TEXT_LENGTH
    return kind is bool or kind is int or (kind is float and observed != 0.0)


def _memoised(bc: BoundCriterion, observed: Any) -> CriterionResult:
    """:func:`_result`, remembered."""
    kind = type(observed)
    entry = _MEMO.get(id(bc))
    if entry is None or entry[0] is not bc:
        if len(_MEMO) >= MEMO_CRITERIA:
            _MEMO.clear()
        entry = _MEMO[id(bc)] = (bc, {})
    memo = entry[1]
    key = (kind, observed)
    result = memo.get(key)
    if result is None:
        if len(memo) >= MEMO_VALUES:
            memo.clear()
        result = memo[key] = _result(bc, observed)
    return result


def _result(bc: BoundCriterion, observed: Any) -> CriterionResult:
    status, shown, sentence = _status(bc, observed)
    crit = bc.criterion
    return CriterionResult(
        crit.id, crit.group, crit.required, status, shown, sentence, crit.description
    )


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
