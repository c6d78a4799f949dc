"""Business-time arithmetic and the SLA file: every expected duration is worked out by hand.

Calendar facts relied on (2026): Jan 9 and Mar 6 are Fridays; US clocks go forward on Sunday
Mar 8 and back on Sunday Nov 1; UK clocks on Sunday Mar 29 and Oct 25. New York is UTC-5 in
winter (EST), UTC-4 in summer (EDT); London is UTC+0 (GMT), UTC+1 (BST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.serving.sla import (
    BusinessCalendar,
    HolidayCalendar,
    SlaConfig,
    SlaError,
    calendar_for,
    disposition_due,
    due_at,
    load_sla,
    target_hours,
)
from tests.conftest import examples

NY, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
TEAM = SlaConfig.model_validate(
    {
        "version": 1,
        "timezone": "America/New_York",
        "business_hours": {"start": "09:00", "end": "17:00"},
        "holidays": {"country": "US"},
        "targets": [
            {"action": "route_to_sales", "tier": "A", "within": "1h"},
            {"action": "route_to_sales", "within": "4h"},
            {"action": "qualify", "within": "2d"},
        ],
        "owners": {
            "jane": {
                "timezone": "Europe/London",
                "holidays": {"country": "GB", "subdivision": "ENG"},
            },
            "ravi": {"timezone": "Europe/London"},  # the team's (US) holidays
        },
    }
)
NEW_YORK = calendar_for(TEAM)
JANE = calendar_for(TEAM, "jane")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def check(calendar: BusinessCalendar, start: datetime, hours: float, due: datetime) -> None:
    """`hours` after `start` is `due`, and back."""
    assert calendar.add(start, hours) == due
    assert calendar.between(start, due) == pytest.approx(hours)


# ---------------------------------------------------------------------------------------------
# weekends, holidays, hours


def test_a_weekend_has_no_business_hours() -> None:
    # Fri 15:00-17:00 = 2 h, Sat and Sun none, Mon 09:00-11:00 = 2 h: 4 h
    check(NEW_YORK, ny(2026, 1, 9, 15), 4, ny(2026, 1, 12, 11))
    assert NEW_YORK.between(ny(2026, 1, 10, 0), ny(2026, 1, 12, 0)) == 0  # Sat 00:00 - Mon 00:00


def test_us_holidays_have_no_business_hours() -> None:
    # Thanksgiving Thu 2026-11-26: Wed 15:00-17:00 = 2 h, Thu off, Fri 09:00-11:00 = 2 h
    check(NEW_YORK, ny(2026, 11, 25, 15), 4, ny(2026, 11, 27, 11))
    # July 4 2026 is a Saturday, observed on Fri July 3
    assert holidays.country_holidays("US", years=2026)[date(2026, 7, 3)] == (
        "Independence Day (observed)"
    )
    # Thu 16:00-17:00 = 1 h, Fri 3 (observed), Sat 4, Sun 5 off, Mon 6 09:00-10:00 = 1 h
    check(NEW_YORK, ny(2026, 7, 2, 16), 2, ny(2026, 7, 6, 10))


def test_a_start_on_a_holiday_counts_from_the_next_opening() -> None:
    # Thanksgiving 10:00: nothing until Fri 09:00, then 2 h -> Fri 11:00
    check(NEW_YORK, ny(2026, 11, 26, 10), 2, ny(2026, 11, 27, 11))


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (ny(2026, 1, 12, 7), ny(2026, 1, 12, 10)),  # Mon before opening: 09:00 + 1 h
        (ny(2026, 1, 12, 20), ny(2026, 1, 13, 10)),  # Mon after closing: Tue 09:00 + 1 h
        (ny(2026, 1, 10, 12), ny(2026, 1, 12, 10)),  # Saturday: Mon 09:00 + 1 h
    ],
)
def test_a_start_outside_hours_counts_from_the_next_opening(start: datetime, due: datetime) -> None:
    check(NEW_YORK, start, 1, due)


def test_landing_exactly_at_closing_rolls_to_the_next_opening() -> None:
    # Mon 13:00 + 4 h is Mon 17:00, the closing: the due moment is Tue 09:00 (still 4 h apart)
    check(NEW_YORK, ny(2026, 1, 12, 13), 4, ny(2026, 1, 13, 9))
    # Fri 09:00 + one business day (8 h) is Fri 17:00 -> Mon 09:00
    check(NEW_YORK, ny(2026, 1, 9, 9), 8, ny(2026, 1, 12, 9))
    assert NEW_YORK.add(ny(2026, 1, 12, 17), 0) == ny(2026, 1, 13, 9)
    assert NEW_YORK.add(ny(2026, 1, 12, 10), 0) == ny(2026, 1, 12, 10)  # open: unchanged


def test_moments_in_any_zone_or_naive_utc_give_utc() -> None:
    # Mon 2026-01-12 14:00 UTC = 09:00 EST; + 3 h = 12:00 EST = 17:00 UTC
    naive, aware = datetime(2026, 1, 12, 14), utc(2026, 1, 12, 14)
    due = NEW_YORK.add(naive, 3)
    assert due == utc(2026, 1, 12, 17) and due.tzinfo is UTC
    assert NEW_YORK.add(aware.astimezone(ZoneInfo("Asia/Tokyo")), 3) == due
    assert NEW_YORK.between(naive, datetime(2026, 1, 12, 17)) == 3
    assert NEW_YORK.between(due, aware) == 0  # end before start


def test_spans_of_months_and_years() -> None:
    # 2026-01-05 (Mon) 09:00 to 2027-01-04 (Mon) 09:00: 52 weeks x 5 days = 260 weekdays, less
    # the 11 US federal holidays on weekdays (July 4 is a Saturday, observed Fri July 3, so 11
    # of the 12 dates count; New Year 2026 was before the start) -> 249 days x 8 h
    hours = 249 * 8
    check(NEW_YORK, ny(2026, 1, 5, 9), hours, ny(2027, 1, 4, 9))


# ---------------------------------------------------------------------------------------------
# daylight-saving time


def test_us_clock_changes_move_the_utc_due_time() -> None:
    # Fri 2026-03-06 16:00 EST (21:00 UTC) + 4 h: Fri 1 h, Mon Mar 9 09:00-12:00 EDT 3 h
    # -> 12:00 EDT = 16:00 UTC (a fixed UTC-5 would say 17:00 UTC, an hour late)
    check(NEW_YORK, utc(2026, 3, 6, 21), 4, utc(2026, 3, 9, 16))
    # Fri 2026-10-30 16:00 EDT (20:00 UTC) + 4 h -> Mon Nov 2 12:00 EST = 17:00 UTC
    check(NEW_YORK, utc(2026, 10, 30, 20), 4, utc(2026, 11, 2, 17))


def test_a_clock_change_day_keeps_its_open_hours() -> None:
    every_day = BusinessCalendar("America/New_York", workdays=frozenset(range(7)))
    # Sun 2026-03-08 has 23 hours; 09:00-17:00 EDT is still 8 business hours
    assert every_day.between(ny(2026, 3, 8, 0), ny(2026, 3, 9, 0)) == 8
    # 09:00 EDT = 13:00 UTC, 17:00 EDT = 21:00 UTC
    check(every_day, utc(2026, 3, 8, 13), 8, utc(2026, 3, 9, 13))  # closing -> Mon 09:00 EDT
    # Sun 2026-11-01 has 25 hours: still 8
    assert every_day.between(ny(2026, 11, 1, 0), ny(2026, 11, 2, 0)) == 8


def test_uk_clock_changes_for_a_london_rep() -> None:
    # Fri 2026-03-27 16:00 GMT = 16:00 UTC + 4 h: Fri 1 h, Mon Mar 30 09:00-12:00 BST 3 h
    # -> 12:00 BST = 11:00 UTC
    check(JANE, utc(2026, 3, 27, 16), 4, utc(2026, 3, 30, 11))
    # Fri 2026-10-23 16:00 BST = 15:00 UTC + 4 h -> Mon Oct 26 12:00 GMT = 12:00 UTC
    check(JANE, utc(2026, 10, 23, 15), 4, utc(2026, 10, 26, 12))


# ---------------------------------------------------------------------------------------------
# owners, targets, due times


def test_a_london_rep_and_the_new_york_team_given_the_same_lead() -> None:
    handed = utc(2026, 1, 13, 14)  # Tue 09:00 EST = 14:00 GMT
    # team: 09:00 + 4 h = 13:00 EST = 18:00 UTC
    assert due_at(TEAM, handed, "route_to_sales", "B") == utc(2026, 1, 13, 18)
    # London: 14:00-17:00 GMT 3 h, Wed 09:00-10:00 1 h -> Wed 10:00 GMT
    assert due_at(TEAM, handed, "route_to_sales", "B", owner="jane") == utc(2026, 1, 14, 10)
    # between the US and UK clock changes the zones are 4 h apart: Tue 2026-03-17 13:00 UTC is
    # 09:00 EDT and 13:00 GMT; London's 13:00 + 4 h lands at closing -> Wed 09:00 GMT
    handed = utc(2026, 3, 17, 13)
    assert due_at(TEAM, handed, "route_to_sales", "B") == utc(2026, 3, 17, 17)
    assert due_at(TEAM, handed, "route_to_sales", "B", owner="jane") == utc(2026, 3, 18, 9)


def test_owner_holidays_are_their_own() -> None:
    handed = utc(2026, 4, 2, 15)  # Thu 16:00 BST, 11:00 EDT; qualify = 2 days = 16 h
    # jane (GB holidays): Thu 1 h, Good Friday Apr 3 and Easter Monday Apr 6 off, Tue 8 h,
    # Wed 09:00-16:00 7 h -> Wed Apr 8 16:00 BST = 15:00 UTC
    assert due_at(TEAM, handed, "qualify", "C", owner="jane") == london(2026, 4, 8, 16)
    # ravi (London, the team's US holidays): Thu 1 h, Fri 8 h, Mon 09:00-16:00 7 h -> Mon 16:00
    assert due_at(TEAM, handed, "qualify", "C", owner="ravi") == london(2026, 4, 6, 16)
    # the team (neither day is a US holiday): Thu 6 h, Fri 8 h, Mon 09:00-11:00 2 h
    assert due_at(TEAM, handed, "qualify", "C") == ny(2026, 4, 6, 11)
    assert calendar_for(TEAM, "someone_else") is NEW_YORK  # unlisted: the team's
    assert calendar_for(TEAM, "jane") is JANE


def test_due_at_by_action_and_tier() -> None:
    monday = ny(2026, 1, 12, 10)
    assert due_at(TEAM, monday, "route_to_sales", "B") == ny(2026, 1, 12, 14)  # + 4 h
    assert due_at(TEAM, monday, "qualify", "B") == ny(2026, 1, 14, 10)  # + 2 x 8 h: Wed 10:00
    # Fri 10:00 + 16 h: Fri 7 h, Mon 8 h, Tue 09:00-10:00 1 h
    assert due_at(TEAM, ny(2026, 1, 9, 10), "qualify", "B") == ny(2026, 1, 13, 10)


def test_the_first_matching_target_wins() -> None:
    assert target_hours(TEAM, "route_to_sales", "A") == 1  # tier A's own target, listed first
    assert target_hours(TEAM, "route_to_sales", "D") == 4
    assert target_hours(TEAM, "route_to_sales", None) == 4
    assert target_hours(TEAM, "qualify", "A") == 16  # no tier A target for qualify
    assert due_at(TEAM, ny(2026, 1, 12, 10), "route_to_sales", "A") == ny(2026, 1, 12, 11)


def test_no_target_no_due_time() -> None:
    assert target_hours(TEAM, "nurture", "A") is None
    assert due_at(TEAM, ny(2026, 1, 12, 10), "nurture", "A") is None
    no_qualify = SlaConfig(version="t", targets=TEAM.targets[:2])
    assert due_at(no_qualify, ny(2026, 1, 12, 10), "qualify", "A") is None


def test_within_units() -> None:
    config = SlaConfig.model_validate(
        {"version": "t", "business_hours": {"start": "08:30", "end": "12:00"},
         "targets": [{"action": "route_to_sales", "within": "30m"},
                     {"action": "qualify", "within": "1.5d"}]}
    )  # fmt: skip
    assert target_hours(config, "route_to_sales", "B") == 0.5
    assert target_hours(config, "qualify", "B") == 1.5 * 3.5  # the day is 08:30-12:00


def test_holidays_worked_anyway_and_company_days_off() -> None:
    spec = HolidayCalendar(country="US", work_on=("Columbus Day",), extra=(date(2026, 12, 24),))
    calendar = BusinessCalendar("America/New_York", holidays=spec)
    assert calendar.between(ny(2026, 10, 12, 0), ny(2026, 10, 13, 0)) == 8  # Columbus Day
    assert NEW_YORK.between(ny(2026, 10, 12, 0), ny(2026, 10, 13, 0)) == 0
    assert calendar.between(ny(2026, 12, 24, 0), ny(2026, 12, 25, 0)) == 0  # company day off
    assert calendar.between(ny(2026, 11, 11, 0), ny(2026, 11, 12, 0)) == 0  # Veterans Day


def test_disposition_deadline_is_calendar_days() -> None:
    assert disposition_due(TEAM, datetime(2026, 1, 9, 15)) == utc(2026, 2, 8, 15)  # + 30 days


# ---------------------------------------------------------------------------------------------
# add and between are inverses


CALENDARS = [
    NEW_YORK,
    JANE,
    # odd hours on a weekend week, and a night window the US clock changes cut into
    BusinessCalendar("Asia/Kolkata", time(8, 30), time(12, 15), frozenset({5, 6, 0})),
    BusinessCalendar("America/New_York", time(1, 30), time(3), frozenset(range(7))),
]
MOMENTS = st.datetimes(
    datetime(2025, 1, 1),
    datetime(2028, 12, 31),
    timezones=st.sampled_from([UTC, NY, LONDON, ZoneInfo("Asia/Kolkata")]),
    allow_imaginary=False,
)
HOURS = st.floats(0, 3000, allow_nan=False)


@settings(max_examples=examples(100))
@given(st.sampled_from(CALENDARS), MOMENTS, HOURS)
def test_between_undoes_add(calendar: BusinessCalendar, start: datetime, hours: float) -> None:
    due = calendar.add(start, hours)
    assert due >= start
    assert calendar.between(start, due) == pytest.approx(hours, abs=1e-6)


@settings(max_examples=examples(100))
@given(st.sampled_from(CALENDARS), MOMENTS, st.timedeltas(timedelta(0), timedelta(days=400)))
def test_add_undoes_between_up_to_closed_time(
    calendar: BusinessCalendar, start: datetime, span: timedelta
) -> None:
    end = start + span
    due = calendar.add(start, calendar.between(start, end))
    # `end` itself when open; else the next opening after it (only closed time in between)
    if calendar.is_open(end):
        assert abs(due - end) <= timedelta(microseconds=2)
    else:
        assert due > end and calendar.between(end, due) == 0


@settings(max_examples=examples(100))
@given(st.sampled_from(CALENDARS), st.lists(MOMENTS, min_size=3, max_size=3))
def test_between_adds_up(calendar: BusinessCalendar, moments: list[datetime]) -> None:
    a, b, c = sorted(moments)
    whole = calendar.between(a, c)
    assert calendar.between(a, b) + calendar.between(b, c) == pytest.approx(whole, abs=1e-6)
    assert 0 <= whole <= (c - a).total_seconds() / 3600 + 1e-9


# ---------------------------------------------------------------------------------------------
# the file


def test_the_packaged_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADSCORE_CONFIG_DIR", raising=False)
    config = load_sla()
    assert config.timezone == "America/New_York" and config.day_hours == 8
    assert target_hours(config, "route_to_sales", "B") == 4
    assert target_hours(config, "qualify", "B") == 16
    assert target_hours(config, "nurture", "B") is None


GOOD = """version: 2026.1
business_hours:
  start: {start}
  end: {end}
