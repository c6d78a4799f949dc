"""The handoff's service levels (`config/sla.yaml`): how soon a rep must first touch a lead
marketing handed over, counted in business time.

Business time is the open hours (``business_hours``, wall-clock in the calendar's time zone)
of working days: a weekend day or a public holiday has none. A rep listed under ``owners`` is
measured on their own calendar (their time zone, optionally their country's holidays); everyone
else on the team's. An ``"h"`` target is business hours, ``"d"`` is business days of the
team's length (09:00-17:00 makes ``2d`` = 16 business hours), ``"m"`` minutes. Opening and
closing are wall-clock times, so 09:00-17:00 is 8 hours on a clock-change day too (only a
window spanning the change itself, a night shift, counts the real time it lasts).

Targets are matched in file order, first match wins; a target naming a tier may therefore not
come after a target for the same action without one (it could never apply, so the file is
refused). Leads with no matching target (``nurture``) have no due time.

:class:`BusinessCalendar` does the arithmetic. It lays each year out once (the opening and
closing instant of every day, and the business seconds before it), so that ``between`` and
``add`` cost a couple of look-ups whatever the span, and they are exact inverses.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadscore.features.configdir import config_file
from leadscore.features.errors import LeadscoreError
from leadscore.features.yamlfile import ConfigError, load_config

SLA_FILE = "sla.yaml"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SlaAction = Literal["route_to_sales", "qualify"]
Tier = Literal["A", "B", "C", "D"]
_WITHIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0}


class SlaError(ConfigError):
    """The SLA file is missing or says something this code cannot apply."""


# ---------------------------------------------------------------------------------------------
# the file


def _zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a ValueError saying what is expected."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "unknown time zone; expected an IANA name such as America/New_York or Europe/London"
        ) from None


class BusinessHours(BaseModel):
    """When the working day opens and closes, wall-clock in the calendar's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(9)
    end: time = time(17)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020: take it as minutes."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError(
                f"end ({self.end:%H:%M}) must be after start ({self.start:%H:%M}); "
                "a business day cannot span midnight"
            )
        return self

    @property
    def hours(self) -> float:
        """The length of the business day in hours."""
        return _seconds_of_day(self.end) / 3600 - _seconds_of_day(self.start) / 3600


class HolidayCalendar(BaseModel):
    """Days off: a country's public holidays (observed days included) and the company's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = "US"
    subdivision: str | None = None
    work_on: tuple[str, ...] = ()  # public holidays worked anyway, by name
    extra: tuple[date, ...] = ()

    @field_validator("country", "subdivision", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        return str(value).upper() if isinstance(value, str | int) else value

    @model_validator(mode="after")
    def _known_to_holidays(self) -> HolidayCalendar:
        if self.country is None:
            if self.subdivision or self.work_on:
                raise ValueError("subdivision and work_on need a country")
            return self
        if self.country not in holidays_lib.list_supported_countries():
            raise ValueError(
                f"unknown country {self.country!r}; expected an ISO 3166 code "
                "the holidays package knows, such as US, GB or DE"
            )
        this_year = date.today().year
        # only the names of holidays worked anyway need years laid out
        years = range(this_year - 1, this_year + 2) if self.work_on else ()
        try:
            known = holidays_lib.country_holidays(
                self.country, subdiv=self.subdivision, years=years
            )
        except NotImplementedError as exc:
            raise ValueError(f"unknown subdivision: {exc}") from None
        names = {_base_name(n) for name in known.values() for n in name.split("; ")}
        unknown = [n for n in self.work_on if n not in names]
        if unknown:
            raise ValueError(
                f"work_on names no {self.country} holiday: {unknown}; "
                f"expected names among {sorted(names)}"
            )
        return self


def _lower_days(value: Any) -> Any:
    """Weekday names as written (Mon, MON) in the lower case the file's schema uses."""
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("name at least one working day (mon, tue, ...)")
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


class OwnerCalendar(BaseModel):
    """A rep who works elsewhere: their time zone, and their days if not the team's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    workdays: tuple[Weekday, ...] | None = None
    holidays: HolidayCalendar | None = None  # None: the team's

    _lower_days = field_validator("workdays", mode="before")(_lower_days)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value


@lru_cache(maxsize=64)
def _amount_unit(within: str) -> tuple[float, str]:
    """``"2d"`` as (2.0, "d"); parsed once per text, as reports ask for every lead."""
    match = _WITHIN.match(within)
    if match is None:
        raise ValueError("expected a positive number and a unit: 30m, 4h or 2d")
    return float(match.group(1)), match.group(2)


class Target(BaseModel):
    """How soon a rep must first touch a lead handed over with this action (and tier)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: SlaAction
    tier: Tier | None = None  # None: any tier
    within: str  # "30m", "4h" (business hours) or "2d" (business days)

    @field_validator("tier", mode="before")
    @classmethod
    def _tier_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("within", mode="before")
    @classmethod
    def _amount_and_unit(cls, value: Any) -> Any:
        if not isinstance(value, int | float | str):
            return value
        text = str(value).strip()
        if _amount_unit(text)[0] <= 0:
            raise ValueError("expected a positive number and a unit: 30m, 4h or 2d")
        return text

    def matches(self, action: str, tier: str | None) -> bool:
        """Whether this target applies to a lead handed over with `action` and `tier`."""
        return self.action == action and (self.tier is None or self.tier == tier)

    def hours(self, day_hours: float) -> float:
        """The target in business hours, a business day being `day_hours` long."""
        amount, unit = _amount_unit(self.within)
        return amount * (day_hours if unit == "d" else _UNIT_HOURS[unit])


