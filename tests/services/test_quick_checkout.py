"""The quick checkout's choices: durations in whole units of the price up to the product's maximum,
a start now or at a site-local time today or tomorrow (never in the past), a fixed permit without a
length lasting to local midnight, and only the lot's active temporary products."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard.services import quick_checkout
from dashboard.services.errors import ValidationFailed
from dashboard.services.quick_checkout import TemporaryOrder
from models import Lot, PermitKind, PermitProduct, Pricing

TZ = ZoneInfo("America/Toronto")
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 10:00 in Toronto


@pytest.fixture
def lot(session) -> dict[str, int]:
    visitor = Lot(name="Visitor", capacity=10, sells_standard=False, sells_temporary=True)
    session.add(visitor)
    session.flush()

    def temporary(name: str, pricing: Pricing, cents: int, minutes: int | None, **more: object) -> int:
        row = PermitProduct(
            lot_id=visitor.id,
            kind=PermitKind.TEMPORARY,
            name=name,
            pricing=pricing,
            price_cents=cents,
            max_duration_minutes=minutes,
            **more,
        )
        session.add(row)
        session.flush()
        return row.id

    ids = {
        "hourly": temporary("Hourly", Pricing.HOURLY, 300, 150),
        "daily": temporary("Daily", Pricing.DAILY, 1500, None),
        "event": temporary("Event", Pricing.FIXED, 1000, None),
        "retired": temporary("Retired", Pricing.HOURLY, 100, 60, is_active=False),
        "lot": visitor.id,
    }
    session.commit()
    return ids


def order(lot: dict[str, int], product: str, **fields: object) -> TemporaryOrder:
    return TemporaryOrder(lot_id=lot["lot"], product_id=lot[product], **fields)


def test_the_offer_lists_active_temporary_products_with_their_durations(session, lot) -> None:
    offer = quick_checkout.temporary_offer(session, lot["lot"])
    by_name = {option.name: option for option in offer.options}
    assert set(by_name) == {"Hourly", "Daily", "Event"}
    assert by_name["Hourly"].durations == (60, 120)  # whole hours up to the 150-minute maximum
    assert by_name["Daily"].durations == tuple(1440 * n for n in range(1, 8))
    assert by_name["Event"].durations == ()


def test_now_and_later_starts(session, lot) -> None:
    now = quick_checkout.quote_order(session, order(lot, "hourly", duration="120"), TZ, NOW)
    assert (now.valid_from, now.valid_to, now.amount_cents) == (NOW, NOW + timedelta(hours=2), 600)
    later = order(lot, "hourly", start="later", day="tomorrow", at="08:30", duration="60")
    quote = quick_checkout.quote_order(session, later, TZ, NOW)
    assert quote.valid_from == datetime(2026, 11, 29, 13, 30, tzinfo=UTC)
    assert quote.available == 10


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"start": "later", "day": "today", "at": "09:00", "duration": "60"}, "at"),  # an hour ago
        ({"start": "later", "day": "next week", "at": "09:00", "duration": "60"}, "day"),
        ({"start": "later", "day": "today", "at": "noon", "duration": "60"}, "at"),
        ({"duration": "90"}, "duration"),
        ({"duration": "180"}, "duration"),
    ],
)
def test_wrong_choices_are_named(session, lot, fields, field) -> None:
    with pytest.raises(ValidationFailed) as caught:
        quick_checkout.quote_order(session, order(lot, "hourly", **fields), TZ, NOW)
    assert field in caught.value.errors


def test_a_fixed_permit_without_a_length_lasts_to_local_midnight(session, lot) -> None:
    quote = quick_checkout.quote_order(session, order(lot, "event"), TZ, NOW)
    assert quote.valid_to == datetime(2026, 11, 29, 5, 0, tzinfo=UTC) and quote.amount_cents == 1000


def test_inactive_or_foreign_products_are_refused(session, lot) -> None:
    with pytest.raises(ValidationFailed):
        quick_checkout.quote_order(session, order(lot, "retired", duration="60"), TZ, NOW)
    session.get(Lot, lot["lot"]).sells_temporary = False
    session.commit()
    assert quick_checkout.temporary_offer(session, lot["lot"]).options == ()
    with pytest.raises(ValidationFailed):
        quick_checkout.quote_order(session, order(lot, "hourly", duration="60"), TZ, NOW)
