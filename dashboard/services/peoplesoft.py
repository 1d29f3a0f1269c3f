"""PeopleSoft holds: the nightly Holds Added and Holds Released files (the seed's "PeopleSoft
Integration for Payments and Holds").

The debt stays in ParkOps; PeopleSoft only learns who to hold and for how much:
- **Holds Added**: every user with a student/staff ID whose outstanding violation balance is new or
  changed since the last report. The amount is the total owed (it overwrites PeopleSoft's value).
- **Holds Released**: every user PeopleSoft holds (``PeopleSoftHold``) whose balance is now 0.00.
  The hold row goes with the release, so a user is released once.
- Owing users without a student/staff ID cannot be held; each report lists them as skipped.

A user's balance is what their unpaid violations (including those under appeal, which are still
owed until decided) add up to, less what successful payments allocated to them; a voided or paid
violation owes nothing. One line per user: Violation Type and Violation Date are those of the
user's oldest violation still owing (the one the hold began with).

Files are tab-separated UTF-8 text with a header line and CRLF line ends, rows sorted by ID; tabs
and line breaks inside a value become spaces so a name cannot break a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services import email, system_settings
from dashboard.services.violations import PAID_PAYMENTS
from models import (
    ItemKind,
    Payment,
    PaymentAllocation,
    PeopleSoftHold,
    PeopleSoftReport,
    User,
    Violation,
    ViolationItem,
    ViolationStatus,
)

FIELDS = ("Student/Staff ID", "Total Amount Owed", "User Type", "Violation Type", "Violation Date")
TEMPLATE = "peoplesoft-holds-report"
OWING_STATUSES = (ViolationStatus.UNPAID, ViolationStatus.UNDER_APPEAL)
CONTENT_TYPE = "text/plain; charset=utf-8"
KINDS = ("added", "released")
_ITEM_WORDS = {ItemKind.LATE_FEE: "Late fee", ItemKind.REDUCTION: "Reduction"}


@dataclass(frozen=True)
class Balance:
    """What one user owes now, with what the files say about them."""

    user_id: int
    student_id: str  # "" when the user has none
    name: str
    email: str
    user_type: str
    owed_cents: int
    violation_type: str
    violation_date: date


@dataclass(frozen=True)
class Skipped:
    user_id: int
    name: str
    email: str
    owed_cents: int


@dataclass(frozen=True)
class ReportView:
    id: int
    created_at: datetime
    report_date: date
    added_filename: str
    added_count: int
    released_filename: str
    released_count: int
    skipped: list[Skipped]
    recipient: str
    outbox_message_id: int | None

    @property
    def emailed(self) -> bool:
        return self.outbox_message_id is not None


@dataclass(frozen=True)
class ReportFile:
    filename: str
    content: bytes


def money(cents: int) -> str:
    """12.50: the amount as the files carry it (no currency sign, two decimals)."""
    return f"{cents // 100}.{cents % 100:02d}"


def _type_name(user: User) -> str:
    return user.user_type.name if user.user_type else ""


def _violation_type(violation: Violation) -> str:
    for item in violation.items:
        if item.kind is ItemKind.OFFENCE:
            return item.offence_type.name if item.offence_type else item.description
    for item in violation.items:
        return _ITEM_WORDS.get(item.kind, item.description)
    return ""


def balances(session: Session, tz: tzinfo) -> list[Balance]:
    """Every user who owes something on their violations, by user id (see the module docstring)."""
    owing = session.scalars(
        select(Violation)
        .where(Violation.user_id.is_not(None), Violation.status.in_(OWING_STATUSES))
        .options(selectinload(Violation.items).selectinload(ViolationItem.offence_type))
        .order_by(Violation.issued_at, Violation.id)
    ).all()
    if not owing:
        return []
    paid = dict(
        session.execute(
            select(PaymentAllocation.violation_id, func.sum(PaymentAllocation.amount_cents))
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(
                PaymentAllocation.violation_id.in_([v.id for v in owing]),
                Payment.status.in_(PAID_PAYMENTS),
            )
            .group_by(PaymentAllocation.violation_id)
        ).all()
    )
    totals: dict[int, int] = {}
    first: dict[int, Violation] = {}
    for violation in owing:
        left = max(0, violation.total_cents - int(paid.get(violation.id) or 0))
        if left == 0:
            continue
        user_id = int(violation.user_id)  # type: ignore[arg-type]
        totals[user_id] = totals.get(user_id, 0) + left
        first.setdefault(user_id, violation)
    users = {
        user.id: user
        for user in session.scalars(
            select(User).where(User.id.in_(list(totals))).options(selectinload(User.user_type))
        )
    }
    return [
        Balance(
            user_id=user_id,
            student_id=(users[user_id].external_id or "").strip(),
            name=users[user_id].full_name,
            email=users[user_id].email,
            user_type=_type_name(users[user_id]),
            owed_cents=totals[user_id],
            violation_type=_violation_type(first[user_id]),
            violation_date=first[user_id].issued_at.astimezone(tz).date(),
        )
        for user_id in sorted(totals)
    ]


def _clean(value: str) -> str:
    return " ".join(value.replace("\t", " ").splitlines()).strip()


def render_file(rows: Iterable[tuple[str, int, str, str, date | None]]) -> bytes:
    """The file: a header and one row per user (ID, amount, user type, violation type, date)."""
    lines = ["\t".join(FIELDS)]
    for student_id, cents, user_type, violation_type, day in sorted(rows, key=lambda row: row[0]):
        fields = (student_id, money(cents), user_type, violation_type, day.isoformat() if day else "")
        lines.append("\t".join(_clean(field) for field in fields))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def file_name(pattern: str, kind: str, day: date) -> str:
    """The file name from the File Name Pattern setting ({type}, {date} as YYYYMMDD)."""
    checked = system_settings.check_file_name_pattern(pattern)
    return checked.replace("{type}", kind).replace("{date}", f"{day:%Y%m%d}")


def run_report(
    session: Session,
    now: datetime,
    tz: tzinfo,
    *,
    pattern: str,
    recipient: str,
    backend: email.EmailBackend,
    reply_to: str | None = None,
) -> ReportView:
    """Build both files from the balances and the holds PeopleSoft has, update the holds, keep the
    report, and e-mail the files when either has a row (a night where nothing changed sends no
    mail, so running the task twice sends nothing twice). Everything happens in the caller's
    transaction: a report that fails leaves the holds as they were, to be reported next time."""
    day = now.astimezone(tz).date()
    names = {kind: file_name(pattern, kind, day) for kind in KINDS}
    holds = {hold.user_id: hold for hold in session.scalars(select(PeopleSoftHold))}
    owing = balances(session, tz)
    added: list[tuple[str, int, str, str, date | None]] = []
    skipped: list[Skipped] = []
    for balance in owing:
        if not balance.student_id:
            skipped.append(Skipped(balance.user_id, balance.name, balance.email, balance.owed_cents))
            continue
        hold = holds.get(balance.user_id)
        if hold is not None and (hold.amount_cents, hold.student_id) == (
            balance.owed_cents,
            balance.student_id,
        ):
            continue
        if hold is None:
            hold = PeopleSoftHold(user_id=balance.user_id, held_since=now)
            session.add(hold)
        hold.student_id = balance.student_id
        hold.amount_cents = balance.owed_cents
        hold.user_type = balance.user_type
        hold.violation_type = balance.violation_type
        hold.violation_date = balance.violation_date
        hold.reported_at = now
        added.append(
            (
                balance.student_id,
                balance.owed_cents,
                balance.user_type,
                balance.violation_type,
                balance.violation_date,
            )
        )
    still_owing = {balance.user_id for balance in owing}
    released: list[tuple[str, int, str, str, date | None]] = []
    for user_id, hold in holds.items():
        if user_id not in still_owing:
            released.append((hold.student_id, 0, hold.user_type, hold.violation_type, hold.violation_date))
            session.delete(hold)
    files = {"added": render_file(added), "released": render_file(released)}
    report = PeopleSoftReport(
        created_at=now,
        report_date=day,
        added_filename=names["added"],
        added_content=files["added"].decode("utf-8"),
        added_count=len(added),
        released_filename=names["released"],
        released_content=files["released"].decode("utf-8"),
        released_count=len(released),
        skipped=[asdict(s) for s in skipped],
        recipient=recipient,
    )
    session.add(report)
    session.flush()
    if added or released:
        context = {
            "report_date": day.isoformat(),
            "added_count": len(added),
            "added_filename": names["added"],
            "released_count": len(released),
            "released_filename": names["released"],
        }
        attachments = [email.Attachment(names[kind], CONTENT_TYPE, files[kind]) for kind in KINDS]
        message = email.compose(
            session, TEMPLATE, context, [recipient], reply_to=reply_to or None, attachments=attachments
        )
        report.outbox_message_id = email.send_email(session, message, backend)
        session.flush()
    return _view(report)


def _view(row: PeopleSoftReport) -> ReportView:
    return ReportView(
        id=row.id,
        created_at=row.created_at,
        report_date=row.report_date,
        added_filename=row.added_filename,
        added_count=row.added_count,
        released_filename=row.released_filename,
        released_count=row.released_count,
        skipped=[Skipped(**entry) for entry in row.skipped or []],
        recipient=row.recipient,
        outbox_message_id=row.outbox_message_id,
    )


def list_reports(session: Session, limit: int = 60) -> list[ReportView]:
    """The history of runs, newest first."""
    rows = session.scalars(
        select(PeopleSoftReport)
        .order_by(PeopleSoftReport.created_at.desc(), PeopleSoftReport.id.desc())
        .limit(limit)
    )
    return [_view(row) for row in rows]


def report_file(session: Session, report_id: Any, kind: Any) -> ReportFile | None:
    """One file of one report, exactly as e-mailed; ``None`` for an unknown report or kind."""
    if kind not in KINDS or isinstance(report_id, bool) or not isinstance(report_id, int):
        return None
    if not 0 < report_id < 2**31:
        return None
    row = session.get(PeopleSoftReport, report_id)
    if row is None:
        return None
    if kind == "added":
        return ReportFile(row.added_filename, row.added_content.encode("utf-8"))
    return ReportFile(row.released_filename, row.released_content.encode("utf-8"))


@dataclass(frozen=True)
class HoldView:
    student_id: str
    name: str
    amount_cents: int
    held_since: datetime


def current_holds(session: Session) -> list[HoldView]:
    """Who PeopleSoft holds now, as the last reports told it, by ID."""
    rows = session.execute(
        select(PeopleSoftHold, User)
        .join(User, User.id == PeopleSoftHold.user_id)
        .order_by(PeopleSoftHold.student_id)
    ).all()
    return [
        HoldView(hold.student_id, user.full_name, hold.amount_cents, hold.held_since) for hold, user in rows
    ]
