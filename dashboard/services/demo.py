"""The demo campus: enough realistic data that every screen has something true to show.

"Grand River University" is fictional; its lots sit around 43.47 N, -80.54 W (Waterloo, Ontario),
a few hundred metres apart, so the real-time map looks like a campus.

``seed_demo`` is idempotent: every row is matched on its natural key (a name, an e-mail, a code,
a ticket number) and only created when missing; existing rows are never changed, so an admin's
edits survive a re-run. It also writes five weeks of history (sensor readings with the campus's
weekday and hour pattern, term permits bought before and during the term, visitors' hourly
permits) so that Manage Capacity has evidence at once; a later run only adds the history since
the last one, in bulk inserts, so ``make run`` stays quick. Demo passwords are random and written
once, with mode 600, to ``instance/demo-credentials.json``: a demo must not ship with a known password.

Why this module is long: it is mostly the demo campus's data (lots, groups, people, tickets,
history), each seeded idempotently by its natural key.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import string
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.services import users
from dashboard.services.campus_day import target_fraction
from dashboard.services.occupancy import PHYSICAL
from models import (
    Base,
    Boot,
    BootAssignment,
    BootStatus,
    DeviceKind,
    Lot,
    LotGroup,
    LotZone,
    LotZoneSchedule,
    OccupancySnapshot,
    OccupancySource,
    OffenceType,
    Permit,
    PermitKind,
    PermitProduct,
    PermitSource,
    PermitVehicle,
    Pricing,
    Role,
    SensingDevice,
    User,
    UserType,
    Violation,
    ViolationItem,
    utcnow,
)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for the history's bulk inserts (no ORM bookkeeping per row)."""
    return cast(Table, model.__table__)


CREDENTIALS_FILE = "demo-credentials.json"
# The campus is in Ontario whatever PARKOPS_TIMEZONE says: its terms start at local midnight.
CAMPUS_TZ = ZoneInfo("America/Toronto")

USER_TYPES = [("student", "Student"), ("staff", "Staff"), ("faculty", "Faculty"), ("public", "Public")]
ALL_TYPES = ("student", "staff", "faculty", "public")
# Members of the public create their own accounts (``/register``); the others come from the campus.
SELF_REGISTERING = ("public",)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    color: str
    lat: float
    lon: float
    show_on_map: bool = True
    mistall_lot_id: str | None = None
    parking_logix_name: str | None = None


@dataclass(frozen=True)
class LotSpec:
    """A lot; ``dlat``/``dlon`` offset it from its group's pin (about 100 m per 0.001)."""

    group: str
    name: str
    code: str
    capacity: int
    permits_allowed: int | None
    sells: str
    term_price_cents: int
    eligible: tuple[str, ...]
    dlat: float = 0.0
    dlon: float = 0.0


GROUPS = [
    GroupSpec("North Campus Garage", "#1f77b4", 43.4762, -80.5478, parking_logix_name="GRU North Garage"),
    GroupSpec("Ring Road East", "#ff7f0e", 43.4714, -80.5404, mistall_lot_id="MST-1042"),
    GroupSpec("Columbia Street Lots", "#2ca02c", 43.4786, -80.5532),
    GroupSpec("University Avenue Lots", "#d62728", 43.4693, -80.5441),
    GroupSpec("West Campus Surface", "#9467bd", 43.4731, -80.5566),
    GroupSpec("Health Sciences Deck", "#8c564b", 43.4676, -80.5372),
    GroupSpec("Village Residence Lots", "#e377c2", 43.4702, -80.5503),
    GroupSpec("Central Services Yard", "#7f7f7f", 43.4748, -80.5395, show_on_map=False),
]

# Who may buy a lot's standard permits.
UNI = ("student", "staff", "faculty")
EMP = ("staff", "faculty")
FAC = ("faculty",)
STU = ("student",)

