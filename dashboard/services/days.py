"""The days a report is searched by ("Issued from", "Created to"): site-local days, read from the
form's text and turned into the UTC instants a query compares.

Python's calendar (and so the driver's) runs from year 1 to year 9999: a day at either end cannot
be moved to UTC or one day on (``OverflowError``). A search takes days from ``FIRST_DAY`` to
``LAST_DAY``, which hold every record ParkOps can have, and says so for any other.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from dashboard.services.errors import ValidationFailed

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def parse_day(text: str | None, field: str) -> date | None:
    """A day as the form's date input sends it (``YYYY-MM-DD``); ``None`` when empty."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({field: "a date as YYYY-MM-DD"}) from None


def day_bounds(
    first: date | None, last: date | None, tz: tzinfo, *, first_field: str = "from", last_field: str = "to"
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` in UTC for the local days ``first`` to ``last`` inclusive (either open)."""
    errors: dict[str, str] = {}
    for field, day in ((first_field, first), (last_field, last)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            errors[field] = f"a date from {FIRST_DAY.year} to {LAST_DAY.year}"
    if not errors and first is not None and last is not None and first > last:
        errors[last_field] = "the end date is before the start date"
    if errors:
        raise ValidationFailed(errors)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC) if first is not None else None
    end = (
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
        if last is not None
        else None
    )
    return start, end


def moment_words(moment: datetime, now: datetime, tz: tzinfo, *, seconds: bool = False) -> str:
    """A moment near ``now`` as an officer reads it on a phone, in the site's zone: "13:04 today",
    "09:00 tomorrow", "18:00 yesterday", else "Friday 5 December 2026 at 13:04" (never ISO);
    ``seconds`` for a log ("13:04:07 today")."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    named = {today: "today", today + timedelta(days=1): "tomorrow", today - timedelta(days=1): "yesterday"}
    if local.date() in named:
        return f"{clock} {named[local.date()]}"
    return f"{local:%A} {local.day} {local:%B %Y} at {clock}"
