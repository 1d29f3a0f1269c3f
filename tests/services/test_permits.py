"""Permits: availability arithmetic, selling without overselling (also under 50 concurrent buyers:
SQLite in ``make test``, PostgreSQL in the service run), third-party permits, and plate checks at
the boundaries of zone schedules."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import permits
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.permits import (
    ExternalPermit,
    Partner,
    PermitChange,
    PermitRequest,
    SoldOut,
    SourceNotAllowed,
)
from dashboard.services.plates import clean_plate, normalize_plate
from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitProduct,
    PermitSource,
    PermitStatus,
    Pricing,
    WaitlistEntry,
    WaitlistStatus,
)

TZ = ZoneInfo("America/Toronto")
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 in Toronto


@pytest.fixture
def lot(session) -> dict[str, int]:
    row = Lot(name="Visitor Lot", code="V1", capacity=10, permits_allowed=None, sells_temporary=True)
    session.add(row)
    session.flush()
    hourly = PermitProduct(
        lot_id=row.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=250,
        max_duration_minutes=8 * 60,
    )
    term = PermitProduct(
        lot_id=row.id,
        kind=PermitKind.STANDARD,
        name="Winter Term",
        pricing=Pricing.TERM,
        price_cents=26500,
        term_start=date(2027, 1, 4),
        term_end=date(2027, 4, 30),
    )
    session.add_all([hourly, term])
    session.commit()
    return {"lot": row.id, "hourly": hourly.id, "term": term.id}


def request(lot: dict[str, int], plate: str = "ABC 123", hours: int = 2, **changes) -> PermitRequest:
    values = {
        "lot_id": lot["lot"],
        "product_id": lot["hourly"],
        "plates": (clean_plate(plate),),
        "valid_from": NOW,
        "valid_to": NOW + timedelta(hours=hours),
        "amount_cents": 250 * hours,
        "currency": "CAD",
        "email": "guest@example.com",
        "user_id": None,
    }
    return PermitRequest(**{**values, **changes})


def sell(session, lot, **changes) -> permits.PermitView:
    held = permits.reserve(session, request(lot, **changes), NOW)
    active = permits.activate(session, held.id, NOW)
    session.commit()
    return active


# --- plates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["abc-123", "ABC 123", "a.b.c 123", " AbC123 "])
def test_plates_normalise_to_one_form(typed):
    assert normalize_plate(typed) == "ABC123"
    assert clean_plate(typed)[1] == "ABC123"


@pytest.mark.parametrize("bad", ["", "  ", "A", "ABC$123", "ABCDEFGHIJK", None, 123])
def test_bad_plates_are_refused_with_the_field(bad):
    with pytest.raises(ValidationFailed) as caught:
        clean_plate(bad, field="plate_1")
    assert set(caught.value.errors) == {"plate_1"}


# --- availability and pricing ----------------------------------------------------------------------


def test_availability_counts_permits_that_overlap_the_period(session, lot):
    sell(session, lot, plate="AAA111")  # 15:00-17:00
    sell(session, lot, plate="BBB222", valid_from=NOW + timedelta(hours=3), valid_to=NOW + timedelta(hours=4))
    window = permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), NOW)
    assert (window.allowance, window.taken, window.available) == (10, 1, 9)
    later = permits.lot_availability(
        session, lot["lot"], NOW + timedelta(hours=2), NOW + timedelta(hours=4), NOW
    )
    assert later.taken == 1  # 17:00 is the first permit's end: no overlap
    both = permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=5), NOW)
    assert both.taken == 2


def test_allowance_may_exceed_capacity_and_holds_lapse(session, lot):
    session.get(Lot, lot["lot"]).permits_allowed = 12
    session.commit()
    held = permits.reserve(session, request(lot), NOW)
    session.commit()
    assert permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), NOW).available == 11
    after_hold = NOW + permits.HOLD + timedelta(seconds=1)
    assert (
        permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), after_hold).available
        == 12
    )
    assert permits.expire_holds(session, after_hold) == 1
    assert session.get(Permit, held.id).status == PermitStatus.CANCELLED


def test_a_hold_whose_payment_is_unresolved_keeps_its_space_past_the_hold(session, lot):
    """A card charged while the connection dropped leaves the payment pending: until the processor
    is asked, the space stays the buyer's, so the lot is never sold one over."""
    session.get(Lot, lot["lot"]).permits_allowed = 1
    session.commit()
    held = permits.reserve(session, request(lot), NOW)
    payment = Payment(idempotency_key="k-unresolved", provider="sandbox", amount_cents=600)
    payment.allocations.append(PaymentAllocation(permit_id=held.id, amount_cents=600))
    session.add(payment)
    session.commit()
    after_hold = NOW + permits.HOLD + timedelta(minutes=30)
    window = permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), after_hold)
    assert window.available == 0
    assert permits.expire_holds(session, after_hold) == 0

    payment.status = PaymentStatus.DECLINED  # the processor said: not charged
    session.commit()
    assert (
        permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), after_hold).available
        == 1
    )


