"""Days searched by: site-local days to UTC instants, and the days a search refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.services.days import day_bounds, moment_words, parse_day
from dashboard.services.errors import ValidationFailed

TZ = ZoneInfo("America/Toronto")


def test_a_range_of_local_days_is_its_utc_instants_end_excluded():
    start, end = day_bounds(date(2026, 7, 1), date(2026, 7, 2), TZ)
    assert start == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # EDT, UTC-4
    assert end == datetime(2026, 7, 3, 4, 0, tzinfo=UTC)
    assert day_bounds(None, None, TZ) == (None, None)


@pytest.mark.parametrize(
    ("first", "last", "errors"),
    [
        (None, date(9999, 12, 31), {"to": "a date from 1900 to 2999"}),  # no day after it
        (date(1, 1, 1), None, {"from": "a date from 1900 to 2999"}),  # before UTC's year 1 east of UTC
        (
            date(1, 1, 1),
            date(9999, 12, 31),
            {"from": "a date from 1900 to 2999", "to": "a date from 1900 to 2999"},
        ),
        (date(2026, 7, 2), date(2026, 7, 1), {"to": "the end date is before the start date"}),
    ],
)
def test_days_outside_the_calendar_or_reversed_are_refused(first, last, errors):
    with pytest.raises(ValidationFailed) as refused:
        day_bounds(first, last, ZoneInfo("Asia/Tokyo"))
    assert refused.value.errors == errors


def test_a_day_is_read_as_the_date_input_sends_it():
    assert parse_day("2026-07-01", "from") == date(2026, 7, 1)
    assert parse_day("", "from") is None and parse_day(None, "to") is None
    with pytest.raises(ValidationFailed) as refused:
        parse_day("yesterday", "to")
    assert refused.value.errors == {"to": "a date as YYYY-MM-DD"}


@pytest.mark.parametrize(
    ("moment", "words"),
    [
        (datetime(2026, 12, 2, 18, 4, tzinfo=UTC), "13:04 today"),  # 18:04 UTC is 13:04 in Toronto
        (datetime(2026, 12, 3, 4, 30, tzinfo=UTC), "23:30 today"),  # still the 2nd there
        (datetime(2026, 12, 3, 5, 0, tzinfo=UTC), "00:00 tomorrow"),
        (datetime(2026, 12, 1, 23, 0, tzinfo=UTC), "18:00 yesterday"),
        (datetime(2026, 12, 5, 14, 0, tzinfo=UTC), "Saturday 5 December 2026 at 09:00"),
    ],
)
def test_a_moment_is_told_in_the_sites_zone_in_words(moment, words):
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in Toronto
    assert moment_words(moment, now, ZoneInfo("America/Toronto")) == words