class SlaConfig(BaseModel):
    """`config/sla.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    timezone: str = "America/New_York"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    workdays: tuple[Weekday, ...] = WEEKDAYS[:5]
    holidays: HolidayCalendar = Field(default_factory=HolidayCalendar)
    targets: tuple[Target, ...] = ()
    dispositioned_within_days: float = Field(default=30, gt=0)  # calendar days
    owners: dict[str, OwnerCalendar] = {}

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if number else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    _lower_days = field_validator("workdays", mode="before")(_lower_days)

    @field_validator("targets")
    @classmethod
    def _every_target_reachable(cls, value: tuple[Target, ...]) -> tuple[Target, ...]:
        for i, target in enumerate(value):
            for earlier in value[:i]:
                if earlier.action == target.action and earlier.tier in (None, target.tier):
                    which = f"tier {target.tier}" if target.tier else "any tier"
                    raise ValueError(
                        f"target {i + 1} ({target.action}, {which}) can never apply: an earlier "
                        "target already covers it (first match wins; put tier targets first)"
                    )
        return value

    @property
    def day_hours(self) -> float:
        """The length of the team's business day in hours (what ``"1d"`` means)."""
        return self.business_hours.hours


def default_sla_path() -> Path:
    """`sla.yaml` in the config directory (``$LEADSCORE_CONFIG_DIR`` or the packaged
    defaults)."""
    return config_file(SLA_FILE)


def load_sla(path: Path | str | None = None) -> SlaConfig:
    """Read and validate an SLA file (default: :func:`default_sla_path`)."""
    return load_config(path, SLA_FILE, SlaConfig, "SLA file", SlaError)


# ---------------------------------------------------------------------------------------------
# business time


def _seconds_of_day(moment: time) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def _base_name(name: str) -> str:
    return name.removesuffix(" (observed)").strip()


@lru_cache(maxsize=512)
def _holiday_dates(spec: HolidayCalendar, year: int) -> frozenset[date]:
    """The days off of `year` (and any the holidays package files under it) for `spec`."""
    days = {d for d in spec.extra if d.year == year}
    if spec.country is not None:
        known = holidays_lib.country_holidays(spec.country, subdiv=spec.subdivision, years=year)
        worked = set(spec.work_on)
        for day, name in known.items():
            if not all(_base_name(n) in worked for n in name.split("; ")):
                days.add(day)
    return frozenset(days)


@dataclass(frozen=True)
class _Year:
    """One year of a calendar, day by day (index 0 = 1 January)."""

    first: int  # date ordinal of 1 January
    opens: list[float]  # UTC timestamp of each day's opening
    lengths: list[float]  # seconds open that day (0 when closed)
    before: list[float]  # business seconds of the year before that day
    total: float


NO_HOLIDAYS = HolidayCalendar(country=None)