def test_cancelled_and_released_permits_free_their_space(session, lot):
    session.get(Lot, lot["lot"]).permits_allowed = 1
    session.commit()
    held = permits.reserve(session, request(lot), NOW)
    session.commit()
    with pytest.raises(SoldOut):
        permits.reserve(session, request(lot, plate="ZZZ999"), NOW)
    session.rollback()
    permits.release(session, held.id)
    session.commit()
    assert permits.reserve(session, request(lot, plate="ZZZ999"), NOW).status == "pending"


@pytest.mark.parametrize(
    ("pricing", "minutes", "expected"),
    [
        (Pricing.HOURLY, 60, 250),
        (Pricing.HOURLY, 61, 500),
        (Pricing.DAILY, 25 * 60, 500),
        (Pricing.FIXED, 300, 250),
    ],
)
def test_quotes_charge_per_started_unit(pricing, minutes, expected):
    product = PermitProduct(pricing=pricing, price_cents=250, max_duration_minutes=None)
    assert permits.quote(product, NOW, NOW + timedelta(minutes=minutes)) == expected


def test_quotes_refuse_backwards_and_too_long_periods():
    product = PermitProduct(pricing=Pricing.HOURLY, price_cents=250, max_duration_minutes=120)
    with pytest.raises(ValidationFailed) as caught:
        permits.quote(product, NOW, NOW - timedelta(minutes=1))
    assert "end" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        permits.quote(product, NOW, NOW + timedelta(minutes=121))
    assert "2 hours" in caught.value.errors["duration"]


def test_term_window_is_local_midnight_to_midnight(session, lot):
    start, end = permits.term_window(session.get(PermitProduct, lot["term"]), TZ)
    assert start == datetime(2027, 1, 4, 5, 0, tzinfo=UTC)
    assert end == datetime(2027, 5, 1, 4, 0, tzinfo=UTC)  # daylight saving time by May


def test_reserve_refuses_what_the_lot_does_not_sell(session, lot):
    session.get(Lot, lot["lot"]).sells_temporary = False
    session.commit()
    with pytest.raises(ValidationFailed) as caught:
        permits.reserve(session, request(lot), NOW)
    assert "does not sell temporary" in caught.value.errors["product"]
    session.rollback()
    with pytest.raises(NotFound):
        permits.reserve(session, request(lot, lot_id=999_999), NOW)


def test_a_waitlist_offer_holds_its_space_for_its_holder(session, lot, make_user):
    session.get(Lot, lot["lot"]).permits_allowed = 1
    holder = make_user(email="holder@example.com")
    session.add(
        WaitlistEntry(
            product_id=lot["hourly"],
            lot_id=lot["lot"],
            user_id=holder.id,
            email=holder.email,
            status=WaitlistStatus.OFFERED,
            offered_at=NOW,
            offer_expires_at=NOW + timedelta(hours=1),
            offer_token="t" * 32,
        )
    )
    session.commit()
    with pytest.raises(SoldOut):
        permits.reserve(session, request(lot), NOW)
    session.rollback()
    held = permits.reserve(session, request(lot, user_id=holder.id, email=holder.email), NOW)
    permits.activate(session, held.id, NOW)
    session.commit()
    assert session.scalar(select(WaitlistEntry.status)) == WaitlistStatus.FULFILLED


# --- never oversell ------------------------------------------------------------------------------


