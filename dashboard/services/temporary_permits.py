"""Temporary Permits (the seed's Parking Management > Temporary Permits): every temporary sale in
one list, whoever sold it (the quick checkout and the cart, pay stations and meters, HotSpot and
partners, ParkMobile), searched by site-local days and exported as CSV.

The query is ``pay_stations.search`` with ``Scope.TEMPORARY``; this module adds what the list
reads in: its days, its words and its download.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, tzinfo

from dashboard.services.days import day_bounds, moment_words, parse_day
from dashboard.services.pay_stations import RecordRow, Window, source_label
from dashboard.services.spreadsheet import safe_cell

CSV_HEADER = (
    "permit",
    "source",
    "external id",
    "plate",
    "zone",
    "lot",
    "start (local)",
    "end (local)",
    "amount",
    "currency",
    "status",
    "over allowance",
)
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").


def day_window(first_text: str | None, last_text: str | None, tz: tzinfo) -> Window:
    """Sales in force at some moment of the site-local days ``first`` to ``last`` (both included,
    either open). Raises ``ValidationFailed`` with ``from``/``to`` messages."""
    start, end = day_bounds(parse_day(first_text, "from"), parse_day(last_text, "to"), tz)
    return Window(start, end)


def when_words(row: RecordRow, now: datetime, tz: tzinfo) -> tuple[str, str]:
    """Start and end as staff read them ("09:30 today", "Friday 5 December 2026 at 13:04")."""
    return moment_words(row.start_at, now, tz), moment_words(row.end_at, now, tz)


def status_words(row: RecordRow, now: datetime) -> str:
    if row.status != "active":
        return str(row.status).capitalize()
    if row.active_at(now):
        return "Active now"
    return "Upcoming" if row.start_at > now else "Ended"


def export_csv(rows: tuple[RecordRow, ...], tz: tzinfo) -> str:
    """The rows as CSV, times in the site's zone; every text cell that a spreadsheet would run as
    a formula (a plate or id a vendor sent as ``=HYPERLINK(...)``) is quoted with a leading '."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)

    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    for row in rows:
        writer.writerow(
            [
                safe_cell(row.number or ""),
                safe_cell(source_label(row.source)),
                safe_cell(row.external_id or ""),
                safe_cell(row.plate),
                safe_cell(row.zone or row.zone_name or ""),
                safe_cell("; ".join(row.lot_names)),
                local(row.start_at),
                local(row.end_at),
                f"{row.amount_cents / 100:.2f}",
                safe_cell(row.currency),
                safe_cell(row.status),
                "yes" if row.over_capacity else "no",
            ]
        )
    return out.getvalue()