# Tables read best aligned. Sells: S = standard term permits, T = temporary (hourly, daily).
# fmt: off
LOT_TABLE: dict[str, list[tuple[Any, ...]]] = {
    "North Campus Garage": [
        # name                          code  cap  allowed sells term¢  eligible dlat     dlon
        ("North Garage Level 1",         "N1", 250, 280,  "S",  26500, EMP),
        ("North Garage Level 2",         "N2", 250, None, "S",  24500, UNI,     0.0002),
        ("North Garage Visitor",         "NV", 60,  None, "T",  0,     (),      0,       0.0005),
    ],
    "Ring Road East": [
        ("Lot E1 Engineering",           "E1", 320, 360,  "S",  16500, UNI),
        ("Lot E2 Staff",                 "E2", 140, None, "S",  18500, EMP,     0.0008),
        ("Lot E3 Visitor",               "E3", 45,  None, "T",  0,     (),      0,       0.0009),
    ],
    "Columbia Street Lots": [
        ("Lot C Faculty",                "C",  180, 195,  "S",  19500, FAC),
        ("Lot CX Overflow",              "CX", 600, 700,  "ST", 9500,  UNI,     0.0012,  -0.0010),
        ("Columbia Pay Lot",             "CP", 90,  None, "T",  0,     (),      0,       0.0011),
    ],
    "University Avenue Lots": [
        ("Lot U1 Arts",                  "U1", 210, 230,  "S",  15500, UNI),
        ("Lot U2 Library",               "U2", 160, None, "ST", 16500, UNI,     0,       -0.0009),
        ("Lot U3 Accessible",            "U3", 20,  None, "S",  12000, UNI,     0.0004,  0.0004),
    ],
    "West Campus Surface": [
        ("Lot W North",                  "WN", 400, 450,  "S",  11500, UNI),
        ("Lot W South",                  "WS", 350, None, "S",  11500, UNI,     -0.0011),
        ("Lot W Visitor",                "WV", 40,  None, "T",  0,     (),      0,       0.0008),
    ],
    "Health Sciences Deck": [
        ("Health Deck Staff",            "H1", 300, 330,  "S",  22500, EMP),
        ("Health Deck Patients",         "H2", 120, None, "T",  0,     (),      0.0003),
        ("Health Deck Faculty",          "H3", 80,  None, "S",  23500, FAC,     0,       0.0004),
    ],
    "Village Residence Lots": [
        ("Village 1 Residents",          "V1", 150, None, "S",  14500, STU),
        ("Village 2 Residents",          "V2", 130, 150,  "S",  14500, STU,     -0.0007),
        ("Village Guest",                "VG", 25,  None, "T",  0,     (),      0,       0.0006),
    ],
    "Central Services Yard": [
        ("Central Services Fleet",       "S1", 50,  None, "S",  9000,  EMP),
        ("Central Services Contractors", "S2", 30,  None, "T",  0,     (),      0.0003),
    ],
}
# fmt: on
LOTS = [LotSpec(group, *row) for group, rows in LOT_TABLE.items() for row in rows]

HOURLY_CENTS = 300
DAILY_CENTS = 1500

ZONES = ["1001", "1002", "Visitor"]
# (lot code, zone, days Mon..Sun, start, end): HotSpot/ParkMobile zones on the pay-as-you-go lots.
ZONE_SCHEDULES = [
    ("E3", "1001", "1111111", time(0, 0), time(23, 59)),
    ("CP", "1001", "1111111", time(0, 0), time(23, 59)),
    ("WV", "1002", "1111111", time(0, 0), time(23, 59)),
    ("H2", "1002", "1111111", time(0, 0), time(23, 59)),
    ("U2", "1002", "1111100", time(7, 0), time(18, 0)),
    ("NV", "Visitor", "1111111", time(0, 0), time(23, 59)),
    ("VG", "Visitor", "1111111", time(0, 0), time(23, 59)),
]

# (role, e-mail, first name, last name, user type)
USERS = [
    (Role.ADMIN, "admin@parkops.example", "Dana", "Whitfield", "staff"),
    (Role.MANAGER, "manager@parkops.example", "Priya", "Raman", "staff"),
    (Role.OFFICER, "officer@parkops.example", "Marcus", "Chen", "staff"),
    (Role.OFFICER, "officer2@parkops.example", "Sofia", "Tremblay", "staff"),
    (Role.USER, "student@parkops.example", "Liam", "Gagnon", "student"),
    (Role.USER, "staff@parkops.example", "Olivia", "Singh", "staff"),
    (Role.USER, "faculty@parkops.example", "Noah", "Bergeron", "faculty"),
    (Role.USER, "visitor@parkops.example", "Emma", "MacDonald", "public"),
]