def test_fifty_concurrent_buyers_get_exactly_ten_spaces(core, lot):
    """Each buyer in its own thread, connection and transaction, all released at once."""
    with core.db.session() as s:
        s.get(Lot, lot["lot"]).permits_allowed = 10
    buyers = 50
    start = threading.Barrier(buyers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(number: int) -> None:
        start.wait()
        try:
            with core.db.session() as s:
                permits.reserve(s, request(lot, plate=f"CAR{number:03d}"), NOW)
            outcome = "sold"
        except SoldOut:
            outcome = "sold out"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(buyers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["sold"] * 10 + ["sold out"] * 40
    with core.db.session() as s:
        assert s.scalar(select(func.count(Permit.id)).where(Permit.lot_id == lot["lot"])) == 10


# --- third-party permits -------------------------------------------------------------------------


def external(**changes) -> ExternalPermit:
    values = {
        "source": "paystation",
        "external_id": "PD-0001",
        "plate": "abc 123",
        "lot": "v1",
        "start": "2026-11-30T10:00:00-05:00",
        "end": "2026-11-30T12:00:00-05:00",
        "amount_cents": 500,
        "currency": "cad",
    }
    return ExternalPermit(**{**values, **changes})


EVERY_SOURCE = Partner(frozenset({"api", "hotspot", "paystation"}))


def record(session, permit: ExternalPermit, partner: Partner = EVERY_SOURCE):
    return permits.record_external_permit(session, permit, partner=partner, now=NOW)


def test_external_permits_are_idempotent_on_source_and_id(session, lot):
    first, created = record(session, external())
    again, created_again = record(session, external(amount_cents=999))
    assert created and not created_again and again.id == first.id and again.amount_cents == 500
    assert first.lot_name == "Visitor Lot" and first.plates == ("ABC 123",) and first.currency == "CAD"
    assert first.valid_from == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    other_source, created_other = record(session, external(source="hotspot"))
    assert created_other and other_source.id != first.id


# --- one limit for every channel: partners count against the lot, zone permits against the zone ----

OVER = Partner(frozenset({"paystation"}), over_allowance=True)


def test_a_partner_lot_permit_counts_against_the_lot_like_a_sale(session, lot):
    """Nine checkouts (one still a hold) and one pay-station permit fill the lot; then a partner is
    refused, a checkout is refused, and a retry of the recorded permit still answers it."""
    for n in range(8):
        sell(session, lot, plate=f"CAR{n:03d}")
    permits.reserve(session, request(lot, plate="HELD1"), NOW)  # a checkout in progress
    session.commit()
    first, created = record(session, external())
    assert created and not first.over_allowance
    session.commit()
    with pytest.raises(SoldOut) as caught:
        record(session, external(external_id="PD-0002", plate="XYZ 789"))
    assert "Visitor Lot has no space left for that time" in str(caught.value)
    session.rollback()
    with pytest.raises(SoldOut):
        permits.reserve(session, request(lot, plate="LATE1"), NOW)
    session.rollback()
    again, created_again = record(session, external())
    assert again.id == first.id and not created_again
    later = external(
        external_id="PD-0003", start="2026-11-30T12:00:00-05:00", end="2026-11-30T13:00:00-05:00"
    )
    assert record(session, later)[1]  # after the two-hour sales end, the lot has room again
    assert session.scalar(select(func.count(Permit.id)).where(Permit.lot_id == lot["lot"])) == 11


def test_a_key_with_over_allowance_records_past_the_limit_and_the_permit_says_so(session, lot):
    session.get(Lot, lot["lot"]).permits_allowed = 1
    session.commit()
    within, _ = record(session, external(), partner=OVER)
    past, _ = record(session, external(external_id="PD-0002"), partner=OVER)
    session.commit()
    assert not within.over_allowance and past.over_allowance
    assert session.get(Permit, past.id).over_allowance is True
    assert permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), NOW).taken == 2


@pytest.fixture
def zone(session, lot) -> int:
    """Zone 1001, capacity 2, scheduled on the lot every day all day."""
    row = LotZone(name="1001", capacity=2)
    session.add(row)
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot["lot"], zone_id=row.id))
    session.commit()
    return row.id


def zone_permit(external_id: str, **changes) -> ExternalPermit:
    return external(source="hotspot", external_id=external_id, lot=None, zone="1001", **changes)


def test_zone_permits_count_against_the_zone_capacity_with_pay_station_records(session, lot, zone):
    session.add(
        PayStationRecord(
            source="parkmobile",
            external_id="PM-1",
            plate="PMM 1",
            plate_normalized="PMM1",
            zone_id=zone,
            zone_name="1001",
            start_at=NOW - timedelta(hours=1),
            end_at=NOW + timedelta(hours=1),
        )
    )
    session.commit()
    assert record(session, zone_permit("HS-1"))[1]
    session.commit()
    with pytest.raises(SoldOut) as caught:
        record(session, zone_permit("HS-2", plate="DEF 456"))
    assert "Zone 1001 has no space left for that time: all 2 permits it allows are taken" in str(caught.value)
    session.rollback()
    # A zone permit takes no space of the lot: the lot still sells all ten.
    assert permits.lot_availability(session, lot["lot"], NOW, NOW + timedelta(hours=1), NOW).available == 10
    assert permits.zone_taken(session, [zone], NOW, NOW + timedelta(minutes=1), NOW) == {zone: 2}
    session.get(LotZone, zone).capacity = None  # no capacity: no limit
    session.commit()
    assert record(session, zone_permit("HS-2", plate="DEF 456"))[1]


