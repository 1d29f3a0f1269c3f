"""Lot zones service: names are unique whatever their case, every change is audited, and a zone
that lots schedule or permits name is not deleted: the error says which lots and how many permits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import lot_zones
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.lot_zones import ZoneInUse
from models import AuditLog, Lot, LotZone, LotZoneSchedule, PayStationRecord, Permit, PermitKind

NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def _audits(session: Session) -> list[AuditLog]:
    return list(
        session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_zone").order_by(AuditLog.id))
    )


def test_add_lists_and_audits(session: Session) -> None:
    added = lot_zones.add_zone(session, "  1001 ", actor_id=None)
    lot_zones.add_zone(session, "Visitor", actor_id=None)
    session.commit()

    assert added.name == "1001" and not added.in_use
    assert [zone.name for zone in lot_zones.list_zones(session)] == ["1001", "Visitor"]
    assert lot_zones.zone_choices(session) == [(added.id, "1001"), (added.id + 1, "Visitor")]
    entry = _audits(session)[0]
    assert (entry.action, entry.entity_id, entry.changes) == (
        "lot_zone.add",
        str(added.id),
        {"name": [None, "1001"]},
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "enter the zone's name"),
        ("   ", "enter the zone's name"),
        ("x" * 81, "at most 80"),
        ("visitor", "already"),
    ],
)
def test_bad_names_are_refused(session: Session, name: str, message: str) -> None:
    lot_zones.add_zone(session, "Visitor", actor_id=None)
    with pytest.raises(ValidationFailed) as refused:
        lot_zones.add_zone(session, name, actor_id=None)
    assert message in refused.value.errors["name"]


def test_rename_keeps_schedules_and_audits_only_a_change(session: Session) -> None:
    zone = lot_zones.add_zone(session, "1001", actor_id=None)
    lot = Lot(name="Lot E3", capacity=45)
    session.add(lot)
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
    session.commit()

    renamed = lot_zones.rename_zone(session, zone.id, "1001 East", actor_id=None)
    unchanged = lot_zones.rename_zone(session, zone.id, "1001 East", actor_id=None)
    session.commit()

    assert renamed.name == unchanged.name == "1001 East"
    assert renamed.lot_names == ("Lot E3",)
    assert [entry.action for entry in _audits(session)] == ["lot_zone.add", "lot_zone.rename"]
    assert _audits(session)[1].changes == {"name": ["1001", "1001 East"]}


def test_rename_to_another_zones_name_is_refused_but_a_case_change_is_not(session: Session) -> None:
    first = lot_zones.add_zone(session, "1001", actor_id=None)
    visitor = lot_zones.add_zone(session, "Visitor", actor_id=None)
    with pytest.raises(ValidationFailed) as refused:
        lot_zones.rename_zone(session, first.id, "VISITOR", actor_id=None)
    assert refused.value.errors == {"name": "zone Visitor already exists"}
    assert lot_zones.rename_zone(session, visitor.id, "VISITOR", actor_id=None).name == "VISITOR"


def test_unknown_zone(session: Session) -> None:
    with pytest.raises(NotFound):
        lot_zones.rename_zone(session, 999, "x", actor_id=None)
    with pytest.raises(NotFound):
        lot_zones.delete_zone(session, 999, actor_id=None)


def test_delete_refuses_a_zone_scheduled_on_lots_and_names_them(session: Session) -> None:
    zone = lot_zones.add_zone(session, "1002", actor_id=None)
    for name in ("Lot W Visitor", "Health Deck Patients"):
        lot = Lot(name=name, capacity=10)
        session.add(lot)
        session.flush()
        session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id, days="1111100"))
        session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id, days="0000011"))
    session.commit()

    with pytest.raises(ZoneInUse) as refused:
        lot_zones.delete_zone(session, zone.id, actor_id=None)

    assert refused.value.lot_names == ("Health Deck Patients", "Lot W Visitor")
    assert "Zone 1002 cannot be deleted" in str(refused.value)
    assert "2 lot(s): Health Deck Patients, Lot W Visitor" in str(refused.value)
    assert session.get(LotZone, zone.id) is not None
    assert [entry.action for entry in _audits(session)] == ["lot_zone.add"]


def test_delete_refuses_a_zone_that_permits_name(session: Session) -> None:
    zone = lot_zones.add_zone(session, "1001", actor_id=None)
    session.add(
        Permit(
            number="HS-1",
            kind=PermitKind.TEMPORARY,
            zone_id=zone.id,
            valid_from=NOW - timedelta(days=30),
            valid_to=NOW - timedelta(days=29),
        )
    )
    session.commit()
    with pytest.raises(ZoneInUse) as refused:
        lot_zones.delete_zone(session, zone.id, actor_id=None)
    assert refused.value.permit_count == 1 and refused.value.lot_names == ()
    assert "1 permit(s) are for this zone" in str(refused.value)
    assert lot_zones.list_zones(session)[0].permit_count == 1


def test_delete_an_unused_zone_keeps_pay_station_records(session: Session) -> None:
    zone = lot_zones.add_zone(session, "Old", actor_id=None)
    session.add(
        PayStationRecord(
            source="parkmobile",
            external_id="pm-1",
            plate="ABC 123",
            plate_normalized="ABC123",
            zone_id=zone.id,
            zone_name="Old",
            start_at=NOW,
            end_at=NOW + timedelta(hours=1),
        )
    )
    session.commit()

    assert lot_zones.delete_zone(session, zone.id, actor_id=None) == "Old"
    session.commit()

    assert session.get(LotZone, zone.id) is None
    record = session.scalars(select(PayStationRecord)).one()
    session.refresh(record)
    assert (record.zone_id, record.zone_name) == (None, "Old")
    assert _audits(session)[-1].changes == {"name": ["Old", None]}


def test_a_zone_capacity_is_set_cleared_validated_and_audited(session: Session) -> None:
    added = lot_zones.add_zone(session, "1001", None, capacity="12")
    assert added.capacity == 12
    assert lot_zones.set_capacity(session, added.id, 8, None).capacity == 8
    assert lot_zones.set_capacity(session, added.id, "", None).capacity is None  # no limit
    session.commit()
    changes = [entry.changes for entry in _audits(session)]
    assert changes == [
        {"name": [None, "1001"], "capacity": [None, 12]},
        {"capacity": [12, 8]},
        {"capacity": [8, None]},
    ]
    for bad in (-1, 2.5, "ten", True, lot_zones.CAPACITY_MAX + 1):
        with pytest.raises(ValidationFailed) as caught:
            lot_zones.set_capacity(session, added.id, bad, None)
        assert "empty for no limit" in caught.value.errors["capacity"]
    with pytest.raises(ValidationFailed) as caught:
        lot_zones.add_zone(session, "", None, capacity=-1)
    assert set(caught.value.errors) == {"name", "capacity"}


def test_the_list_says_what_each_zone_has_taken_now(session: Session) -> None:
    zone = lot_zones.add_zone(session, "1001", None, capacity=3)
    for n, (start, end) in enumerate([(-1, 1), (-2, -1), (1, 2)]):  # now, ended, upcoming
        session.add(
            PayStationRecord(
                source="parkmobile",
                external_id=f"PM-{n}",
                plate="ABC",
                plate_normalized="ABC",
                zone_id=zone.id,
                zone_name="1001",
                start_at=NOW + timedelta(hours=start),
                end_at=NOW + timedelta(hours=end),
            )
        )
    session.commit()
    [listed] = lot_zones.list_zones(session, NOW)
    assert (listed.capacity, listed.taken_now) == (3, 1)