# (code, name, fine in cents, apply boot, apply discount, discount %)
OFFENCE_TYPES = [
    ("NVP", "No valid permit", 5000, False, True, 20),
    ("FL", "Fire lane", 10000, False, False, 0),
    ("ACC", "Accessible space without permit", 30000, False, False, 0),
    ("OVT", "Overtime parking", 3000, False, True, 50),
    ("NSZ", "No stopping zone", 7500, False, False, 0),
    ("BOOT", "Boot applied", 7500, True, False, 0),
]

BOOTS = ["Red Boot 01", "Red Boot 02", "Red Boot 03", "Yellow Boot 01"]

SPACE_SENSOR_LOTS = {"U3": 6, "E3": 8}  # lot code -> number of in-ground sensors


@dataclass
class DemoResult:
    """How many rows of each kind this run created (all zero on a re-run)."""

    user_types: int = 0
    lot_groups: int = 0
    lots: int = 0
    products: int = 0
    zones: int = 0
    zone_schedules: int = 0
    users: int = 0
    offence_types: int = 0
    boots: int = 0
    permits: int = 0
    violations: int = 0
    devices: int = 0
    readings: int = 0
    credentials_path: Path | None = None

    @property
    def created(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "credentials_path")

    def summary(self) -> str:
        if not self.created:
            return "Demo campus already in place: nothing created."
        parts = [
            f"{getattr(self, f.name)} {f.name.replace('_', ' ')}"
            for f in fields(self)
            if f.name != "credentials_path" and getattr(self, f.name)
        ]
        text = "Demo campus: created " + ", ".join(parts) + "."
        if self.credentials_path is not None:
            text += f"\nDemo passwords written to {self.credentials_path} (readable by you only)."
        return text


T = TypeVar("T")


def _get_or_create(session: Session, model: type[T], key: dict[str, Any], **values: Any) -> tuple[T, bool]:
    """The row matching ``key``, or a new one with ``key`` and ``values`` (flushed for its id)."""
    row = session.scalar(select(model).filter_by(**key))
    if row is not None:
        return row, False
    row = model(**key, **values)
    session.add(row)
    session.flush()
    return row, True


def normalize_plate(plate: str) -> str:
    return re.sub(r"[\s-]", "", plate).upper()


def academic_terms(today: date) -> list[tuple[str, date, date]]:
    """Fall and Winter terms of the academic year containing ``today`` (it starts in September)."""
    year = today.year if today.month >= 9 else today.year - 1
    return [
        (f"Fall {year} Term", date(year, 9, 1), date(year, 12, 31)),
        (f"Winter {year + 1} Term", date(year + 1, 1, 1), date(year + 1, 4, 30)),
    ]