def test_an_extension_is_a_sale_of_the_added_time(session, lot, zone):
    session.get(LotZone, zone).capacity = 1
    session.commit()
    first, _ = record(session, zone_permit("HS-1"))  # 15:00-17:00 UTC
    second, _ = record(
        session,
        zone_permit(
            "HS-2", plate="DEF 456", start="2026-11-30T12:00:00-05:00", end="2026-11-30T14:00:00-05:00"
        ),
    )  # 17:00-19:00 UTC
    session.commit()
    with pytest.raises(SoldOut):
        permits.update_external_permit(
            session,
            first.reference,
            PermitChange(end=NOW + timedelta(hours=3)),
            partner=EVERY_SOURCE,
            now=NOW,
        )
    session.rollback()
    shorter = permits.update_external_permit(
        session, first.reference, PermitChange(end=NOW + timedelta(hours=1)), partner=EVERY_SOURCE, now=NOW
    )
    assert shorter.valid_to == NOW + timedelta(hours=1)
    over = Partner(EVERY_SOURCE.sources, over_allowance=True)
    extended = permits.update_external_permit(
        session, second.reference, PermitChange(end=NOW + timedelta(hours=5)), partner=over, now=NOW
    )
    assert extended.valid_to == NOW + timedelta(hours=5) and not extended.over_allowance  # room after 17:00
    longer = permits.update_external_permit(
        session, first.reference, PermitChange(end=NOW + timedelta(hours=3)), partner=over, now=NOW
    )
    assert longer.over_allowance


def test_a_partner_records_only_for_its_own_sources(session, lot):
    with pytest.raises(SourceNotAllowed) as caught:
        record(session, external(source="hotspot"), partner=Partner(frozenset({"paystation"})))
    assert "records paystation permits, not hotspot" in str(caught.value)
    with pytest.raises(SourceNotAllowed) as caught:
        record(session, external(), partner=Partner(frozenset()))
    assert "acts for no permit source" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", "0001-01-01T00:00:00+01:00"),  # would overflow on the way to UTC
        ("end", "9999-12-31T23:59:59-01:00"),
        ("external_id", "PD\x00-1"),  # PostgreSQL refuses NUL characters
        ("lot", "V\x001"),
    ],
)
def test_external_permits_refuse_edge_dates_and_control_characters(session, lot, field, value):
    with pytest.raises(ValidationFailed) as caught:
        record(session, external(**{field: value}))
    assert field in caught.value.errors


def test_plate_checks_refuse_dates_outside_service(session, lot):
    with pytest.raises(ValidationFailed) as caught:
        permits.check_plate(session, "ABC123", lot["lot"], datetime(1, 1, 1, tzinfo=UTC), TZ)
    assert "at" in caught.value.errors


def test_external_permit_validation_names_each_field(session, lot):
    with pytest.raises(ValidationFailed) as caught:
        record(
            session,
            external(
                source="portal",
                external_id="",
                plate="!",
                lot="",
                start="yesterday",
                end="2026-11-30T12:00:00",
                amount_cents=-1,
                currency="dollars",
            ),
        )
    assert set(caught.value.errors) == {
        "source",
        "external_id",
        "plate",
        "lot",
        "start",
        "end",
        "amount_cents",
        "currency",
    }
    with pytest.raises(ValidationFailed) as caught:
        record(session, external(lot=None, zone="9999"))
    assert "no lot zone" in caught.value.errors["zone"]
    with pytest.raises(ValidationFailed) as caught:
        record(session, external(end="2026-11-30T09:00:00-05:00"))
    assert caught.value.errors == {"end": "must be after the start"}


# --- plate checks --------------------------------------------------------------------------------


@pytest.fixture
def zoned(session, lot) -> dict[str, int]:
    zone = LotZone(name="1001")
    session.add(zone)
    session.flush()
    session.add(
        LotZoneSchedule(
            lot_id=lot["lot"], zone_id=zone.id, days="1111100", start_time=time(7, 0), end_time=time(18, 0)
        )
    )
    session.commit()
    return {**lot, "zone": zone.id}


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """``day`` days after Monday 30 November 2026, at a Toronto wall-clock time."""
    return datetime.combine(date(2026, 11, 30) + timedelta(days=day), time(hour, minute, second), tzinfo=TZ)


