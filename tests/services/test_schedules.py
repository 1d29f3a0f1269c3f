"""Fixed times of day: specs are checked and said in words; wall times map to one instant each,
also on the nights the clocks change (America/Toronto, and a zone whose change is at midnight)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.services import schedules
from dashboard.services.errors import ValidationFailed

TORONTO = ZoneInfo("America/Toronto")


def fires(spec: str, tz: ZoneInfo, start: datetime, count: int) -> list[str]:
    found, moment = [], start
    for _ in range(count):
        moment = schedules.next_fire(spec, tz, moment)
        found.append(f"{moment.astimezone(tz):%d %H:%M %Z}")
    return found


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("0 2 * * *", "daily at 02:00"),
        (" 5  23 * *  *", "daily at 23:05"),
        ("0 3 * * 0", "weekly on Sunday at 03:00"),
        ("0 3 * * 7", "weekly on Sunday at 03:00"),
        ("30 6 * * 5", "weekly on Friday at 06:30"),
        ("*/15 * * * 1-5", "at times matching */15 * * * 1-5"),
    ],
)
def test_specs_in_words(spec, words):
    assert schedules.parse(spec).words == words


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("0 2 * *", "must have five fields"),
        ("0 0 2 * * *", "must have five fields"),
        ("@daily", "must have five fields"),
        ("60 2 * * *", "not a valid schedule"),
        ("0 2 31 2 *", "never matches a real date"),
        (None, "must be text"),
        ("0 2 * * *" + " " * 10 + "x" * 60, "must have five fields"),
    ],
)
def test_bad_specs_are_refused_in_words(spec, error):
    with pytest.raises(ValidationFailed) as refused:
        schedules.parse(spec)
    assert error in refused.value.errors["schedule"]


def test_daily_and_weekly_builders_check_their_input():
    assert schedules.daily(2, 0) == "0 2 * * *"
    assert schedules.weekly(0, 3, 0) == "0 3 * * 0"
    for hour, minute in [(24, 0), (2, 60), (-1, 0), (True, 0)]:
        with pytest.raises(ValidationFailed):
            schedules.daily(hour, minute)
    with pytest.raises(ValidationFailed):
        schedules.weekly(7, 3, 0)


def test_spring_forward_runs_a_skipped_time_once_at_the_end_of_the_gap():
    start = datetime(2026, 3, 7, 12, tzinfo=UTC)
    assert fires("30 2 * * *", TORONTO, start, 3) == ["08 03:00 EDT", "09 02:30 EDT", "10 02:30 EDT"]
    # Every quarter of the skipped hour maps to 03:00; it runs once there, then 03:15 as usual.
    assert fires("*/15 2,3 * * *", TORONTO, datetime(2026, 3, 8, 6, 0, tzinfo=UTC), 3) == [
        "08 03:00 EDT",
        "08 03:15 EDT",
        "08 03:30 EDT",
    ]


def test_fall_back_runs_a_repeated_time_once():
    start = datetime(2026, 10, 31, 12, tzinfo=UTC)
    assert fires("30 1 * * *", TORONTO, start, 2) == ["01 01:30 EDT", "02 01:30 EST"]
    hourly = fires("30 * * * *", TORONTO, datetime(2026, 11, 1, 4, 0, tzinfo=UTC), 3)
    assert hourly == ["01 00:30 EDT", "01 01:30 EDT", "01 02:30 EST"]
    # Asked from inside the repeated hour (01:10 EST), the first 01:30 is past: next is 02:30.
    inside = datetime(2026, 11, 1, 1, 10, tzinfo=TORONTO, fold=1)
    assert fires("30 1,2 * * *", TORONTO, inside, 1) == ["01 02:30 EST"]


def test_a_gap_at_midnight_is_resolved_too():
    """Santiago moves its clocks at midnight: 00:00 does not exist on 6 September 2026."""
    santiago = ZoneInfo("America/Santiago")
    start = datetime(2026, 9, 5, 12, tzinfo=santiago)
    assert fires("0 0 * * *", santiago, start, 2) == ["06 01:00 -03", "07 00:00 -03"]


def test_fires_between_lists_the_times_an_outage_covered():
    start = datetime(2026, 3, 7, 7, 0, tzinfo=UTC)  # 02:00 EST
    end = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 02:00 EDT
    found = schedules.fires_between("0 2 * * *", TORONTO, start, end)
    assert [f"{m.astimezone(TORONTO):%d %H:%M}" for m in found] == [
        "07 02:00",
        "08 03:00",
        "09 02:00",
        "10 02:00",
    ]
