"""The rep's side of the handoff: the rejection-reason taxonomy (`config/handoff.yaml`).

A rep accepts a handed-over lead or rejects it with one reason from this taxonomy. The
taxonomy is data, not code: reports name reasons by their labels, the criteria report compares
reasons that contradict a criteria group with that group's verdicts, and training can leave out
leads whose reason says they were never real prospects (duplicates, junk data).

The verdicts themselves reach criteria and training as a **feedback file** (CSV or Parquet,
:data:`FEEDBACK_COLUMNS`), written from the service's store by `leadscore handoff
export-feedback` (:func:`write_feedback`) and read back, checked against the taxonomy, by
:func:`load_feedback`: neither `criteria` nor `train` reads the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.features.configdir import config_file
from leadscore.features.errors import UsageProblem
from leadscore.features.schema import DataContractError
from leadscore.features.yamlfile import load_config

if TYPE_CHECKING:  # pandas only in the functions that read and write verdicts
    import pandas as pd

HANDOFF_FILE = "handoff.yaml"
Disposition = Literal["accepted", "rejected"]
DISPOSITIONS: tuple[str, ...] = ("accepted", "rejected")
CriteriaGroup = Literal["need", "authority", "budget", "timeline", "fit"]


class RejectionReason(BaseModel):
    """One reason a rep can give for rejecting a lead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    description: str = ""
    criteria_group: CriteriaGroup | None = None
    exclude_from_training: bool = False


class HandoffConfig(BaseModel):
    """`config/handoff.yaml`: the rejection reasons, keyed by their snake_case id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    rejection_reasons: dict[str, RejectionReason] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if number else value

    @field_validator("rejection_reasons")
    @classmethod
    def _snake_case_ids(cls, value: dict[str, RejectionReason]) -> dict[str, RejectionReason]:
        bad = [k for k in value if not k.replace("_", "").isalnum() or k != k.lower()]
        if bad:
            raise ValueError(f"reason ids must be snake_case, got {bad}")
        return value

    @property
    def reason_ids(self) -> tuple[str, ...]:
        """The reason ids in file order."""
        return tuple(self.rejection_reasons)

    @property
    def excluded_from_training(self) -> tuple[str, ...]:
        """Reasons whose leads training leaves out when asked to (duplicates, junk data)."""
        return tuple(k for k, r in self.rejection_reasons.items() if r.exclude_from_training)

    def label(self, reason: str | None) -> str:
        """The reason's label (the id itself when it is not in the taxonomy)."""
        if reason is None:
            return ""
        found = self.rejection_reasons.get(reason)
        return found.label if found else reason


def default_handoff_path() -> Path:
    """`handoff.yaml` in the config directory (``$LEADSCORE_CONFIG_DIR`` or the packaged
    defaults)."""
    return config_file(HANDOFF_FILE)


def load_handoff_config(path: Path | str | None = None) -> HandoffConfig:
    """Read and validate the handoff file (default: :func:`default_handoff_path`)."""
    return load_config(path, HANDOFF_FILE, HandoffConfig, "handoff file")


# ---------------------------------------------------------------------------------------------
# the feedback file: the reps' verdicts, as `leadscore handoff export-feedback` writes them

FEEDBACK_COLUMNS: tuple[str, ...] = (
    "lead_id",  # required
    "disposition",  # required: accepted | rejected
    "reason",  # a reason id of handoff.yaml when rejected; empty when accepted
    "dispositioned_at",  # optional: when the rep gave the verdict (ISO-8601)
    "rep",  # optional
    "note",  # optional
)
REQUIRED_COLUMNS: tuple[str, ...] = ("lead_id", "disposition")
FEEDBACK_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


class FeedbackFileError(DataContractError):
    """A feedback file that is unreadable or breaks its contract; one line per problem."""


def _read(path: Path) -> pd.DataFrame:
    """The file's rows as text (Parquet keeps its types); a header without rows is no verdict
    yet, not an error: an export before any rep has answered is still a valid export."""
    import pandas as pd

    from leadscore.features.readers import EmptyFileError, kind_of, read_table

    if not path.is_file():
        raise FeedbackFileError([f"{path}: no such feedback file"])
    try:
        return read_table(path)
    except EmptyFileError as exc:
        if path.stat().st_size == 0:
            raise FeedbackFileError(exc.problems) from None
    except DataContractError as exc:
        raise FeedbackFileError(exc.problems) from None
    if kind_of(path) == "parquet":
        return pd.read_parquet(path)
    header = path.read_text(encoding="utf-8-sig").splitlines()[0]
    sep = max(",;\t|", key=header.count)
    return pd.DataFrame(columns=[c.strip() for c in header.split(sep)], dtype="string")