def _local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), CAMPUS_TZ).astimezone(UTC)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def seed_demo(session: Session, secret_box: SecretBox, instance_path: Path) -> DemoResult:
    """Create whatever part of the demo campus is missing; see the module docstring."""
    result = DemoResult()
    now = utcnow()

    types = {}
    for code, name in USER_TYPES:
        types[code], created = _get_or_create(
            session, UserType, {"code": code}, name=name, self_registration=code in SELF_REGISTERING
        )
        result.user_types += created

    groups = {}
    for spec in GROUPS:
        api_key = secret_box.encrypt(secrets.token_hex(16)) if spec.parking_logix_name else None
        groups[spec.name], created = _get_or_create(
            session,
            LotGroup,
            {"name": spec.name},
            map_color=spec.color,
            latitude=spec.lat,
            longitude=spec.lon,
            show_on_map=spec.show_on_map,
            mistall_lot_id=spec.mistall_lot_id,
            parking_logix_name=spec.parking_logix_name,
            parking_logix_api_key=api_key,
        )
        result.lot_groups += created

    lots = {}
    terms = academic_terms(now.astimezone(CAMPUS_TZ).date())
    for lot_spec in LOTS:
        group = groups[lot_spec.group]
        assert group.latitude is not None and group.longitude is not None  # every demo group has a pin
        lots[lot_spec.code], created = _get_or_create(
            session,
            Lot,
            {"name": lot_spec.name},
            code=lot_spec.code,
            lot_group=group,
            capacity=lot_spec.capacity,
            permits_allowed=lot_spec.permits_allowed,
            sells_standard="S" in lot_spec.sells,
            sells_temporary="T" in lot_spec.sells,
            latitude=round(group.latitude + lot_spec.dlat, 6),
            longitude=round(group.longitude + lot_spec.dlon, 6),
            address=f"{lot_spec.name}, Grand River University, Waterloo ON",
        )
        result.lots += created
        result.products += _seed_products(session, lots[lot_spec.code], lot_spec, terms, types)

    zones = {}
    for name in ZONES:
        zones[name], created = _get_or_create(session, LotZone, {"name": name})
        result.zones += created
    for code, zone, days, start, end in ZONE_SCHEDULES:
        _, created = _get_or_create(
            session,
            LotZoneSchedule,
            {"lot_id": lots[code].id, "zone_id": zones[zone].id},
            days=days,
            start_time=start,
            end_time=end,
        )
        result.zone_schedules += created

    people, new_credentials = _seed_users(session)
    result.users = len(new_credentials)
    if new_credentials:
        result.credentials_path = _write_credentials(instance_path, new_credentials)

    offences = {}
    for code, name, fine, boot, discount, percent in OFFENCE_TYPES:
        offences[code], created = _get_or_create(
            session,
            OffenceType,
            {"code": code},
            name=name,
            fine_cents=fine,
            apply_boot=boot,
            apply_discount=discount,
            discount_percent=percent,
        )
        result.offence_types += created

    boots = {}
    for name in BOOTS:
        code = f"{secrets.randbelow(10**6):06d}"
        boots[name], created = _get_or_create(
            session, Boot, {"name": name}, release_code=secret_box.encrypt(code)
        )
        result.boots += created

    result.permits = _seed_permits(session, now, lots, zones, people)
    result.violations = _seed_violations(session, now, lots, offences, boots, people)
    result.devices = _seed_devices(session, lots)
    result.permits += _seed_term_history(session, now, lots)
    result.permits += _seed_visitor_history(session, now, lots)
    result.readings = _seed_readings(session, now, groups)
    return result


def _seed_products(
    session: Session,
    lot: Lot,
    spec: LotSpec,
    terms: list[tuple[str, date, date]],
    types: dict[str, UserType],
) -> int:
    created_count = 0
    if "S" in spec.sells:
        for name, start, end in terms:
            product, created = _get_or_create(
                session,
                PermitProduct,
                {"lot_id": lot.id, "name": name},
                kind=PermitKind.STANDARD,
                pricing=Pricing.TERM,
                price_cents=spec.term_price_cents,
                term_start=start,
                term_end=end,
            )
            if created:
                product.eligible_user_types = [types[code] for code in spec.eligible]
            created_count += created
    if "T" in spec.sells:
        temporaries = [
            ("Hourly", Pricing.HOURLY, HOURLY_CENTS, 4 * 60),
            ("Daily", Pricing.DAILY, DAILY_CENTS, 24 * 60),
        ]
        for name, pricing, cents, minutes in temporaries:
            product, created = _get_or_create(
                session,
                PermitProduct,
                {"lot_id": lot.id, "name": name},
                kind=PermitKind.TEMPORARY,
                pricing=pricing,
                price_cents=cents,
                max_duration_minutes=minutes,
            )
            if created:
                product.eligible_user_types = [types[code] for code in ALL_TYPES]
            created_count += created
    return created_count


def _seed_users(session: Session) -> tuple[dict[str, User], list[dict[str, str]]]:
    """Demo accounts by e-mail, and the credentials of the ones created now."""
    people: dict[str, User] = {}
    new_credentials = []
    for role, email, first, last, user_type in USERS:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            password = secrets.token_urlsafe(12)
            info = users.create_user(
                session,
                email=email,
                password=password,
                role=role,
                first_name=first,
                last_name=last,
                user_type=user_type,
            )
            user = session.get_one(User, info.id)
            new_credentials.append({"role": role.name.lower(), "email": email, "password": password})
        people[email] = user
    return people, new_credentials


