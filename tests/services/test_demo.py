"""The demo campus: complete, idempotent, and without known passwords or plaintext secrets; with
weeks of history (readings with a weekday and hour pattern, permits valid over that time) on which
Manage Capacity advises, never below sold."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import models
from dashboard.core import Core
from dashboard.services import capacity, demo, users
from models import (
    Boot,
    BootStatus,
    DeviceKind,
    Lot,
    LotGroup,
    LotZoneSchedule,
    OccupancySnapshot,
    OffenceType,
    Permit,
    PermitKind,
    Role,
    SensingDevice,
    User,
    Violation,
)


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table))
        for table in models.Base.metadata.sorted_tables
    }


def _seed(core: Core, instance: Path) -> demo.DemoResult:
    with core.db.session() as session:
        return demo.seed_demo(session, core.secrets, instance)


def test_second_run_creates_and_changes_nothing(core: Core, tmp_path: Path) -> None:
    first = _seed(core, tmp_path)
    assert first.created > 0 and "created" in first.summary()
    credentials = (tmp_path / demo.CREDENTIALS_FILE).read_text()
    with core.db.session() as session:
        before = _row_counts(session)
        groups_before = session.execute(select(LotGroup.name, LotGroup.updated_at)).all()

    second = _seed(core, tmp_path)

    assert second.created == 0
    assert second.credentials_path is None
    assert "nothing created" in second.summary()
    assert (tmp_path / demo.CREDENTIALS_FILE).read_text() == credentials
    with core.db.session() as session:
        assert _row_counts(session) == before
        assert session.execute(select(LotGroup.name, LotGroup.updated_at)).all() == groups_before


def test_campus_is_complete(core: Core, session: Session, tmp_path: Path) -> None:
    _seed(core, tmp_path)

    groups = session.scalars(select(LotGroup)).all()
    assert len(groups) >= 6
    assert len({g.map_color for g in groups}) == len(groups)
    assert all(g.map_color.startswith("#") and len(g.map_color) == 7 for g in groups)
    assert all(43.4 < g.latitude < 43.5 and -80.6 < g.longitude < -80.5 for g in groups)
    assert sum(g.show_on_map for g in groups) > len(groups) / 2
    assert any(g.parking_logix_name and g.parking_logix_api_key for g in groups)
    assert any(g.mistall_lot_id for g in groups)

    lots = session.scalars(select(Lot)).all()
    assert len(lots) >= 20
    assert {lot.lot_group_id for lot in lots} == {g.id for g in groups}
    assert all(20 <= lot.capacity <= 600 for lot in lots)
    assert any(lot.allowance > lot.capacity for lot in lots)
    assert any(lot.sells_standard and lot.sells_temporary for lot in lots)
    for lot in lots:
        kinds = {product.kind for product in lot.products}
        assert (PermitKind.STANDARD in kinds) == lot.sells_standard, lot.name
        assert (PermitKind.TEMPORARY in kinds) == lot.sells_temporary, lot.name
        assert all(product.price_cents > 0 and product.eligible_user_types for product in lot.products)

    schedules = session.scalars(select(LotZoneSchedule)).all()
    assert any(s.days == "1111111" for s in schedules)
    assert any(s.days == "1111100" and s.start_time.hour == 7 and s.end_time.hour == 18 for s in schedules)

    assert {Role(u.role) for u in session.scalars(select(User))} == {
        Role.ADMIN,
        Role.MANAGER,
        Role.OFFICER,
        Role.USER,
    }
    boot_offence = session.scalar(select(OffenceType).where(OffenceType.apply_boot))
    assert boot_offence is not None and not boot_offence.apply_discount
    assert session.scalar(select(func.count()).where(OffenceType.apply_discount)) >= 1
    assert {p.kind for p in session.scalars(select(Permit))} == {PermitKind.STANDARD, PermitKind.TEMPORARY}
    assert all(p.vehicles for p in session.scalars(select(Permit)))

    booted = [
        v for v in session.scalars(select(Violation)) if any(i.offence_type.apply_boot for i in v.items)
    ]
    assert len(booted) == 1
    in_use = session.scalars(select(Boot).where(Boot.status == BootStatus.IN_USE)).all()
    assert [b.assignments[0].violation_id for b in in_use] == [booted[0].id]

    devices = session.scalars(select(SensingDevice)).all()
    counters = [d for d in devices if d.kind is DeviceKind.COUNTER]
    assert {d.lot.lot_group_id for d in counters} == {g.id for g in groups}
    assert all(d.device_id.startswith("cnt-") and d.device_id.endswith("-entrance") for d in counters)
    sensor_lots = {d.lot_id for d in devices if d.kind is DeviceKind.SPACE_SENSOR}
    assert len(sensor_lots) == 2


def test_credentials_log_in_and_are_private(core: Core, session: Session, tmp_path: Path) -> None:
    _seed(core, tmp_path)
    path = tmp_path / demo.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    rows = demo.read_credentials(tmp_path)
    assert {row["role"] for row in rows} == {"admin", "manager", "officer", "user"}
    assert len({row["password"] for row in rows}) == len(rows)
    for row in rows:
        info = users.authenticate(session, row["email"], row["password"])
        assert info is not None and info.role.name.lower() == row["role"]


def test_missing_user_is_recreated_and_added_to_the_file(core: Core, tmp_path: Path) -> None:
    _seed(core, tmp_path)
    before = {row["email"]: row["password"] for row in demo.read_credentials(tmp_path)}
    with core.db.session() as session:
        session.delete(session.scalar(select(User).where(User.email == "visitor@parkops.example")))
    result = _seed(core, tmp_path)

    assert result.users == 1
    after = {row["email"]: row["password"] for row in demo.read_credentials(tmp_path)}
    assert after.keys() == before.keys()
    changed = {email for email in after if after[email] != before[email]}
    assert changed == {"visitor@parkops.example"}


def test_secrets_are_encrypted_at_rest(core: Core, session: Session, tmp_path: Path) -> None:
    _seed(core, tmp_path)
    group = session.scalar(select(LotGroup).where(LotGroup.parking_logix_api_key.is_not(None)))
    assert group.parking_logix_api_key.startswith("enc:v1:")
    assert len(core.secrets.decrypt(group.parking_logix_api_key)) >= 16
    for boot in session.scalars(select(Boot)):
        assert boot.release_code.startswith("enc:v1:")
        assert core.secrets.decrypt(boot.release_code).isdigit()


def test_no_credentials_file_reads_as_empty(tmp_path: Path) -> None:
    assert demo.read_credentials(tmp_path) == []


def test_academic_terms_follow_the_school_year() -> None:
    assert demo.academic_terms(date(2026, 11, 2))[0][1:] == (date(2026, 9, 1), date(2026, 12, 31))
    assert demo.academic_terms(date(2027, 3, 15))[1][1:] == (date(2027, 1, 1), date(2027, 4, 30))


def test_the_demo_ships_weeks_of_history_the_advice_stands_on(
    core: Core, session: Session, tmp_path: Path
) -> None:
    result = _seed(core, tmp_path)
    now = datetime.now(UTC)
    assert result.readings > 0
    for group in session.scalars(select(LotGroup)):
        times = session.scalars(
            select(OccupancySnapshot.recorded_at).where(OccupancySnapshot.lot_group_id == group.id)
        ).all()
        oldest = min(times).replace(tzinfo=UTC)
        assert now - oldest > timedelta(days=demo.HISTORY_DAYS - 1), group.name
        assert len(times) >= demo.HISTORY_DAYS * 24, group.name  # a reading every half hour
    # The weekday and hour pattern: a weekday late morning is far busier than the night or Sunday.
    readings = session.execute(
        select(OccupancySnapshot.recorded_at, OccupancySnapshot.occupied, OccupancySnapshot.capacity)
    ).all()
    local = [
        (at.replace(tzinfo=UTC).astimezone(demo.CAMPUS_TZ), occupied / cap) for at, occupied, cap in readings
    ]
    late_morning = [share for at, share in local if at.weekday() < 5 and 10 <= at.hour < 12]
    nights = [share for at, share in local if at.hour < 5]
    sundays = [share for at, share in local if at.weekday() == 6 and 10 <= at.hour < 12]
    assert min(late_morning) > 0.5 > 0.1 > max(nights)
    assert max(sundays) < min(late_morning)

    rows = capacity.overview(session, now, tz=demo.CAMPUS_TZ)
    assert len(rows) == len(demo.LOTS)
    for row in rows:
        assert row.suggestion.allowance is not None, (row.name, row.suggestion.sentence)
        assert row.suggestion.allowance >= row.sold, row.name
        assert len(row.evidence.days) >= 28, row.name  # the default window's chart has a point a day
        if row.sells_standard:
            assert row.evidence.peak.permits > 0 and row.sold > 0, row.name
        else:  # a visitor lot: the spaces to keep, not the permits valid this minute
            assert row.suggestion.headline == f"Keep {row.suggestion.allowance} for visitors"
            assert row.suggestion.allowance > row.sold
    assert any(row.suggestion.headline.startswith("Sell up to") for row in rows)
    assert any(row.suggestion.allowance > row.allowance for row in rows)  # room to oversell somewhere


def test_the_demo_sales_fall_on_the_days_they_were_made(core: Core, session: Session, tmp_path: Path) -> None:
    """Reports count a sale on the day it was made: the seeded history's permits are spread over
    the weeks behind it (visitors bought on arrival, term permits before or during the term), not
    all sold the moment the demo was seeded."""
    _seed(core, tmp_path)
    now = datetime.now(UTC)
    made = session.scalars(select(Permit.created_at).where(Permit.number.like("DEMO-%"))).all()
    days = {at.replace(tzinfo=UTC).astimezone(demo.CAMPUS_TZ).date() for at in made}
    assert len(days) >= demo.HISTORY_DAYS - 1
    today = [at for at in made if now - at.replace(tzinfo=UTC) < timedelta(hours=24)]
    assert len(today) < len(made) / 10
    visitors = session.execute(
        select(Permit.created_at, Permit.valid_from).where(Permit.number.like("DEMO-H-%"))
    ).all()
    assert visitors and all(created == valid_from for created, valid_from in visitors)