targets:
  - action: route_to_sales
    within: 4h
"""


def test_unquoted_times_read_as_clock_times(tmp_path: Path) -> None:
    file = tmp_path / "sla.yaml"
    file.write_text(GOOD.format(start="8:30", end="17:00"))  # YAML 1.1: 510 and 1020
    config = load_sla(file)
    assert config.business_hours.start == time(8, 30) and config.day_hours == 8.5
    assert config.version == "2026.1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 1\ntimezone: America/NewYork\n", "line 2: timezone: unknown time zone"),
        ("version: 1\nholidays:\n  country: XX\n", "line 2: holidays: unknown country 'XX'"),
        (
            "version: 1\nholidays:\n  country: US\n  subdivision: ZZ\n",
            "line 2: holidays: unknown subdivision",
        ),
        (
            "version: 1\nholidays:\n  work_on: [Groundhog Day]\n",
            "line 2: holidays: work_on names no US holiday: ['Groundhog Day']",
        ),
        (
            "version: 1\nowners:\n  jane:\n    timezone: Mars/Olympus\n",
            "line 4: owners.jane.timezone: unknown time zone",
        ),
        (
            "version: 1\ntargets:\n  - action: qualify\n    within: 2 weeks\n",
            "line 4: targets.0.within: expected a positive number and a unit: 30m, 4h or 2d",
        ),
        (
            "version: 1\ntargets:\n  - {action: qualify, within: 0h}\n",
            "line 3: targets.0.within: expected a positive number",
        ),
        (
            "version: 1\ntargets:\n  - {action: qualify, within: 4}\n",
            "line 3: targets.0.within: expected a positive number",
        ),
        (
            "version: 1\ntargets:\n  - {action: nurture, within: 4h}\n",
            "line 3: targets.0.action: Input should be 'route_to_sales' or 'qualify'",
        ),
        (
            "version: 1\ntargets:\n  - {action: qualify, within: 2d}\n"
            "  - {action: qualify, tier: A, within: 1d}\n",
            "line 2: targets: target 2 (qualify, tier A) can never apply",
        ),
    ],
)
def test_config_errors_name_the_file_line_and_field(
    tmp_path: Path, text: str, problem: str
) -> None:
    file = tmp_path / "sla.yaml"
    file.write_text(text)
    with pytest.raises(SlaError) as err:
        load_sla(file)
    [message] = err.value.lines()
    assert message.startswith(f"{file} {problem}"), message


def test_closing_must_come_after_opening(tmp_path: Path) -> None:
    file = tmp_path / "sla.yaml"
    file.write_text(GOOD.format(start='"17:00"', end='"09:00"'))
    with pytest.raises(SlaError) as err:
        load_sla(file)
    assert err.value.lines() == [
        f"{file} line 2: business_hours: end (09:00) must be after start (17:00); a business "
        "day cannot span midnight (got {'start': '17:00', 'end': '09:00'})"
    ]
    with pytest.raises(SlaError, match="SLA file not found"):
        load_sla(tmp_path / "missing.yaml")