def _write_credentials(instance_path: Path, new_rows: list[dict[str, str]]) -> Path:
    """Add the new accounts to the credentials file (keeping the others), readable by us only.

    Written to a temporary file created with mode 600 and renamed, so the passwords are never
    world-readable, not even for a moment.
    """
    path = instance_path / CREDENTIALS_FILE
    new_emails = {row["email"] for row in new_rows}
    rows = [row for row in read_credentials(instance_path) if row["email"] not in new_emails] + new_rows
    instance_path.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)
    os.chmod(tmp, 0o600)  # in case the file already existed with looser permissions
    os.replace(tmp, path)
    return path


def read_credentials(instance_path: Path) -> list[dict[str, str]]:
    """The demo accounts as [{role, email, password}], or [] when the demo was never seeded."""
    path = instance_path / CREDENTIALS_FILE
    if not path.exists():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [{"role": row["role"], "email": row["email"], "password": row["password"]} for row in rows]


def _product(session: Session, lot: Lot, name: str) -> PermitProduct:
    product = session.scalar(
        select(PermitProduct).where(PermitProduct.lot_id == lot.id, PermitProduct.name == name)
    )
    assert product is not None, f"demo product {name!r} missing on {lot.code}"
    return product


def _seed_permits(
    session: Session,
    now: datetime,
    lots: dict[str, Lot],
    zones: dict[str, LotZone],
    people: dict[str, User],
) -> int:
    """Standard term permits for the students and employees, temporary ones for visitors
    (one bought in the portal, one through HotSpot for a zone)."""
    term_name, term_start, term_end = academic_terms(now.astimezone(CAMPUS_TZ).date())[0]
    today = now.astimezone(CAMPUS_TZ).date()
    standard = [
        ("DEMO-P-0001", "student@parkops.example", "E1", "CAAB 123"),
        ("DEMO-P-0002", "staff@parkops.example", "H1", "BXRT 508"),
        ("DEMO-P-0003", "faculty@parkops.example", "C", "CKLM 771"),
        ("DEMO-P-0004", "student@parkops.example", "V1", "AZPQ 264"),
    ]
    created_count = 0
    for number, email, code, plate in standard:
        product = _product(session, lots[code], term_name)
        user = people[email]
        permit, created = _get_or_create(
            session,
            Permit,
            {"number": number},
            kind=PermitKind.STANDARD,
            source=PermitSource.PORTAL,
            user_id=user.id,
            email=user.email,
            lot_id=lots[code].id,
            product_id=product.id,
            valid_from=_local_day_start(term_start),
            valid_to=_local_day_start(term_end + timedelta(days=1)),
            amount_cents=product.price_cents,
        )
        if created:
            permit.vehicles.append(PermitVehicle(plate=plate, plate_normalized=normalize_plate(plate)))
        created_count += created

    visitor = people["visitor@parkops.example"]
    daily = _product(session, lots["CP"], "Daily")
    temporary = [
        (
            "DEMO-P-0101",
            {"source": PermitSource.PORTAL, "lot_id": lots["CP"].id, "product_id": daily.id},
            _local_day_start(today),
            _local_day_start(today + timedelta(days=1)),
            daily.price_cents,
            "DFGH 902",
        ),
        (
            "DEMO-P-0102",
            {"source": PermitSource.HOTSPOT, "external_id": "hs-demo-0102", "zone_id": zones["1001"].id},
            now - timedelta(hours=1),
            now + timedelta(hours=2),
            3 * HOURLY_CENTS,
            "CRNW 415",
        ),
    ]
    for number, where, valid_from, valid_to, cents, plate in temporary:
        permit, created = _get_or_create(
            session,
            Permit,
            {"number": number},
            kind=PermitKind.TEMPORARY,
            user_id=visitor.id,
            email=visitor.email,
            valid_from=valid_from,
            valid_to=valid_to,
            amount_cents=cents,
            **where,
        )
        if created:
            permit.vehicles.append(PermitVehicle(plate=plate, plate_normalized=normalize_plate(plate)))
        created_count += created
    return created_count


