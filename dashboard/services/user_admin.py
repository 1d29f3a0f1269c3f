"""User administration: find accounts, change their role, type, special flag and status, see what
they own, and manage user types. Every change is audited in the same unit of work.

Two guards keep the site administrable: an admin cannot deactivate their own account or take
their own admin role away, and nobody can leave the site without an active admin. Deactivating
an account ends its sessions at once (an inactive account's session is anonymous, see
``users.session_user``, and the generation is raised too so re-activating does not revive them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.orm import Session

from dashboard.services import audit, purchases, violations
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from models import Payment, PermitProduct, Role, User, UserType, Vehicle

PAGE_SIZE = 25
MAX_SEARCH = 100
STATUSES = ("active", "inactive", "unverified")
PAYMENTS_SHOWN = 50
MAX_TYPE_NAME = 80
MAX_TYPE_CODE = 40


@dataclass(frozen=True)
class UserFilters:
    text: str | None = None  # name, e-mail or id number (student/employee number)
    user_type_id: int | None = None
    role: int | None = None
    status: str | None = None  # one of STATUSES


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    external_id: str | None
    user_type: str | None
    role: Role
    is_active: bool
    email_verified: bool
    is_special: bool
    # Set when mail to the address hard-bounced (the Mailgun webhook); cleared on the Email Outbox.
    email_bounce_reason: str | None = None


@dataclass(frozen=True)
class UserPage:
    rows: tuple[UserRow, ...]
    total: int
    page: int
    pages: int


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(filters: UserFilters) -> Select[User, str]:
    errors: dict[str, str] = {}
    text = (filters.text or "").strip()
    if len(text) > MAX_SEARCH:
        errors["text"] = f"at most {MAX_SEARCH} characters"
    if filters.role is not None and filters.role not in {int(r) for r in Role if r is not Role.GUEST}:
        errors["role"] = "not one of the offered roles"
    if filters.status is not None and filters.status not in STATUSES:
        errors["status"] = "not one of the offered statuses"
    if errors:
        raise ValidationFailed(errors)
    query = select(User, UserType.name).outerjoin(UserType, UserType.id == User.user_type_id)
    if text:
        pattern = _like(text.lower())
        full_name = func.lower(User.first_name + " " + User.last_name)
        query = query.where(
            or_(
                func.lower(User.email).like(pattern, escape="\\"),
                full_name.like(pattern, escape="\\"),
                func.lower(User.external_id).like(pattern, escape="\\"),
                cast(User.id, String) == text,
            )
        )
    if filters.user_type_id is not None:
        query = query.where(User.user_type_id == filters.user_type_id)
    if filters.role is not None:
        query = query.where(User.role == filters.role)
    if filters.status == "active":
        query = query.where(User.is_active.is_(True), User.email_verified.is_(True))
    elif filters.status == "inactive":
        query = query.where(User.is_active.is_(False))
    elif filters.status == "unverified":
        query = query.where(User.email_verified.is_(False))
    return query


def _row(user: User, type_name: str | None) -> UserRow:
    return UserRow(
        id=user.id,
        email=user.email,
        name=f"{user.first_name} {user.last_name}".strip(),
        external_id=user.external_id,
        user_type=type_name,
        role=Role(user.role),
        is_active=user.is_active,
        email_verified=user.email_verified,
        is_special=user.is_special,
        email_bounce_reason=(user.email_bounce_reason or "bounced") if user.email_bounced_at else None,
    )


def search(session: Session, filters: UserFilters, page: int = 1, page_size: int = PAGE_SIZE) -> UserPage:
    """Accounts by last name, then first name and e-mail, one page at a time."""
    query = _filtered(filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = session.execute(
        query.order_by(User.last_name, User.first_name, User.email, User.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return UserPage(tuple(_row(user, name) for user, name in rows), total, page, pages)


@dataclass(frozen=True)
class VehicleRow:
    plate: str
    province: str | None
    description: str


@dataclass(frozen=True)
class PaymentRow:
    id: int
    created_at: datetime
    amount_cents: int
    status: str
    card_last4: str | None


@dataclass(frozen=True)
class UserDetail:
    user: UserRow
    user_type_id: int | None
    auth_source: str
    created_at: datetime
    last_login_at: datetime | None
    vehicles: tuple[VehicleRow, ...]
    permits: purchases.MyPermits
    violations: violations.SearchPage
    payments: tuple[PaymentRow, ...]


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("That user does not exist.")
    return user


def detail(session: Session, user_id: int, now: datetime, tz: tzinfo) -> UserDetail:
    """The account with what it owns (read-only): vehicles, permits, violations, payments."""
    user = _user(session, user_id)
    type_name = user.user_type.name if user.user_type else None
    vehicles = session.scalars(select(Vehicle).where(Vehicle.user_id == user_id).order_by(Vehicle.plate))
    payments = session.scalars(
        select(Payment)
        .where(Payment.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(PAYMENTS_SHOWN)
    )
    return UserDetail(
        user=_row(user, type_name),
        user_type_id=user.user_type_id,
        auth_source=str(user.auth_source),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        vehicles=tuple(
            VehicleRow(v.plate, v.province, " ".join(p for p in (v.colour, v.make, v.model) if p))
            for v in vehicles
        ),
        permits=purchases.user_permits(session, user_id, now),
        violations=violations.search(session, violations.Filters(user_id=user_id), now, tz, page_size=50),
        payments=tuple(
            PaymentRow(p.id, p.created_at, p.amount_cents, str(p.status), p.card_last4) for p in payments
        ),
    )


@dataclass(frozen=True)
class UserChange:
    role: int
    user_type_id: int | None
    is_special: bool
    is_active: bool


def update_user(session: Session, *, actor_id: int, user_id: int, change: UserChange) -> list[str]:
    """Apply ``change``; returns the names of the fields that changed (audited as before/after).

    Deactivating ends the account's sessions. ``NotAllowed`` for an admin's own deactivation or
    demotion, and for anything that would leave no active admin."""
    errors: dict[str, str] = {}
    if change.role not in {int(r) for r in Role if r is not Role.GUEST}:
        errors["role"] = "not one of the offered roles"
    if change.user_type_id is not None and session.get(UserType, change.user_type_id) is None:
        errors["user_type"] = "not one of the offered user types"
    if errors:
        raise ValidationFailed(errors)
    # Lock the account row (PostgreSQL), so two admins saving at once see each other's change.
    user = session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("That user does not exist.")
    was_admin = user.role == int(Role.ADMIN) and user.is_active
    stays_admin = change.role == int(Role.ADMIN) and change.is_active
    if was_admin and not stays_admin:
        if user_id == actor_id:
            raise NotAllowed("You cannot deactivate your own account or remove your own admin role.")
        admins = session.scalars(
            select(User.id).where(User.role == int(Role.ADMIN), User.is_active.is_(True)).with_for_update()
        ).all()
        if len(admins) <= 1:
            raise NotAllowed("This is the last active admin: make another admin first.")
    before = {
        "role": Role(user.role).name.lower(),
        "user_type_id": user.user_type_id,
        "is_special": user.is_special,
        "is_active": user.is_active,
    }
    after = {
        "role": Role(change.role).name.lower(),
        "user_type_id": change.user_type_id,
        "is_special": change.is_special,
        "is_active": change.is_active,
    }
    changed = [key for key in before if before[key] != after[key]]
    if not changed:
        return []
    user.role = change.role
    user.user_type_id = change.user_type_id
    user.is_special = change.is_special
    if user.is_active and not change.is_active:
        user.session_generation += 1
    user.is_active = change.is_active
    audit.record(
        session,
        actor_id=actor_id,
        action="user.update",
        entity_type="user",
        entity_id=str(user_id),
        changes={key: [before[key], after[key]] for key in changed},
    )
    session.flush()
    return changed


# --- user types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserTypeRow:
    id: int
    code: str
    name: str
    self_registration: bool
    product_ids: tuple[int, ...]
    product_names: tuple[str, ...]
    users: int


def user_types(session: Session) -> list[UserTypeRow]:
    counts = dict(
        session.execute(
            select(User.user_type_id, func.count())
            .where(User.user_type_id.is_not(None))
            .group_by(User.user_type_id)
        ).all()
    )
    result = []
    for row in session.scalars(select(UserType).order_by(UserType.name)):
        products = sorted(
            session.scalars(select(PermitProduct).where(PermitProduct.eligible_user_types.contains(row))),
            key=lambda p: p.name,
        )
        result.append(
            UserTypeRow(
                id=row.id,
                code=row.code,
                name=row.name,
                self_registration=row.self_registration,
                product_ids=tuple(p.id for p in products),
                product_names=tuple(p.name for p in products),
                users=int(counts.get(row.id, 0)),
            )
        )
    return result


def type_choices(session: Session) -> list[tuple[int, str]]:
    return [
        (i, name) for i, name in session.execute(select(UserType.id, UserType.name).order_by(UserType.name))
    ]


def product_choices(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(select(PermitProduct.id, PermitProduct.name).order_by(PermitProduct.name))
    return [(i, name) for i, name in rows]


@dataclass(frozen=True)
class UserTypeInput:
    code: str
    name: str
    self_registration: bool
    product_ids: tuple[int, ...]


def save_user_type(session: Session, *, actor_id: int, type_id: int | None, data: UserTypeInput) -> int:
    """Create (``type_id`` None) or update a user type and the permit products it may buy."""
    code, name = data.code.strip().lower(), data.name.strip()
    errors: dict[str, str] = {}
    if not code:
        errors["code"] = "is required"
    elif len(code) > MAX_TYPE_CODE or not all(c.isalnum() or c in "-_" for c in code):
        errors["code"] = f"letters, digits, - and _ only, at most {MAX_TYPE_CODE} characters"
    if not name:
        errors["name"] = "is required"
    elif len(name) > MAX_TYPE_NAME:
        errors["name"] = f"at most {MAX_TYPE_NAME} characters"
    products = list(session.scalars(select(PermitProduct).where(PermitProduct.id.in_(data.product_ids))))
    if len(products) != len(set(data.product_ids)):
        errors["products"] = "not one of the offered permit products"
    clash = session.scalar(select(UserType.id).where(UserType.code == code))
    if code and clash is not None and clash != type_id:
        errors["code"] = "another user type has this code"
    if errors:
        raise ValidationFailed(errors)
    if type_id is None:
        row = UserType(code=code, name=name, self_registration=data.self_registration)
        session.add(row)
        session.flush()
        before: dict[str, Any] = {}
    else:
        found = session.get(UserType, type_id)
        if found is None:
            raise NotFound("That user type does not exist.")
        row = found
        before = {
            "code": row.code,
            "name": row.name,
            "self_registration": row.self_registration,
            "products": sorted(
                p.id
                for p in session.scalars(
                    select(PermitProduct).where(PermitProduct.eligible_user_types.contains(row))
                )
            ),
        }
        row.code, row.name, row.self_registration = code, name, data.self_registration
    after = {
        "code": code,
        "name": name,
        "self_registration": data.self_registration,
        "products": sorted(p.id for p in products),
    }
    for product in session.scalars(select(PermitProduct)):
        eligible = product in products
        listed = row in product.eligible_user_types
        if eligible and not listed:
            product.eligible_user_types.append(row)
        elif listed and not eligible:
            product.eligible_user_types.remove(row)
    changed = {key: [before.get(key), after[key]] for key in after if before.get(key) != after[key]}
    if changed:
        audit.record(
            session,
            actor_id=actor_id,
            action="user_type.create" if type_id is None else "user_type.update",
            entity_type="user_type",
            entity_id=str(row.id),
            changes=changed,
        )
    session.flush()
    return row.id
