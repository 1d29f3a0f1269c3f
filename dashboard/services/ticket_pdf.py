"""A ticket as a PDF on 3-inch thermal paper: 72 mm wide, as tall as its content.

reportlab draws it (no system libraries; its own Bitstream Vera fonts cover the accented letters
of names and lots that the built-in Helvetica would not). The QR code is drawn as vector squares
from segno's matrix, so it stays sharp on a 203 dpi printer, and it opens the ticket's payment page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

import reportlab
import segno
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from dashboard.services.violations import TicketView, when_words

WIDTH = 72 * mm
MARGIN = 3 * mm
QR_SIZE = 38 * mm
FONT, BOLD = "ParkOpsVera", "ParkOpsVeraBold"
_FONTS = Path(reportlab.__file__).parent / "fonts"


def _register_fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(_FONTS / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(_FONTS / "VeraBd.ttf")))


@dataclass(frozen=True)
class Line:
    text: str
    size: float = 8.5
    bold: bool = False
    right: str | None = None  # a right-aligned amount on the same line
    gap: float = 1.2  # extra space below, in mm


def ticket_lines(
    ticket: TicketView, site_name: str, tz: tzinfo, boots_shown: bool, currency: str = "CAD"
) -> list[Line]:
    """What the paper says, top to bottom (the print view shows the same, from the same lines).
    Amounts are in the site's ``currency``, named on the total and the early price (each item
    line has no room for it on 72 mm paper)."""
    lines = [
        Line(site_name, 10, bold=True),
        Line("PARKING VIOLATION", 9, bold=True, gap=2.5),
        Line(ticket.ticket_number, 16, bold=True, gap=2.5),
        Line(f"Issued {when_words(ticket.issued_at, tz)}"),
        Line(f"Lot: {ticket.lot_name or '—'}"),
        Line(f"Plate: {ticket.plate}", 10, bold=True),
    ]
    if ticket.officer_name:
        lines.append(Line(f"Officer: {ticket.officer_name}", gap=2.5))
    for item in ticket.items:
        label = f"{item.code} {item.description}" if item.code else item.description
        lines.append(Line(label, right=_money(item.amount_cents)))
    lines.append(Line("TOTAL", 10, bold=True, right=f"{_money(ticket.total_cents)} {currency}", gap=2))
    if ticket.early_total_cents is not None and ticket.discount_until is not None:
        lines.append(
            Line(
                f"Pay {_money(ticket.early_total_cents)} {currency} by "
                f"{when_words(ticket.discount_until, tz)}."
            )
        )
    if ticket.due_at is not None:
        lines.append(Line(f"Due by {when_words(ticket.due_at, tz, with_time=False)}.", bold=True))
    if boots_shown and ticket.boots:
        names = ", ".join(b.boot_name for b in ticket.boots)
        lines.append(
            Line(
                f"A boot ({names}) is on this vehicle. Pay online: the release code is e-mailed to you "
                "with the return instructions.",
                bold=True,
            )
        )
    if ticket.notes:
        lines.append(Line(f"Notes: {ticket.notes}"))
    return lines


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def render(
    ticket: TicketView,
    *,
    site_name: str,
    pay_url: str,
    tz: tzinfo,
    boots_shown: bool,
    currency: str = "CAD",
) -> bytes:
    _register_fonts()
    lines = ticket_lines(ticket, site_name, tz, boots_shown, currency)
    text_width = WIDTH - 2 * MARGIN
    laid: list[tuple[Line, list[str]]] = []
    height = MARGIN
    for line in lines:
        font = BOLD if line.bold else FONT
        room = text_width - (
            pdfmetrics.stringWidth(line.right, font, line.size) + 2 * mm if line.right else 0
        )
        wrapped = simpleSplit(line.text, font, line.size, room) or [""]
        laid.append((line, wrapped))
        height += len(wrapped) * line.size * 1.25 + line.gap * mm
    footer = ["Scan to pay online:", *simpleSplit(pay_url, FONT, 7, text_width)]
    height += 2 * mm + QR_SIZE + len(footer) * 7 * 1.3 + MARGIN

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(WIDTH, height))
    pdf.setTitle(f"Ticket {ticket.ticket_number}")
    y = height - MARGIN
    for line, wrapped in laid:
        font = BOLD if line.bold else FONT
        for n, text in enumerate(wrapped):
            y -= line.size * 1.25
            pdf.setFont(font, line.size)
            pdf.drawString(MARGIN, y, text)
            if line.right and n == 0:
                pdf.drawRightString(WIDTH - MARGIN, y, line.right)
        y -= line.gap * mm
    y -= 2 * mm
    _draw_qr(pdf, pay_url, (WIDTH - QR_SIZE) / 2, y - QR_SIZE, QR_SIZE)
    y -= QR_SIZE
    pdf.setFont(FONT, 7)
    for text in footer:
        y -= 7 * 1.3
        pdf.drawCentredString(WIDTH / 2, y, text)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _draw_qr(pdf: canvas.Canvas, data: str, x: float, y: float, size: float) -> None:
    rows = list(segno.make(data, error="m").matrix_iter(border=4))
    cell = size / len(rows)
    pdf.setFillColorRGB(1, 1, 1)
    pdf.rect(x, y, size, size, stroke=0, fill=1)
    pdf.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x + c * cell, y + size - (r + 1) * cell, cell, cell, stroke=0, fill=1)