def _seed_violations(
    session: Session,
    now: datetime,
    lots: dict[str, Lot],
    offences: dict[str, OffenceType],
    boots: dict[str, Boot],
    people: dict[str, User],
) -> int:
    """A few unpaid tickets, one of them booted (its boot is then in use)."""
    officer = people["officer@parkops.example"]
    tickets = [
        ("DEMO-V-0001", "E1", "BKXE 412", None, ["NVP"], None, 2),
        ("DEMO-V-0002", "CX", "CDLR 908", None, ["FL"], None, 1),
        ("DEMO-V-0003", "U2", "AZPQ 264", "student@parkops.example", ["OVT"], None, 5),
        ("DEMO-V-0004", "CX", "AKPT 733", "visitor@parkops.example", ["NVP", "BOOT"], "Red Boot 01", 0),
    ]
    created_count = 0
    for number, code, plate, email, offence_codes, boot_name, days_ago in tickets:
        issued = now - timedelta(days=days_ago, hours=3)
        violation, created = _get_or_create(
            session,
            Violation,
            {"ticket_number": number},
            officer_id=officer.id,
            user_id=people[email].id if email else None,
            lot_id=lots[code].id,
            plate=plate,
            plate_normalized=normalize_plate(plate),
            issued_at=issued,
            due_at=issued + timedelta(days=30),
        )
        if not created:
            continue
        created_count += 1
        for offence_code in offence_codes:
            offence = offences[offence_code]
            violation.items.append(
                ViolationItem(
                    offence_type_id=offence.id, amount_cents=offence.fine_cents, description=offence.name
                )
            )
        if boot_name:
            boot = boots[boot_name]
            session.add(
                BootAssignment(boot=boot, violation=violation, status=BootStatus.IN_USE, applied_at=issued)
            )
            boot.status = BootStatus.IN_USE
        session.flush()
    return created_count


def _seed_devices(session: Session, lots: dict[str, Lot]) -> int:
    """An entrance counter on the first lot of every group, and in-ground sensors on two lots."""
    created_count = 0
    for group_name, rows in LOT_TABLE.items():
        code = rows[0][1]
        _, created = _get_or_create(
            session,
            SensingDevice,
            {"device_id": f"cnt-{slug(group_name)}-entrance"},
            kind=DeviceKind.COUNTER,
            lot_id=lots[code].id,
            name=f"{group_name} entrance counter",
        )
        created_count += created
    for code, count in SPACE_SENSOR_LOTS.items():
        for number in range(1, count + 1):
            _, created = _get_or_create(
                session,
                SensingDevice,
                {"device_id": f"spc-{code.lower()}-{number:02d}"},
                kind=DeviceKind.SPACE_SENSOR,
                lot_id=lots[code].id,
                name=f"{lots[code].name} space {number}",
            )
            created_count += created
    return created_count


# --- weeks of history, so Manage Capacity has evidence on the first run ---------------------------

HISTORY_DAYS = 35  # five weeks: the advice's default 28-day window is full on the first run
READING_EVERY = timedelta(minutes=30)
# How full each group gets at the busiest time of a weekday, relative to the campus day's curve
# (``campus_day.target_fraction`` peaks at 90%): some groups run full, some have room.
GROUP_PEAK = {
    "North Campus Garage": 0.9,
    "Ring Road East": 0.88,
    "Columbia Street Lots": 0.86,
    "University Avenue Lots": 0.82,
    "West Campus Surface": 0.72,
    "Health Sciences Deck": 0.95,
    "Village Residence Lots": 0.7,
    "Central Services Yard": 0.8,
}
TERM_FILL = (0.86, 0.96)  # share of a lot's allowance its term permits fill, per lot
LATE_BUYERS = 0.15  # share of term permits bought during the term rather than before it
VISITORS_AT_PEAK = 0.35  # share of a visitor lot's spaces held by temporary permits at the busiest time
VISIT_HOURS = (1, 2, 3, 3, 4, 4)  # hours an hourly permit is bought for


def _plate(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_uppercase, k=4)) + f" {rng.randrange(1000):03d}"


