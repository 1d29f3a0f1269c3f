"""Times of day for system tasks: a five-field cron spec ("0 2 * * *": daily at 02:00) read on the
site's wall clock, turned into UTC instants that are safe across daylight-saving changes.

croniter walks the wall clock (naive local times); this module maps each wall time to one instant:
- a time the spring-forward gap skips (02:30 on the night clocks jump from 02:00 to 03:00) runs
  once, at the first instant after the gap (03:00 daylight time);
- a time the fall-back repeats (01:30 happens twice) runs once, at its first occurrence.
So a nightly task runs exactly once each night, whichever night the clocks change.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterError, croniter

from dashboard.services.errors import ValidationFailed

MAX_SPEC = 64
# How many wall-clock matches ``next_fire`` may pass over (each one at or before ``after``) before
# deciding the spec never fires: a valid spec such as "0 0 30 2 *" (30 February) never matches.
_MAX_STEPS = 1000
WEEKDAYS = tuple(calendar.day_name[(i - 1) % 7] for i in range(7))  # cron's 0 is Sunday


@dataclass(frozen=True)
class Schedule:
    """A checked spec. ``words``: how the tasks page says it ("daily at 02:00")."""

    spec: str
    words: str


def parse(spec: object) -> Schedule:
    """Check a spec: five fields (minute hour day-of-month month day-of-week) that croniter accepts
    and that match at least one moment; anything else raises ``ValidationFailed`` naming the field."""
    if not isinstance(spec, str):
        raise ValidationFailed({"schedule": "must be text such as 0 2 * * * (daily at 02:00)"})
    fields = spec.split()
    if len(fields) != 5:
        raise ValidationFailed(
            {"schedule": "must have five fields: minute hour day-of-month month day-of-week, e.g. 0 2 * * *"}
        )
    normalized = " ".join(fields)
    if len(normalized) > MAX_SPEC:
        raise ValidationFailed({"schedule": f"at most {MAX_SPEC} characters"})
    try:
        croniter(normalized, datetime(2000, 1, 1))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValidationFailed({"schedule": f"not a valid schedule ({exc})"}) from None
    if _next_wall(normalized, datetime(2000, 1, 1), steps=1) is None:
        raise ValidationFailed({"schedule": "this schedule never matches a real date"})
    return Schedule(normalized, _words(normalized))


def daily(hour: int, minute: int) -> str:
    """The spec of "every day at hour:minute"."""
    _check_time(hour, minute)
    return f"{minute} {hour} * * *"


def weekly(weekday: int, hour: int, minute: int) -> str:
    """The spec of "every week on ``weekday`` (0 Sunday .. 6 Saturday) at hour:minute"."""
    _check_time(hour, minute)
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise ValidationFailed({"weekday": "choose a day of the week"})
    return f"{minute} {hour} * * {weekday}"


def _check_time(hour: object, minute: object) -> None:
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (hour, minute))
    if not ok or not (0 <= hour <= 23 and 0 <= minute <= 59):  # type: ignore[operator]
        raise ValidationFailed({"time": "enter a time of day such as 02:00"})


def _words(spec: str) -> str:
    minute, hour, dom, month, dow = spec.split()
    if minute.isdecimal() and hour.isdecimal() and dom == "*" and month == "*":
        at = f"{int(hour):02d}:{int(minute):02d}"
        if dow == "*":
            return f"daily at {at}"
        if dow.isdecimal() and int(dow) <= 7:
            return f"weekly on {WEEKDAYS[int(dow) % 7]} at {at}"
    return f"at times matching {spec}"


def _next_wall(spec: str, start: datetime, steps: int = _MAX_STEPS) -> datetime | None:
    """The first wall-clock match strictly after the naive ``start`` (``None`` if none is found)."""
    iterator = croniter(spec, start)
    for _ in range(steps):
        try:
            return iterator.get_next(datetime)
        except CroniterError:
            return None
    return None


def resolve(wall: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of a naive local time: its first occurrence when the fall-back repeats it,
    the end of the gap when the spring-forward skips it."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 reads the wall time with the offset from before the change and fold=1 with
    # the one after; the change itself lies between the two instants. Find it to the second.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    after = high.astimezone(tz).utcoffset()
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def next_fire(spec: str, tz: tzinfo, after: datetime) -> datetime | None:
    """The first instant strictly after ``after`` (aware) at which ``spec`` fires in ``tz``, in UTC.

    Wall-clock matches whose instant is not after ``after`` are passed over: that is what makes the
    repeated fall-back hour fire once (its second 01:30 maps back to the first, already past) and a
    run at the end of a gap not fire again for the other skipped times that map to the same instant.
    ``None`` only for a spec that never matches."""
    wall = after.astimezone(tz).replace(tzinfo=None)
    iterator = croniter(spec, wall)
    for _ in range(_MAX_STEPS):
        try:
            candidate = resolve(iterator.get_next(datetime), tz)
        except CroniterError:
            return None
        if candidate > after:
            return candidate
    return None


def fires_between(
    spec: str, tz: tzinfo, start: datetime, end: datetime, limit: int = 10_000
) -> list[datetime]:
    """Every instant in [start, end] at which ``spec`` fires (at most ``limit``): the runs a
    scheduler outage covered."""
    found: list[datetime] = []
    moment = next_fire(spec, tz, start - timedelta(microseconds=1))
    while moment is not None and moment <= end and len(found) < limit:
        found.append(moment)
        moment = next_fire(spec, tz, moment)
    return found