@pytest.mark.parametrize(
    ("moment", "valid"),
    [
        (local(0, 6, 59, 59), False),  # Monday, a second before the zone starts
        (local(0, 7, 0), True),
        (local(0, 18, 0, 59), True),  # the end minute is included
        (local(0, 18, 1), False),
        (local(4, 12, 0), True),  # Friday
        (local(5, 12, 0), False),  # Saturday: not a zone day
    ],
)
def test_zone_permits_are_valid_on_scheduled_days_and_times(session, zoned, moment, valid):
    record(
        session,
        external(
            source="hotspot",
            lot=None,
            zone="1001",
            start=datetime(2026, 11, 29, tzinfo=UTC),
            end=datetime(2026, 12, 8, tzinfo=UTC),
        ),
    )
    session.commit()
    check = permits.check_plate(session, "ABC-123", zoned["lot"], moment, TZ)
    assert check.valid is valid
    if valid:
        assert "zone 1001" in check.reason
    else:
        assert "zone 1001, which is not scheduled" in check.reason


@pytest.mark.parametrize(
    ("moment", "valid"),
    [
        (local(4, 0, 0), True),  # Friday at midnight: the day starts
        (local(4, 23, 59, 59), True),  # 23:59 is the end minute, included
        (local(5, 0, 0), False),  # Saturday at midnight: not a zone day
        (local(6, 23, 59, 59), False),  # Sunday
        (local(7, 0, 0), True),  # Monday again
    ],
)
def test_all_day_weekday_zones_turn_at_midnight(session, lot, moment, valid):
    zone = LotZone(name="Weekdays")
    session.add(zone)
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot["lot"], zone_id=zone.id, days="1111100"))  # 00:00-23:59
    session.commit()
    record(
        session,
        external(
            lot=None,
            zone="Weekdays",
            start=datetime(2026, 11, 29, tzinfo=UTC),
            end=datetime(2026, 12, 9, tzinfo=UTC),
        ),
    )
    assert permits.check_plate(session, "ABC123", lot["lot"], moment, TZ).valid is valid


def test_lot_permits_expire_on_time(session, lot):
    permit = sell(session, lot)
    valid = permits.check_plate(session, "abc123", lot["lot"], NOW, TZ)
    ends = (NOW + timedelta(hours=2)).astimezone(TZ)
    assert valid.valid and valid.reason.endswith(f"until {ends:%H:%M} today.")  # site time, in words
    just_before = NOW + timedelta(hours=2) - timedelta(microseconds=1)
    assert permits.check_plate(session, "abc123", lot["lot"], just_before, TZ).valid
    ended = permits.check_plate(session, "abc123", lot["lot"], NOW + timedelta(hours=2), TZ)
    assert not ended.valid and ended.reason.endswith(f"permit {permit.number} expired at {ends:%H:%M} today.")


def test_a_permit_for_another_lot_or_a_cancelled_one_is_not_valid(session, lot):
    other = Lot(name="Staff Lot", capacity=5)
    session.add(other)
    session.commit()
    permit = sell(session, lot)
    check = permits.check_plate(session, "ABC 123", other.id, NOW, TZ)
    assert not check.valid and "for Visitor Lot, not this lot" in check.reason
    session.get(Permit, permit.id).status = PermitStatus.CANCELLED
    session.commit()
    check = permits.check_plate(session, "ABC 123", lot["lot"], NOW, TZ)
    assert not check.valid and "is cancelled" in check.reason


def test_pay_station_sessions_make_a_plate_valid(session, zoned):
    session.add(
        PayStationRecord(
            source="parkmobile",
            external_id="PM-1",
            plate="ABC123",
            plate_normalized="ABC123",
            zone_id=zoned["zone"],
            zone_name="1001",
            start_at=NOW - timedelta(minutes=10),
            end_at=NOW + timedelta(minutes=50),
            amount_cents=300,
        )
    )
    session.commit()
    check = permits.check_plate(session, "abc 123", zoned["lot"], NOW, TZ)
    assert check.valid and "parkmobile pay station for zone 1001" in check.reason and len(check.sessions) == 1
    assert not permits.check_plate(session, "XYZ999", zoned["lot"], NOW, TZ).valid


def test_sources_of_sold_permits(session, lot):
    sold = sell(session, lot)
    assert sold.source == PermitSource.PORTAL and sold.kind == PermitKind.TEMPORARY
    assert sold.number.startswith("T-") and len(sold.number) == 10