def _bought_at(number: str, bought: date, late: bool) -> datetime:
    """When a term permit was sold, so that Reports spread the term's sales as they happened: a
    late buyer during the day it became valid, the others over the three weeks before the term."""
    rng = random.Random(number)  # its own dice: the permits' plates stay what they were
    day = bought if late else bought - timedelta(days=rng.randrange(1, 22))
    return _local_day_start(day) + timedelta(hours=rng.randrange(8, 20), minutes=rng.randrange(60))


def _insert_permits(session: Session, rows: list[dict[str, Any]], plates: list[str]) -> int:
    """Many permits and their plates in a few statements (a demo start must stay quick): the ids
    are read back by number, since RETURNING in parameter order makes SQLite insert one by one."""
    if not rows:
        return 0
    session.execute(insert(table_of(Permit)), rows)  # Core: no ORM bookkeeping per row
    plate_of = {row["number"]: plate for row, plate in zip(rows, plates, strict=True)}
    bare = session.execute(
        select(Permit.id, Permit.number).where(
            Permit.number.like("DEMO-%"),
            ~select(PermitVehicle.id).where(PermitVehicle.permit_id == Permit.id).exists(),
        )
    )
    session.execute(
        insert(table_of(PermitVehicle)),
        [
            {
                "permit_id": permit_id,
                "plate": plate_of[number],
                "plate_normalized": normalize_plate(plate_of[number]),
            }
            for permit_id, number in bare
            if number in plate_of
        ],
    )
    return len(rows)


def _physical_source(group: LotGroup) -> OccupancySource:
    """The source the maps would show for the group (``occupancy.choose_physical``'s order)."""
    if group.mistall_lot_id:
        return OccupancySource.MISTALL
    if group.parking_logix_name:
        return OccupancySource.PARKING_LOGIX
    return OccupancySource.DEVICES


def _seed_readings(session: Session, now: datetime, groups: dict[str, LotGroup]) -> int:
    """A reading every half hour for the last ``HISTORY_DAYS`` days (or since the group's last
    reading): the campus day of the simulator, scaled per group, with a little noise.

    A vendor counts the whole group; the live devices count only the lots they are in, and the
    ingester writes their readings so (and resumes a lone counter from the last one after Redis
    lost its state): the history does the same, or a restart would start a counter at the group's
    total."""
    created = 0
    for name, group in groups.items():
        source = _physical_source(group)
        counted = select(func.sum(Lot.capacity)).where(Lot.lot_group_id == group.id)
        if source is OccupancySource.DEVICES:
            counted = counted.where(Lot.id.in_(select(SensingDevice.lot_id).where(SensingDevice.is_active)))
        spaces = session.scalar(counted) or 0
        if not spaces:
            continue
        last = session.scalar(
            select(func.max(OccupancySnapshot.recorded_at)).where(
                OccupancySnapshot.lot_group_id == group.id, OccupancySnapshot.source.in_(PHYSICAL)
            )
        )
        start = now - timedelta(days=HISTORY_DAYS)
        if last is not None:
            start = max(start, (last if last.tzinfo else last.replace(tzinfo=UTC)) + READING_EVERY)
        rng = random.Random(f"{name}-{start:%Y%m%d%H%M}")
        rows, at = [], start
        while at <= now:
            share = target_fraction(at.astimezone(CAMPUS_TZ)) * GROUP_PEAK.get(name, 0.9)
            share *= 1 + rng.uniform(-0.05, 0.05)
            occupied = max(0, min(spaces, round(share * spaces)))
            rows.append(
                {
                    "lot_group_id": group.id,
                    "source": source,
                    "occupied": occupied,
                    "capacity": spaces,
                    "recorded_at": at,
                }
            )
            at += READING_EVERY
        if rows:
            session.execute(insert(table_of(OccupancySnapshot)), rows)
            created += len(rows)
    return created


