"""Partners' permits after they are pushed: the OC-TOMA referenceID (random, and only the owning
partner's), updates, cancellations, per-zone counts, and finding a lot by what a partner typed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.services import permits
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import ExternalPermit, Partner, PermitChange, SourceNotAllowed
from models import Lot, LotZone, LotZoneSchedule, Permit, PermitKind, PermitStatus, PermitVehicle

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
PAYSTATION = Partner(frozenset({"paystation"}))
HOTSPOT = Partner(frozenset({"hotspot"}))


@pytest.fixture
def place(session):
    """Two lots; zone 1001 is scheduled on the first, zone 2002 on none."""
    north = Lot(name="North Garage", code="NG", capacity=50)
    south = Lot(name="South Lot", code="SL", capacity=20)
    hotspot = LotZone(name="1001")
    unused = LotZone(name="2002")
    session.add_all([north, south, hotspot, unused])
    session.flush()
    session.add(LotZoneSchedule(lot_id=north.id, zone_id=hotspot.id))
    session.add(LotZoneSchedule(lot_id=north.id, zone_id=hotspot.id, days="1000000"))  # a second rule
    session.commit()
    return {"north": north.id, "south": south.id}


def push(session, external_id="P-1", partner=PAYSTATION, **fields):
    values = {
        "source": "paystation",
        "external_id": external_id,
        "plate": "ABC 123",
        "zone": "1001",
        "start": T0 - timedelta(hours=1),
        "end": T0 + timedelta(hours=2),
        "amount_cents": 450,
    }
    values.update(fields)
    permit, _ = permits.record_external_permit(session, ExternalPermit(**values), partner=partner, now=T0)
    session.commit()
    return permit


def standard_permit(session, lot_id, status=PermitStatus.ACTIVE, end=T0 + timedelta(days=30)):
    row = Permit(
        number=permits.new_number(PermitKind.STANDARD),
        kind=PermitKind.STANDARD,
        status=status,
        lot_id=lot_id,
        valid_from=T0 - timedelta(days=1),
        valid_to=end,
    )
    row.vehicles = [PermitVehicle(plate="XYZ 9", plate_normalized="XYZ9")]
    session.add(row)
    session.commit()
    return row.id


def test_the_reference_is_a_random_uuid_for_partner_permits_only(session, place):
    pushed = push(session)
    reference = permits.partner_reference(pushed)
    parsed = uuid.UUID(reference)
    assert str(parsed) == reference and parsed.version == 4
    assert permits.partner_reference(permits.get_permit(session, pushed.id)) == reference
    assert permits.partner_reference(push(session)) == reference  # a repeated push: same answer
    assert permits.partner_reference(push(session, "P-2")) != reference
    portal = permits.get_permit(session, standard_permit(session, place["north"]))
    assert permits.partner_reference(portal) is None
    assert permits.permit_by_reference(session, reference.upper(), partner=PAYSTATION).id == pushed.id


def test_a_reference_is_found_only_by_its_own_partner(session, place):
    """A second partner's key cannot reach the first one's permit, by reference or by permit number."""
    reference = permits.partner_reference(push(session))
    for other in (HOTSPOT, Partner(frozenset())):
        with pytest.raises(NotFound):
            permits.permit_by_reference(session, reference, partner=other)
        with pytest.raises(NotFound):
            permits.cancel_external_permit(session, reference, partner=other)
        with pytest.raises(NotFound):
            permits.update_external_permit(
                session, reference, PermitChange(amount_cents=1), partner=other, now=T0
            )
    with pytest.raises(SourceNotAllowed):
        push(session, partner=HOTSPOT)  # the first partner's permit number, under its source
    session.rollback()
    assert permits.permit_by_reference(session, reference, partner=PAYSTATION).status == "active"
    portal = permits.get_permit(session, standard_permit(session, place["north"]))
    with pytest.raises(NotFound):
        permits.permit_by_reference(session, portal.reference, partner=PAYSTATION)
    with pytest.raises(NotFound):
        permits.permit_by_reference(session, str(uuid.uuid4()), partner=PAYSTATION)
    with pytest.raises(ValidationFailed) as caught:
        permits.permit_by_reference(session, "not-a-uuid", partner=PAYSTATION)
    assert "referenceID" in caught.value.errors


def test_update_changes_plate_end_amount_and_currency(session, place):
    reference = permits.partner_reference(push(session))
    later = T0 + timedelta(hours=5)
    updated = permits.update_external_permit(
        session,
        reference,
        PermitChange(plate="zz-99 x", end=later, amount_cents=900, currency="usd"),
        partner=PAYSTATION,
        now=T0,
    )
    session.commit()
    assert updated.plates == ("ZZ-99 X",) and updated.valid_to == later
    assert (updated.amount_cents, updated.currency) == (900, "USD")
    check = permits.check_plate(session, "ZZ99X", place["north"], T0 + timedelta(hours=4), UTC)
    assert check.valid
    assert not permits.check_plate(session, "ABC123", place["north"], T0, UTC).valid
    same = permits.update_external_permit(
        session, reference, PermitChange(end="2026-11-28T20:00:00-05:00"), partner=PAYSTATION, now=T0
    )
    assert same.valid_to == datetime(2026, 11, 29, 1, 0, tzinfo=UTC) and same.plates == ("ZZ-99 X",)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (PermitChange(plate="!"), "plate"),
        (PermitChange(end=T0 - timedelta(hours=1)), "end"),  # before the permit's start
        (PermitChange(end="tomorrow"), "end"),
        (PermitChange(end="2026-11-28T20:00:00"), "end"),  # no offset
        (PermitChange(amount_cents=-1), "amount_cents"),
        (PermitChange(amount_cents="4.50"), "amount_cents"),
        (PermitChange(currency="dollars"), "currency"),
    ],
)
def test_update_validates_each_field_and_changes_nothing_on_error(session, place, change, field):
    pushed = push(session)
    with pytest.raises(ValidationFailed) as caught:
        permits.update_external_permit(
            session, permits.partner_reference(pushed), change, partner=PAYSTATION, now=T0
        )
    assert field in caught.value.errors
    session.rollback()
    assert permits.get_permit(session, pushed.id) == pushed


def test_cancel_is_idempotent_and_a_cancelled_permit_cannot_change(session, place):
    pushed = push(session)
    reference = permits.partner_reference(pushed)
    assert permits.cancel_external_permit(session, reference, partner=PAYSTATION).status == "cancelled"
    assert permits.cancel_external_permit(session, reference, partner=PAYSTATION).status == "cancelled"
    session.commit()
    assert not permits.check_plate(session, "ABC123", place["north"], T0, UTC).valid
    with pytest.raises(NotAllowed):
        permits.update_external_permit(
            session, reference, PermitChange(end=T0 + timedelta(days=1)), partner=PAYSTATION, now=T0
        )
    again = push(session)  # the partner retries the original push: no second permit
    assert again.id == pushed.id and again.status == "cancelled"


def test_zone_stats_count_permits_valid_now_by_kind(session, place):
    push(session, "P-1")
    push(session, "P-2", plate="DEF 456")
    push(session, "P-3", start=T0 + timedelta(hours=1))  # not yet valid
    push(session, "P-4", end=T0)  # just expired
    cancelled = push(session, "P-5")
    permits.cancel_external_permit(session, permits.partner_reference(cancelled), partner=PAYSTATION)
    push(session, "P-6", zone=None, lot="South Lot")  # a lot permit in a lot without the zone
    standard_permit(session, place["north"])
    standard_permit(session, place["north"])
    standard_permit(session, place["north"], status=PermitStatus.CANCELLED)
    standard_permit(session, place["south"])
    counts = permits.zone_stats(session, None, T0)
    assert counts == [
        permits.ZoneCount(zone="1001", standard=2, temporary=2),
        permits.ZoneCount(zone="2002", standard=0, temporary=0),
    ]
    assert permits.zone_stats(session, ["2002", " 1001 ", "2002"], T0) == [
        permits.ZoneCount(zone="2002", standard=0, temporary=0),
        permits.ZoneCount(zone="1001", standard=2, temporary=2),
    ]


def test_zone_stats_refuse_unknown_zone_names(session, place):
    with pytest.raises(ValidationFailed) as caught:
        permits.zone_stats(session, ["1001", "Lot 99"], T0)
    assert "Lot 99" in caught.value.errors["zones"]


def test_a_lot_is_found_by_name_code_or_id(session, place):
    assert permits.lot_by_reference(session, "north garage").id == place["north"]
    assert permits.lot_by_reference(session, "sl").id == place["south"]
    assert permits.lot_by_reference(session, str(place["south"])).id == place["south"]
    assert permits.lot_by_reference(session, "99999") is None
    assert permits.lot_by_reference(session, "  ") is None
    assert permits.lot_by_reference(session, "²") is None  # a digit to str.isdigit, not to int()


def test_a_pushed_permit_without_a_currency_is_in_the_sites(session, place, core):
    from dashboard.services import system_settings

    assert push(session, "P-CAD").currency == "CAD"
    system_settings.update(session, core.secrets, {"currency": "USD"}, actor_id=None)
    assert push(session, "P-USD").currency == "USD"
    assert push(session, "P-EUR", currency="eur").currency == "EUR"  # the partner's own wins