def load_feedback(path: Path | str, taxonomy: HandoffConfig) -> pd.DataFrame:
    """Read and validate a feedback file (CSV or Parquet, told apart by content).

    Returns one row per lead, the columns of :data:`FEEDBACK_COLUMNS` (text, `reason` empty
    for accepted leads, `dispositioned_at` naive UTC). When a lead has several rows, its latest
    verdict wins: the greatest `dispositioned_at`, a missing one counting as the oldest; rows
    tied on it are taken in file order, the last one winning. ``attrs["superseded"]`` counts
    the rows replaced so. Columns the contract does not name are ignored.

    Raises :class:`FeedbackFileError` listing every problem: the file, the column, how many
    rows, an example row and what was expected.
    """
    import pandas as pd

    from leadscore.features.contract import _problem, parse_timestamps

    file = Path(path)
    raw = _read(file)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise FeedbackFileError(
            [f"{file}: missing column(s) {missing}; expected columns {list(FEEDBACK_COLUMNS)} "
             f"({', '.join(REQUIRED_COLUMNS)} required; found {list(raw.columns)})"]
        )  # fmt: skip
    raw = raw.reset_index(drop=True)
    problems: list[str] = []

    def text(column: str) -> pd.Series:
        values = raw[column] if column in raw.columns else pd.Series(pd.NA, index=raw.index)
        out = values.astype("string").str.strip()
        return out.mask(out == "", pd.NA)

    def where(column: str) -> str:
        return f"{file}: column {column}"

    frame = pd.DataFrame({c: text(c) for c in FEEDBACK_COLUMNS if c != "dispositioned_at"})
    if frame["lead_id"].isna().any():
        bad = frame["lead_id"][frame["lead_id"].isna()]
        problems.append(_problem(where("lead_id"), bad, "are empty", "a lead id in every row"))
    disposition = frame["disposition"].str.lower()
    unknown = ~disposition.isin(DISPOSITIONS).fillna(False).astype(bool)
    if unknown.any():
        bad = frame["disposition"][unknown]
        problems.append(_problem(where("disposition"), bad, "have an unknown disposition",
                                 " or ".join(DISPOSITIONS)))  # fmt: skip
    frame["disposition"] = disposition
    reason = frame["reason"]
    known = ", ".join(taxonomy.reason_ids)
    rejected = (disposition == "rejected").fillna(False).astype(bool)
    accepted = (disposition == "accepted").fillna(False).astype(bool)
    without = rejected & reason.isna()
    if without.any():
        problems.append(_problem(where("reason"), reason[without],
                                 "are rejected without a reason",
                                 f"a reason for every rejection, one of: {known}"))  # fmt: skip
    stray = (
        reason.notna() & ~accepted & ~reason.isin(taxonomy.reason_ids).fillna(False).astype(bool)
    )
    if stray.any():
        problems.append(_problem(where("reason"), reason[stray],
                                 "give a reason that is not in the taxonomy (handoff.yaml)",
                                 f"one of: {known}"))  # fmt: skip
    extra = accepted & reason.notna()
    if extra.any():
        problems.append(_problem(where("reason"), reason[extra],
                                 "give a reason for an accepted lead",
                                 "an empty reason when the disposition is accepted"))  # fmt: skip
    if "dispositioned_at" in raw.columns and len(raw):
        given = raw["dispositioned_at"]
        if not pd.api.types.is_datetime64_any_dtype(given):
            given = text("dispositioned_at")
        frame["dispositioned_at"] = parse_timestamps(given)
        unreadable = given.notna() & frame["dispositioned_at"].isna()
        if unreadable.any():
            problems.append(_problem(where("dispositioned_at"), given[unreadable],
                                     "have an unparseable timestamp",
                                     "an ISO-8601 date or date-time (2024-02-01 or "
                                     "2024-02-01T09:00:00Z), or empty"))  # fmt: skip
    else:
        frame["dispositioned_at"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if problems:
        raise FeedbackFileError(problems)
    return _latest(frame[list(FEEDBACK_COLUMNS)])


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per lead: its latest verdict (see :func:`load_feedback`)."""
    import numpy as np

    # NaT is the smallest int64: a verdict without a moment is the oldest one
    moment = frame["dispositioned_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((np.arange(len(frame)), moment))
    ordered = frame.iloc[order]
    latest = ordered.drop_duplicates("lead_id", keep="last")
    out = latest.sort_index().reset_index(drop=True)
    out.attrs["superseded"] = len(frame) - len(out)
    return out


def write_feedback(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write verdicts as a feedback file, CSV or Parquet by the suffix of `path`.

    `frame` has at least `lead_id` and `disposition`; the optional columns are written empty
    when absent, extra columns are dropped, time-zone-aware `dispositioned_at` values are
    written as naive UTC. What :func:`load_feedback` reads back.
    """
    import pandas as pd

    file = Path(path)
    if file.suffix.lower() not in FEEDBACK_SUFFIXES:
        raise UsageProblem(
            f"{file}: a feedback file is written as {' or '.join(FEEDBACK_SUFFIXES)}; "
            f"got {file.suffix or 'no suffix'}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"write_feedback: the frame lacks column(s) {missing}")
    out = pd.DataFrame(index=frame.index)
    for column in FEEDBACK_COLUMNS:
        if column == "dispositioned_at":
            when = frame[column] if column in frame.columns else pd.Series(pd.NaT, frame.index)
            when = pd.to_datetime(when, utc=True).dt.tz_localize(None)
            out[column] = when.astype("datetime64[ns]")
        else:
            values = frame[column] if column in frame.columns else pd.Series(pd.NA, frame.index)
            out[column] = values.astype("string")
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.suffix.lower() == ".parquet":
        out.to_parquet(file, index=False)
    else:
        out.to_csv(file, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
    return file


def training_exclusions(feedback: pd.DataFrame, reasons: Iterable[str]) -> dict[str, str]:
    """Leads to leave out of training: lead id -> reason, for every lead whose latest verdict
    (a :func:`load_feedback` frame) is a rejection for one of `reasons`."""
    chosen = set(reasons)
    rejected = feedback[(feedback["disposition"] == "rejected") & feedback["reason"].isin(chosen)]
    return dict(zip(rejected["lead_id"].astype(str), rejected["reason"].astype(str), strict=True))


def reasons_by_group(taxonomy: HandoffConfig) -> dict[str, tuple[str, ...]]:
    """Criteria group -> the reasons that contradict it, in taxonomy order."""
    out: dict[str, list[str]] = {}
    for rid, reason in taxonomy.rejection_reasons.items():
        if reason.criteria_group is not None:
            out.setdefault(reason.criteria_group, []).append(rid)
    return {group: tuple(ids) for group, ids in out.items()}