def _seed_term_history(session: Session, now: datetime, lots: dict[str, Lot]) -> int:
    """Term permits for every standard lot, filling it to a share of its allowance: most bought
    before the term starts, some during it (so the permits valid grow over the weeks)."""
    today = now.astimezone(CAMPUS_TZ).date()
    window_start = (now - timedelta(days=HISTORY_DAYS)).astimezone(CAMPUS_TZ).date()
    existing = set(session.scalars(select(Permit.number).where(Permit.number.like("DEMO-S-%"))))
    rows, plates = [], []
    for spec in LOTS:
        if "S" not in spec.sells:
            continue
        lot = lots[spec.code]
        rng = random.Random(f"demo-term-{spec.code}")
        count = round((spec.permits_allowed or spec.capacity) * rng.uniform(*TERM_FILL))
        for term_name, term_start, term_end in academic_terms(today):
            if term_start > today or term_end < window_start:
                continue
            product = _product(session, lot, term_name)
            selling_days = max((min(today, term_end) - term_start).days, 1)
            for n in range(count):
                number = f"DEMO-S-{spec.code}-{term_start:%Y%m}-{n:04d}"
                late = rng.random() < LATE_BUYERS
                bought = term_start + timedelta(days=rng.randrange(selling_days) if late else 0)
                plate = _plate(rng)
                if number in existing:
                    continue
                rows.append(
                    {
                        "number": number,
                        "kind": PermitKind.STANDARD,
                        "source": PermitSource.PORTAL,
                        "lot_id": lot.id,
                        "product_id": product.id,
                        "valid_from": _local_day_start(bought),
                        "valid_to": _local_day_start(term_end + timedelta(days=1)),
                        "amount_cents": product.price_cents,
                        "created_at": _bought_at(number, bought, late),
                    }
                )
                plates.append(plate)
    return _insert_permits(session, rows, plates)


def _seed_visitor_history(session: Session, now: datetime, lots: dict[str, Lot]) -> int:
    """Hourly and daily permits on the visitor lots, arriving with the campus day, for the last
    ``HISTORY_DAYS`` days (or since the lot's last seeded one). Lots that also sell term permits
    get none: a term sale counts every permit of its term against the allowance."""
    rows, plates = [], []
    for spec in LOTS:
        if spec.sells != "T":
            continue
        lot = lots[spec.code]
        hourly, daily = _product(session, lot, "Hourly"), _product(session, lot, "Daily")
        last = session.scalar(
            select(func.max(Permit.valid_from)).where(Permit.number.like(f"DEMO-H-{spec.code}-%"))
        )
        start = (now - timedelta(days=HISTORY_DAYS)).replace(minute=0, second=0, microsecond=0)
        if last is not None:  # an hour without arrivals may follow: its numbers say if it is done
            start = max(
                start, (last if last.tzinfo else last.replace(tzinfo=UTC)).replace(minute=0, second=0)
            )
        existing = set(
            session.scalars(
                select(Permit.number).where(
                    Permit.number.like(f"DEMO-H-{spec.code}-%"), Permit.valid_from >= start
                )
            )
        )
        hour = start
        while hour + timedelta(hours=1) <= now:  # whole hours only, each with its own dice
            rng = random.Random(f"demo-visitors-{spec.code}-{hour:%Y%m%d%H}")
            # Arrivals × average stay (about 3.3 h) ≈ the visitors present at this time of day.
            expected = (
                lot.capacity * VISITORS_AT_PEAK / 0.9 * target_fraction(hour.astimezone(CAMPUS_TZ)) / 3.3
            )
            arrivals = int(expected) + (rng.random() < expected % 1)
            for n in range(arrivals):
                valid_from = hour + timedelta(minutes=rng.randrange(60))
                is_daily = rng.random() < 0.1
                product = daily if is_daily else hourly
                hours = 8 if is_daily else rng.choice(VISIT_HOURS)
                plate = _plate(rng)
                number = f"DEMO-H-{spec.code}-{valid_from:%Y%m%d%H%M}-{n}"
                if number in existing:
                    continue
                rows.append(
                    {
                        "number": number,
                        "kind": PermitKind.TEMPORARY,
                        "source": PermitSource.PORTAL,
                        "lot_id": lot.id,
                        "product_id": product.id,
                        "valid_from": valid_from,
                        "valid_to": valid_from + timedelta(hours=hours),
                        "amount_cents": product.price_cents if is_daily else hours * product.price_cents,
                        "created_at": valid_from,  # bought on arrival: Reports count it that day
                    }
                )
                plates.append(plate)
            hour += timedelta(hours=1)
    return _insert_permits(session, rows, plates)