@dataclass(frozen=True)
class BusinessCalendar:
    """Open hours of working days in one time zone, minus holidays. Immutable.

    Every moment it takes may be aware (any time zone) or naive (read as UTC); every moment
    it returns is aware, in UTC.
    """

    timezone: str
    opens: time = time(9)
    closes: time = time(17)
    workdays: frozenset[int] = frozenset(range(5))  # 0 = Monday
    holidays: HolidayCalendar = NO_HOLIDAYS
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _years: dict[int, _Year] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.closes <= self.opens:
            raise ValueError(f"closing time {self.closes} must be after opening {self.opens}")
        if not self.workdays or not self.workdays <= set(range(7)):
            raise ValueError(f"workdays must be weekday numbers 0-6, got {set(self.workdays)}")
        object.__setattr__(self, "_tz", _zone(self.timezone))

    @property
    def day_hours(self) -> float:
        """The length of a business day in hours (wall-clock opening to closing)."""
        return (_seconds_of_day(self.closes) - _seconds_of_day(self.opens)) / 3600

    def between(self, start: datetime, end: datetime) -> float:
        """Business hours in [start, end); 0 when `end` is not after `start`."""
        s, e = _timestamp(start), _timestamp(end)
        if e <= s:
            return 0.0
        year, before = self._position(s)
        end_year, seconds = self._position(e)
        seconds -= before
        for y in range(year, end_year):
            seconds += self._year(y).total
        return seconds / 3600

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` business hours after `start`. A result at a closing time is the
        next opening instead (nothing can be done at closing), and so is one outside hours."""
        if hours < 0:
            raise ValueError(f"hours must not be negative, got {hours}")
        year, seconds = self._position(_timestamp(start))
        return self._moment(year, seconds + hours * 3600)

    def _moment(self, year: int, seconds: float) -> datetime:
        """The moment `seconds` business seconds into `year` (or a later year)."""
        table, empty = self._year(year), 0
        while seconds >= table.total:
            seconds -= table.total
            empty = empty + 1 if table.total == 0 else 0
            if empty > 3:
                raise LeadscoreError(f"{self} has no business hours in years {year - 3}-{year}")
            year += 1
            table = self._year(year)
        day = bisect_right(table.before, seconds) - 1
        into = seconds - table.before[day]
        if table.lengths[day] - into < 5e-7:  # rounds to the closing microsecond: roll over
            return self._moment(year, table.before[day] + table.lengths[day])
        return datetime.fromtimestamp(table.opens[day] + into, UTC)

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` falls within business hours."""
        ts = _timestamp(moment)
        local = datetime.fromtimestamp(ts, self._tz)
        table = self._year(local.year)
        day = local.toordinal() - table.first
        return 0 <= ts - table.opens[day] < table.lengths[day]

    def _position(self, ts: float) -> tuple[int, float]:
        """The local year of `ts` and the business seconds of that year before it."""
        local = datetime.fromtimestamp(ts, self._tz)
        table = self._year(local.year)
        day = local.toordinal() - table.first
        into = ts - table.opens[day]
        if into <= 0:
            return local.year, table.before[day]
        return local.year, table.before[day] + min(into, table.lengths[day])

    def _year(self, year: int) -> _Year:
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = self._lay_out(year)
        return found

    def _lay_out(self, year: int) -> _Year:
        first = date(year, 1, 1).toordinal()
        days_off = _holiday_dates(self.holidays, year)
        opens, lengths, before, total = [], [], [], 0.0
        for ordinal in range(first, date(year + 1, 1, 1).toordinal()):
            day = date.fromordinal(ordinal)
            # a nonexistent or repeated wall-clock time (DST) is read with the earlier offset
            opening = datetime.combine(day, self.opens, self._tz).timestamp()
            closing = datetime.combine(day, self.closes, self._tz).timestamp()
            working = day.weekday() in self.workdays and day not in days_off
            length = max(0.0, closing - opening) if working else 0.0
            opens.append(opening)
            lengths.append(length)
            before.append(total)
            total += length
        return _Year(first, opens, lengths, before, total)


def _timestamp(moment: datetime) -> float:
    """POSIX seconds of an aware moment, or of a naive one read as UTC."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


@lru_cache(maxsize=256)
def _shared_calendar(
    timezone: str, opens: time, closes: time, workdays: tuple[str, ...], spec: HolidayCalendar
) -> BusinessCalendar:
    """One calendar object per distinct definition, so its year layouts are computed once."""
    return BusinessCalendar(timezone, opens, closes, _weekday_numbers(workdays), spec)


def _weekday_numbers(names: Iterable[str]) -> frozenset[int]:
    return frozenset(WEEKDAYS.index(n) for n in names)


def calendar_for(config: SlaConfig, owner: str | None = None) -> BusinessCalendar:
    """The calendar `owner` is measured on: theirs when listed under ``owners``, else the
    team's (their business hours are always the team's, in their own time zone)."""
    hours = config.business_hours
    rep = config.owners.get(owner) if owner is not None else None
    if rep is None:
        return _shared_calendar(
            config.timezone, hours.start, hours.end, config.workdays, config.holidays
        )
    return _shared_calendar(
        rep.timezone,
        hours.start,
        hours.end,
        rep.workdays or config.workdays,
        rep.holidays or config.holidays,
    )


def find_target(config: SlaConfig, action: str, tier: str | None) -> Target | None:
    """The first target in file order that applies, if any."""
    for target in config.targets:
        if target.matches(action, tier):
            return target
    return None


def target_hours(config: SlaConfig, action: str, tier: str | None) -> float | None:
    """The business hours a rep has for a lead handed over with `action` and `tier`; None
    when no target applies (e.g. ``nurture``)."""
    target = find_target(config, action, tier)
    return None if target is None else target.hours(config.day_hours)


def due_at(
    config: SlaConfig,
    handed_off_at: datetime,
    action: str,
    tier: str | None,
    owner: str | None = None,
) -> datetime | None:
    """When the first touch is due (UTC), on `owner`'s calendar; None without a target."""
    hours = target_hours(config, action, tier)
    if hours is None:
        return None
    return calendar_for(config, owner).add(handed_off_at, hours)


def disposition_due(config: SlaConfig, handed_off_at: datetime) -> datetime:
    """When a handoff without an accept/reject verdict counts as leaked (calendar days)."""
    start = handed_off_at if handed_off_at.tzinfo else handed_off_at.replace(tzinfo=UTC)
    return (start + timedelta(days=config.dispositioned_within_days)).astimezone(UTC)
