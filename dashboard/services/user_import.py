"""Managed user import: CSV files of users from the institution's systems, upserted by unique id.

The same attributes (and the same "possible names" for each) serve the CSV headers, the OC-TOMA
``profiles/push`` call and ``POST /api/v1/users``: ``validate_record`` and ``upsert`` are shared,
so a row refused by one is refused by the others for the same reason.

Files are streamed: the csv module reads a text stream over the open file, failed rows go to a
spooled temporary file, rows are upserted ``BATCH`` at a time by ``upsert_many`` (one look-up query
and two bulk writes per chunk, not a few queries per row) and the caller commits after each chunk,
so memory stays flat however big the file is. A file is checked whole before anything is written
(encoding, headers, at least one row), so a file refused for its form changes nothing and loses
nothing.

Why this module is long: the CSV files, the OC-TOMA push and ``POST /api/v1/users`` share
``validate_record`` and ``upsert`` so that a row is accepted or refused the same way by all three.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.services import email
from dashboard.services.spreadsheet import safe_cell
from dashboard.services.users import EMAIL_RE
from models import AuthSource, LoginMethod, User, UserImport, UserType, utcnow

log = logging.getLogger(__name__)

BATCH = 1000
TEMPLATE = "csv-import-failures"
BAK_FOLDER = ".bak"
# How many failed rows the e-mail lists in its body; all of them are in the attached CSV.
LISTED_FAILURES = 100
# Names that say a file is still being uploaded or is someone's temporary copy.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".filepart", ".crdownload", "~")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Attribute:
    """One user attribute and the header names (OC-TOMA's "possible names") that carry it.
    ``stored``: False for attributes ParkOps accepts (so institutions' files are not refused) but
    does not keep."""

    key: str
    label: str
    names: tuple[str, ...]
    required: bool = False
    stored: bool = True
    max_length: int = 0


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "unique_id",
        "Unique ID (student/staff number)",
        ("unique_id", "uniqueid", "student_no", "employ_no", "student_id", "employee_id", "external_id"),
        required=True,
        max_length=64,
    ),
    Attribute("email", "E-mail", ("email", "email_address", "e_mail"), required=True, max_length=254),
    Attribute("first_name", "First name", ("first_name", "firstname", "given_name"), max_length=80),
    Attribute("last_name", "Last name", ("last_name", "lastname", "surname", "family_name"), max_length=80),
    Attribute("user_name", "User name", ("user_name", "username"), max_length=120),
    Attribute(
        "phone", "Phone", ("phone_cell", "phone", "employee_phone", "student_phone"), max_length=40
    ),
    Attribute("user_type", "User type (code, name or id)", ("user_type_id", "user_type", "usertype")),
    Attribute(
        "not_kept",
        "Accepted, not kept by ParkOps",
        (
            "login_source", "street", "city", "province", "state", "postal_code", "zip", "street2",
            "city2", "province2", "state2", "postal_code2", "zip2", "driver_licence_num",
            "driver_license_num", "date_of_birth", "driver_licence_prov", "driver_license_state",
        ),
        stored=False,
    ),
)  # fmt: skip

_BY_NAME: dict[str, Attribute] = {name: a for a in ATTRIBUTES for name in a.names}


class InvalidRecord(ValueError):
    """A user record that cannot be stored: ``problems`` maps each attribute key to what is wrong
    (the APIs answer it as their 422 ``fields``); ``str()`` joins them for a CSV row's reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {text}" for key, text in problems.items()))


class ImportRefused(Exception):
    """The file as a whole cannot be imported (its form, not one row); ``str()`` says why in words
    a person can act on. Nothing was written."""


@dataclass(frozen=True)
class Record:
    """One valid user, whatever it came from (a CSV row, an API call)."""

    unique_id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    user_name: str | None = None
    phone: str | None = None
    user_type: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What ``upsert`` did: ``created``, ``updated`` or ``unchanged``, and the account's id."""

    action: str
    user_id: int


@dataclass
class Summary:
    filename: str
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first LISTED_FAILURES
    failed: int = 0


def _clean(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | None):
        raise TypeError
    return "" if value is None else str(value).strip()


def validate_record(values: Mapping[str, object]) -> Record:
    """A ``Record`` from attribute keys to raw values (text, or numbers for ids); raises
    ``InvalidRecord`` naming every problem ("unique_id: missing; email: not a valid e-mail
    address")."""
    problems: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for attribute in ATTRIBUTES:
        if not attribute.stored:
            continue
        try:
            value = _clean(values.get(attribute.key))
        except TypeError:
            problems[attribute.key] = "must be text"
            continue
        cleaned[attribute.key] = value
        if attribute.required and not value:
            problems[attribute.key] = "missing"
        elif attribute.max_length and len(value) > attribute.max_length:
            problems[attribute.key] = f"longer than {attribute.max_length} characters"
        elif "\x00" in value:
            problems[attribute.key] = "must not contain NUL characters"
    email_value = cleaned.get("email", "").lower()
    if "email" not in problems and not EMAIL_RE.match(email_value):
        problems["email"] = "not a valid e-mail address"
    if problems:
        raise InvalidRecord(problems)
    return Record(
        unique_id=cleaned["unique_id"],
        email=email_value,
        first_name=cleaned["first_name"] or None,
        last_name=cleaned["last_name"] or None,
        user_name=cleaned["user_name"] or None,
        phone=cleaned["phone"] or None,
        user_type=cleaned["user_type"] or None,
    )


def user_type_index(session: Session) -> dict[str, UserType]:
    """User types by code, name and id (all lower-cased), as files and APIs may give any of them."""
    index: dict[str, UserType] = {}
    for row in session.scalars(select(UserType)):
        index[str(row.id)] = row
        index[row.name.strip().lower()] = row
        index[row.code.strip().lower()] = row
    return index


def upsert(session: Session, record: Record, types: Mapping[str, UserType]) -> Outcome:
    """Create or update the account whose unique id (``User.external_id``) is ``record.unique_id``.
    An account with the same e-mail and no unique id yet is adopted (made by hand before the
    institution's import). Raises ``InvalidRecord`` (the row's reason) when the record would clash
    with another account; the caller's transaction is left as it was."""
    user_type = None
    if record.user_type:
        user_type = types.get(record.user_type.lower())
        if user_type is None:
            raise InvalidRecord({"user_type": f"unknown value {record.user_type!r}"})
    user = session.scalar(select(User).where(User.external_id == record.unique_id))
    if user is not None and user.email.lower() == record.email:
        by_email: User | None = user  # the steady state of a nightly export: one query, not two
    else:
        by_email = session.scalar(select(User).where(func.lower(User.email) == record.email))
    if user is None and by_email is not None:
        if by_email.external_id:
            raise InvalidRecord({"email": f"{record.email} belongs to an account with another unique id"})
        user = by_email
    elif user is not None and by_email is not None and by_email.id != user.id:
        raise InvalidRecord({"email": f"{record.email} belongs to another account"})
    if record.user_name:
        holder = session.scalar(select(User.id).where(User.username == record.user_name))
        if holder is not None and (user is None or holder != user.id):
            raise InvalidRecord({"user_name": f"{record.user_name!r} belongs to another account"})
    if user is None:
        sso = user_type is not None and user_type.login_method is LoginMethod.SSO
        user = User(
            email=record.email,
            external_id=record.unique_id,
            first_name=record.first_name or "",
            last_name=record.last_name or "",
            username=record.user_name,
            phone=record.phone,
            user_type=user_type,
            auth_source=AuthSource.SAML if sso else AuthSource.LOCAL,
            email_verified=True,
        )
        session.add(user)
        session.flush()
        return Outcome("created", user.id)
    changes: dict[str, object] = {"email": record.email, "external_id": record.unique_id}
    for key, value in (
        ("first_name", record.first_name),
        ("last_name", record.last_name),
        ("username", record.user_name),
        ("phone", record.phone),
        ("user_type", user_type),
    ):
        if value is not None:
            changes[key] = value
    changed = False
    for key, new_value in changes.items():
        if getattr(user, key) != new_value:
            setattr(user, key, new_value)
            changed = True
    if changed and user.email_bounced_at is not None and "email" in changes:
        user.email_bounced_at = None
        user.email_bounce_reason = None
    session.flush()
    return Outcome("updated" if changed else "unchanged", user.id)


# --- many at once (the CSV import) ------------------------------------------------------------

# Created rows after which the users table's planner statistics are refreshed, then at each doubling.
ANALYZE_FIRST = 2000


def refresh_statistics(session: Session) -> None:
    """``ANALYZE users`` on PostgreSQL, as its manual advises after a bulk load: without fresh
    statistics on ``lower(email)`` (autovacuum may not have run yet, or may be off), the planner
    reads the whole table for each chunk's look-up, and a first import of 100,000 users slows
    down as it goes. It samples a bounded number of rows, takes no lock that blocks readers or
    writers, and is done at 2,000 created rows and then at each doubling (a few times per file).
    SQLite picks the indexes without statistics."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE users"))


@dataclass(eq=False)
class _Account:
    """An account as ``upsert_many`` sees it: loaded by the chunk's query (``id`` set) or made by
    an earlier row of the chunk (``id`` None until the bulk INSERT)."""

    id: int | None
    external_id: str | None
    email: str
    username: str | None
    first_name: str
    last_name: str
    phone: str | None
    user_type_id: int | None
    bounced: bool
    auth_source: AuthSource = AuthSource.LOCAL
    changed: set[str] = field(default_factory=set)  # the columns rows of the chunk changed


_ACCOUNT_COLUMNS = (
    User.id, User.external_id, User.email, User.username, User.first_name, User.last_name, User.phone,
    User.user_type_id, User.email_bounced_at,
)  # fmt: skip
_INDEXED = (("external_id", "by_external"), ("email", "by_email"), ("username", "by_username"))


class _Index:
    """The chunk's accounts by unique id, lower-cased e-mail and user name, kept current as rows
    change them, so a later row of the chunk sees what an earlier one did."""

    def __init__(self, accounts: list[_Account]) -> None:
        self.by_external: dict[str, _Account] = {}
        self.by_email: dict[str, _Account] = {}
        self.by_username: dict[str, _Account] = {}
        for account in accounts:
            self.add(account)

    @staticmethod
    def _key(attribute: str, value: str | None) -> str | None:
        return value.lower() if attribute == "email" and value else value

    def add(self, account: _Account) -> None:
        for attribute, index in _INDEXED:
            key = self._key(attribute, getattr(account, attribute))
            if key:
                getattr(self, index)[key] = account

    def remove(self, account: _Account) -> None:
        for attribute, index in _INDEXED:
            key = self._key(attribute, getattr(account, attribute))
            if key and getattr(self, index).get(key) is account:
                del getattr(self, index)[key]


def _load_accounts(session: Session, records: list[Record]) -> list[_Account]:
    """Every account a chunk can touch (by unique id, e-mail or user name), in one ``IN`` query:
    plain rows, not ORM objects, so nothing piles up in the session's identity map."""
    condition = or_(
        User.external_id.in_({r.unique_id for r in records}),
        func.lower(User.email).in_({r.email for r in records}),
    )
    names = {r.user_name for r in records if r.user_name}
    if names:
        condition = or_(condition, User.username.in_(names))
    return [
        _Account(row.id, row.external_id, row.email, row.username, row.first_name, row.last_name, row.phone,
                 row.user_type_id, row.email_bounced_at is not None)
        for row in session.execute(select(*_ACCOUNT_COLUMNS).where(condition))
    ]  # fmt: skip


def _decide(record: Record, types: Mapping[str, UserType], index: _Index) -> tuple[_Account, str]:
    """``upsert``'s rules on the in-memory index: the account the record makes or changes, and
    ``created``, ``updated`` or ``unchanged``; raises the same ``InvalidRecord`` reasons."""
    user_type = None
    if record.user_type:
        user_type = types.get(record.user_type.lower())
        if user_type is None:
            raise InvalidRecord({"user_type": f"unknown value {record.user_type!r}"})
    account = index.by_external.get(record.unique_id)
    by_email = index.by_email.get(record.email)
    if account is None and by_email is not None:
        if by_email.external_id:
            raise InvalidRecord({"email": f"{record.email} belongs to an account with another unique id"})
        account = by_email
    elif account is not None and by_email is not None and by_email is not account:
        raise InvalidRecord({"email": f"{record.email} belongs to another account"})
    if record.user_name:
        holder = index.by_username.get(record.user_name)
        if holder is not None and holder is not account:
            raise InvalidRecord({"user_name": f"{record.user_name!r} belongs to another account"})
    if account is None:
        sso = user_type is not None and user_type.login_method is LoginMethod.SSO
        account = _Account(
            None, record.unique_id, record.email, record.user_name, record.first_name or "",
            record.last_name or "", record.phone, user_type.id if user_type else None, False,
            AuthSource.SAML if sso else AuthSource.LOCAL,
        )  # fmt: skip
        index.add(account)
        return account, "created"
    changes: dict[str, object] = {"email": record.email, "external_id": record.unique_id}
    for key, value in (
        ("first_name", record.first_name),
        ("last_name", record.last_name),
        ("username", record.user_name),
        ("phone", record.phone),
        ("user_type_id", user_type.id if user_type else None),
    ):
        if value is not None:
            changes[key] = value
    changed = {key for key, value in changes.items() if getattr(account, key) != value}
    if not changed:
        return account, "unchanged"
    index.remove(account)
    for key in changed:
        setattr(account, key, changes[key])
    index.add(account)
    account.changed |= changed
    return account, "updated"


def _write(session: Session, accounts: list[_Account]) -> None:
    """One bulk UPDATE (by primary key) for the changed accounts, then one bulk INSERT for the new
    ones, whose ids come back in order."""
    now = utcnow()
    # Only the columns that changed (a renamed user does not rewrite the unique indexes); the ORM
    # sends one executemany per set of columns.
    updates = [
        {
            "id": a.id,
            "updated_at": now,
            **{key: getattr(a, key) for key in sorted(a.changed)},
            # As ``upsert``: a change to a bounced account clears the bounce (its address is news).
            **({"email_bounced_at": None, "email_bounce_reason": None} if a.bounced else {}),
        }
        for a in accounts
        if a.id is not None and a.changed
    ]
    if updates:
        session.execute(update(User), updates)
    new = [a for a in accounts if a.id is None]
    if new:
        ids = session.scalars(
            insert(User).returning(User.id, sort_by_parameter_order=True),
            [
                {
                    "email": a.email,
                    "external_id": a.external_id,
                    "username": a.username,
                    "first_name": a.first_name,
                    "last_name": a.last_name,
                    "phone": a.phone,
                    "user_type_id": a.user_type_id,
                    "auth_source": a.auth_source,
                    "email_verified": True,
                }
                for a in new
            ],  # fmt: skip
        ).all()
        for account, user_id in zip(new, ids, strict=True):
            account.id = user_id


def upsert_many(
    session: Session, records: list[Record], types: Mapping[str, UserType]
) -> list[Outcome | InvalidRecord]:
    """``upsert`` for a chunk of records, with the same rules and reasons, in three statements
    rather than several per row: one query loads every account the chunk can touch, the rows are
    decided in memory in file order (a later row sees what an earlier one made or changed), then a
    bulk UPDATE and a bulk INSERT write them. One result per record, in order: an ``Outcome``, or
    the ``InvalidRecord`` that refused it.

    Should the bulk write clash anyway (an account made meanwhile by a sign-up; an order of
    changes inside the chunk that a unique index refuses midway), the chunk is redone row by row
    with ``upsert``: a clash costs speed, never a row."""
    if not records:
        return []
    index = _Index(_load_accounts(session, records))
    decided: list[tuple[_Account, str] | InvalidRecord] = []
    touched: dict[int, _Account] = {}
    for record in records:
        try:
            account, action = _decide(record, types, index)
        except InvalidRecord as exc:
            decided.append(exc)
            continue
        if action != "unchanged":
            touched.setdefault(id(account), account)
        decided.append((account, action))
    try:
        with session.begin_nested():
            _write(session, list(touched.values()))
    except IntegrityError:
        log.info("user import: a chunk of %d rows clashed in bulk; redone row by row", len(records))
        return [_upsert_alone(session, record, types) for record in records]
    return [
        item if isinstance(item, InvalidRecord) else Outcome(item[1], int(item[0].id or 0))
        for item in decided
    ]


def _upsert_alone(session: Session, record: Record, types: Mapping[str, UserType]) -> Outcome | InvalidRecord:
    """One record by ``upsert`` in its own savepoint; a unique index refusing it is its reason."""
    try:
        with session.begin_nested():
            return upsert(session, record, types)
    except InvalidRecord as exc:
        return exc
    except IntegrityError:
        return InvalidRecord({"unique_id": "clashes with another account (the database refused it)"})


def accepted_headers() -> list[Attribute]:
    """The attributes and their accepted header names, for ``/admin/user-import``."""
    return list(ATTRIBUTES)


# --- files -----------------------------------------------------------------------------------


def check_encoding(handle: IO[bytes]) -> None:
    """Read the whole file once as UTF-8 (a BOM is allowed), in chunks, and rewind; raise
    ``ImportRefused`` for another encoding, saying where, before any row is imported."""
    start = handle.read(4)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportRefused("the file is UTF-16; save it as CSV UTF-8 and drop it again")
    handle.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    line = 1
    while chunk := handle.read(_CHUNK):
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line += chunk[: exc.start].count(b"\n")
            raise ImportRefused(
                f"the file is not UTF-8 (byte {offset + exc.start + 1}, line {line}); "
                "save it as CSV UTF-8 and drop it again"
            ) from None
        line += text.count("\n")
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportRefused(
            "the file ends in the middle of a character: it is cut short or not UTF-8"
        ) from None
    handle.seek(0)


def header_columns(header: list[str]) -> dict[int, Attribute]:
    """Which attribute each column carries; raises ``ImportRefused`` for an unknown, empty or
    repeated header or a missing required attribute."""
    columns: dict[int, Attribute] = {}
    seen: dict[str, int] = {}
    unknown: list[str] = []
    for index, raw in enumerate(header):
        name = raw.strip().lstrip("\ufeff").lower()
        if not name:
            raise ImportRefused(f"column {index + 1} has no header name")
        if name in seen:
            raise ImportRefused(
                f"the header {raw.strip()!r} appears twice (columns {seen[name] + 1} and {index + 1})"
            )
        seen[name] = index
        attribute = _BY_NAME.get(name)
        if attribute is None:
            unknown.append(raw.strip())
        else:
            columns[index] = attribute
    if unknown:
        raise ImportRefused(
            "unknown column headers: " + ", ".join(repr(u) for u in unknown) + " (the accepted names are "
            "listed on User Import)"
        )
    present = {a.key for a in columns.values()}
    missing = [a for a in ATTRIBUTES if a.required and a.key not in present]
    if missing:
        raise ImportRefused(
            "missing required columns: "
            + "; ".join(f"{a.label} (one of {', '.join(a.names)})" for a in missing)
        )
    return columns


def attribute_named(name: str) -> Attribute | None:
    """The attribute a header or field name carries, if it is an accepted name."""
    return _BY_NAME.get(name.strip().lower())


def values_by_name(fields: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
    """Attribute values from fields named by any accepted name (the OC-TOMA push), the first
    non-empty one per attribute, and the field names that are not accepted names."""
    values: dict[str, object] = {}
    unknown: list[str] = []
    for name, value in fields.items():
        attribute = _BY_NAME.get(name.strip().lower())
        if attribute is None:
            unknown.append(name)
        elif attribute.stored and value not in (None, "") and values.get(attribute.key) in (None, ""):
            values[attribute.key] = value
    return values, unknown


def _row_values(row: list[str], columns: Mapping[int, Attribute]) -> dict[str, str]:
    """Attribute values of one row; where several columns carry one attribute (student_no and
    employ_no), the first non-empty one counts."""
    values: dict[str, str] = {}
    for index, attribute in columns.items():
        if attribute.stored and index < len(row) and row[index].strip() and not values.get(attribute.key):
            values[attribute.key] = row[index]
    return values


def import_stream(
    session: Session,
    handle: IO[bytes],
    filename: str,
    *,
    checkpoint: Callable[[Summary], None] | None = None,
    failures_out: IO[str],
) -> Summary:
    """Import one CSV file open in binary mode. Failed rows are written to ``failures_out`` (the
    original columns, neutralised, plus ``row`` and ``reason``); ``checkpoint`` is called after
    every ``BATCH`` rows (the task commits there and logs progress). Raises ``ImportRefused``
    before writing anything when the file's form is wrong."""
    check_encoding(handle)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    summary = Summary(filename)
    reader = csv.reader(text)
    settle: Callable[[], None] | None = None
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportRefused("the file is empty: it has no header line")
        columns = header_columns(header)
        types = user_type_index(session)
        writer = csv.writer(failures_out)
        writer.writerow([safe_cell(h) for h in header] + ["row", "reason"])
        email_at = next((i for i, a in columns.items() if a.key == "email"), None)
        pending: list[tuple[int, list[str], Record | InvalidRecord]] = []
        analyze_at = ANALYZE_FIRST

        def settle() -> None:
            """Upsert the pending chunk at once and count or write down each row, in file order."""
            outcomes = iter(
                upsert_many(session, [r for _l, _c, r in pending if isinstance(r, Record)], types)
            )
            for line, row, item in pending:
                result = next(outcomes) if isinstance(item, Record) else item
                if isinstance(result, Outcome):
                    setattr(summary, result.action, getattr(summary, result.action) + 1)
                    continue
                summary.failed += 1
                writer.writerow([safe_cell(cell) for cell in row] + [str(line), safe_cell(str(result))])
                if len(summary.failures) < LISTED_FAILURES:
                    shown = row[email_at] if email_at is not None and email_at < len(row) else ""
                    summary.failures.append({"row": line, "email": shown, "reason": str(result)})
            pending.clear()
            nonlocal analyze_at
            if summary.created >= analyze_at:
                refresh_statistics(session)
                analyze_at *= 2

        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            summary.rows_read += 1
            try:
                if len(row) > len(header):
                    raise InvalidRecord({"row": f"{len(row)} cells for {len(header)} columns"})
                pending.append((reader.line_num, row, validate_record(_row_values(row, columns))))
            except InvalidRecord as exc:
                pending.append((reader.line_num, row, exc))
            if len(pending) >= BATCH:
                settle()
                if checkpoint is not None:
                    checkpoint(summary)
        settle()
        if summary.rows_read == 0:
            raise ImportRefused("the file has a header line but no rows")
        return summary
    except csv.Error as exc:
        if settle is not None:
            settle()
        if checkpoint is not None:
            checkpoint(summary)
        done = " (the rows before it were imported)" if summary.rows_read else ""
        raise ImportRefused(f"the file is not valid CSV at line {reader.line_num}: {exc}{done}") from None
    finally:
        text.detach()


# --- the drop folder ---------------------------------------------------------------------------


def _is_candidate(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith(".")
        and name.endswith(".csv")
        and not name.endswith(PARTIAL_SUFFIXES)
    )


def ready_files(
    folder: Path, *, pause: float = 2.0, sleep: Callable[[float], None] = time.sleep
) -> tuple[list[Path], list[str]]:
    """The CSV files in ``folder`` that are complete, oldest first, and the names left for the next
    run (still being written: their size or modification time changed between two looks
    ``pause`` seconds apart; or named like a partial upload)."""
    folder.mkdir(parents=True, exist_ok=True)
    waiting = sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(PARTIAL_SUFFIXES)
    )
    first = {p: _look(p) for p in folder.iterdir() if _is_candidate(p)}
    if not first:
        return [], waiting
    sleep(pause)
    ready: list[Path] = []
    for path, look in first.items():
        if _look(path) == look and look is not None:
            ready.append(path)
        else:
            waiting.append(path.name)
    ready.sort(key=lambda p: (first[p] or (0, 0))[1])
    return ready, sorted(waiting)


def _look(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def move_to_bak(path: Path, now: datetime) -> Path:
    """Move a processed file into ``.bak`` beside it (made if missing); a name already there gets
    the time appended, so no earlier file is overwritten."""
    bak = path.parent / BAK_FOLDER
    bak.mkdir(exist_ok=True)
    target = bak / path.name
    if target.exists():
        target = bak / f"{path.stem}-{now:%Y%m%dT%H%M%S%f}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


@dataclass(frozen=True)
class FileResult:
    import_id: int
    filename: str
    rows_read: int
    created: int
    updated: int
    unchanged: int
    failed: int
    error: str
    kept_as: str
    outbox_message_id: int | None


def import_file(
    open_session: Callable[[], Any],
    path: Path,
    *,
    recipient: str,
    backend: email.EmailBackend,
    reply_to: str | None,
    tz: Any,
    progress: Callable[[str], None] = lambda _line: None,
) -> FileResult:
    """Import one file of the drop folder end to end: rows committed in batches (each batch in its
    own transaction from ``open_session``), the history row, the failures e-mail (when a row
    failed or the file was refused) and the move into ``.bak``. The file moves only after its
    history row is committed, so a crash before that leaves it for the next run."""
    started = utcnow()
    with open_session() as session:
        row = UserImport(filename=path.name, started_at=started)
        session.add(row)
        session.flush()
        import_id = row.id
    summary = Summary(path.name)
    error = ""
    with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", newline="", encoding="utf-8") as out:
        try:
            with path.open("rb") as handle, open_session() as session:

                def checkpoint(current: Summary) -> None:
                    # The counts so far go with the batch, so an import cut off by a killed worker
                    # shows how far it got.
                    session.execute(
                        update(UserImport)
                        .where(UserImport.id == import_id)
                        .values(
                            rows_read=current.rows_read,
                            created=current.created,
                            updated=current.updated,
                            failed=current.failed,
                        )
                    )
                    session.commit()
                    progress(
                        f"{path.name}: {current.rows_read} rows read, {current.created} created, "
                        f"{current.updated} updated, {current.failed} failed"
                    )

                summary = import_stream(session, handle, path.name, checkpoint=checkpoint, failures_out=out)
        except ImportRefused as exc:
            error = str(exc)
            log.warning("user import %s refused: %s", path.name, error)
        out.seek(0)
        failures_csv = out.read() if summary.failed else ""
    finished = utcnow()
    kept = move_to_bak(path, finished)
    failures_name = f"{path.stem}-failures.csv" if summary.failed else ""
    with open_session() as session:
        row = session.get(UserImport, import_id)
        row.finished_at = finished
        row.rows_read = summary.rows_read
        row.created = summary.created
        row.updated = summary.updated
        row.failed = summary.failed
        row.error = error
        row.failures_filename = failures_name
        row.failures_content = failures_csv
        row.kept_as = f"{BAK_FOLDER}/{kept.name}"
        if (summary.failed or error) and recipient:
            context = {
                "filename": path.name,
                "finished_at": finished.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "imported_count": summary.created + summary.updated + summary.unchanged,
                "failed_count": summary.failed,
                "failures": summary.failures,
                "error": error,
            }
            attachments = (
                [email.Attachment(failures_name, "text/csv", failures_csv.encode("utf-8"))]
                if summary.failed
                else []
            )
            message = email.compose(
                session, TEMPLATE, context, [recipient], reply_to=reply_to, attachments=attachments
            )
            row.outbox_message_id = email.send_email(session, message, backend)
        session.flush()
        return FileResult(
            import_id,
            path.name,
            summary.rows_read,
            summary.created,
            summary.updated,
            summary.unchanged,
            summary.failed,
            error,
            row.kept_as,
            row.outbox_message_id,
        )


INTERRUPTED = (
    "interrupted: the worker stopped before the file was finished (the rows counted here were "
    "saved); the file stayed in the drop folder and the next run imports it again, where rows "
    "already saved count as unchanged"
)
INTERRUPTED_AFTER_MOVE = (
    "interrupted: the worker stopped after every row was saved and the file moved into .bak, "
    "before this record was completed (the failures, if any, were not e-mailed)"
)


def close_interrupted(session: Session, folder: Path, now: datetime) -> list[tuple[str, bool]]:
    """Close the imports a killed worker left open (no ``finished_at``) as interrupted; return each
    file name and whether the file is still in ``folder`` (to be imported again by this run).

    Only the Managed User Import task imports files, under its lock, so an import still open when a
    run starts belongs to a run that died. Its file leaves the folder only after its last row is
    saved, so it is normally still there and this run imports it again; rows upsert by unique id,
    so none is imported twice."""
    closed: list[tuple[str, bool]] = []
    open_rows = select(UserImport).where(UserImport.finished_at.is_(None)).order_by(UserImport.id)
    for row in session.scalars(open_rows):
        again = (folder / row.filename).is_file()
        row.finished_at = now
        row.error = INTERRUPTED if again else INTERRUPTED_AFTER_MOVE
        closed.append((row.filename, again))
    return closed


# --- history -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportView:
    id: int
    filename: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    created: int
    updated: int
    failed: int
    error: str
    failures_filename: str
    kept_as: str


def history(session: Session, limit: int = 100) -> list[ImportView]:
    """The imports, newest first."""
    rows = session.scalars(
        select(UserImport).order_by(UserImport.started_at.desc(), UserImport.id.desc()).limit(limit)
    )
    return [
        ImportView(
            r.id, r.filename, r.started_at, r.finished_at, r.rows_read, r.created, r.updated, r.failed,
            r.error, r.failures_filename, r.kept_as,
        )
        for r in rows
    ]  # fmt: skip


def failures_file(session: Session, import_id: Any) -> tuple[str, bytes] | None:
    """The failures CSV of one import as e-mailed; ``None`` for an unknown id or an import
    without failures."""
    if isinstance(import_id, bool) or not isinstance(import_id, int) or not 0 < import_id < 2**31:
        return None
    row = session.get(UserImport, import_id)
    if row is None or not row.failures_filename:
        return None
    return row.failures_filename, row.failures_content.encode("utf-8")


def folder_path(setting: str) -> Path | None:
    """The drop folder from its setting (``~`` expanded); None when not set."""
    text = setting.strip()
    return Path(os.path.expanduser(text)) if text else None
