"""One limit for every channel that sells a permit valid in a lot: the quick checkout, the cart, the
partner API and OC-TOMA pushes count against the lot's allowance (lot permits) or the zone's
capacity (zone permits, and ParkMobile's sessions, which count in both) under the same lock; past
it a partner gets a 409 JSON error, unless its key holds ``permits:over-allowance`` (the permit is
then flagged). The concurrent test releases every channel at once on one lot and its zone: on
SQLite in ``make test``, on PostgreSQL in the service run."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import carts, email, pay_stations, quick_checkout
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SUCCESS_CARD, ReceiptContext, SandboxProvider
from dashboard.services.quick_checkout import TemporaryOrder
from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitProduct,
    PermitSource,
    PermitStatus,
    Pricing,
    UserType,
)
from tests.api.partners import bearer, issue_key

OC_TOMA = "/api/OC-TOMA/v1/permits/push"
FORMAT = "%Y-%m-%dT%H:%M:%S"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def place(core) -> dict[str, int]:
    """Visitor Lot (code VL): 10 spaces, hourly temporary permits and a term permit running now;
    zone 1001 is scheduled on it all day with a capacity of 4."""
    today = now().astimezone(core.settings.tz).date()
    with core.db.session() as s:
        email.ensure_default_templates(s)
        student = UserType(code="student", name="Student")
        lot = Lot(name="Visitor Lot", code="VL", capacity=10, sells_standard=True, sells_temporary=True)
        zone = LotZone(name="1001", capacity=4)
        s.add_all([student, lot, zone])
        s.flush()
        s.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
        hourly = PermitProduct(
            lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=300
        )
        term = PermitProduct(
            lot_id=lot.id,
            kind=PermitKind.STANDARD,
            name="Term",
            pricing=Pricing.TERM,
            price_cents=16500,
            term_start=today - timedelta(days=10),
            term_end=today + timedelta(days=100),
        )
        term.eligible_user_types = [student]
        s.add_all([hourly, term])
        s.flush()
        return {"lot": lot.id, "zone": zone.id, "hourly": hourly.id, "term": term.id}


def api_body(external_id: str, **fields: object) -> dict[str, object]:
    return {
        "source": "api",
        "external_id": external_id,
        "plate": f"P {external_id[-6:]}",
        "lot": "VL",
        "start": (now() - timedelta(minutes=1)).isoformat(),
        "end": (now() + timedelta(hours=1)).isoformat(),
        "amount_cents": 300,
        **fields,
    }


def push_body(token: str, permit_no: str, tz: ZoneInfo) -> dict[str, object]:
    return {
        "apiToken": token,
        "permitNo": permit_no,
        "LicencePlate": f"Z {permit_no[-6:]}",
        "zone": "1001",
        "startTime": (now() - timedelta(minutes=1)).astimezone(tz).strftime(FORMAT),
        "endTime": (now() + timedelta(hours=1)).astimezone(tz).strftime(FORMAT),
        "Amount": "3.00",
    }


def fill_lot(core, place, count: int) -> None:
    """``count`` active portal permits in the lot for the next hours."""
    with core.db.session() as s:
        for n in range(count):
            s.add(
                Permit(
                    number=f"T-FILL{n:04d}",
                    kind=PermitKind.TEMPORARY,
                    status=PermitStatus.ACTIVE,
                    lot_id=place["lot"],
                    valid_from=now() - timedelta(hours=1),
                    valid_to=now() + timedelta(hours=3),
                )
            )


def test_a_full_lot_refuses_a_partner_permit_with_a_409(client, core, place):
    key = issue_key(core, "permits:write", sources=("api",))
    fill_lot(core, place, 9)
    assert client.post("/api/v1/permits", json=api_body("A-1"), headers=bearer(key)).status_code == 201
    refused = client.post("/api/v1/permits", json=api_body("A-2"), headers=bearer(key))
    assert refused.status_code == 409 and refused.is_json
    assert refused.json == {
        "error": "Visitor Lot has no space left for that time: all 10 permits it allows are taken. "
        "Nothing was recorded."
    }
    assert refused.headers["Cache-Control"] == "no-store"
    retried = client.post("/api/v1/permits", json=api_body("A-1"), headers=bearer(key))
    assert retried.status_code == 200  # the permit recorded before is answered, full lot or not
    with core.db.session() as s:
        assert s.scalar(select(Permit).where(Permit.external_id == "A-2")) is None


def test_a_full_zone_refuses_an_oc_toma_push_with_a_409(client, core, place):
    key = issue_key(core, "permits:write", sources=("paystation",))
    tz = core.settings.tz
    for n in range(4):
        assert client.post(OC_TOMA, json=push_body(key, f"Z-{n}", tz)).status_code == 200
    refused = client.post(OC_TOMA, json=push_body(key, "Z-5", tz))
    assert refused.status_code == 409 and refused.is_json
    assert "Zone 1001 has no space left for that time" in refused.json["error"]
    with core.db.session() as s:
        assert s.scalar(select(Permit).where(Permit.external_id == "Z-5")) is None


def test_an_over_allowance_key_records_past_the_limit_flagged(client, core, place):
    key = issue_key(core, "permits:write", "permits:over-allowance", sources=("api", "paystation"))
    fill_lot(core, place, 10)
    recorded = client.post("/api/v1/permits", json=api_body("A-1"), headers=bearer(key))
    assert recorded.status_code == 201 and recorded.json["over_allowance"] is True
    with core.db.session() as s:
        s.get(LotZone, place["zone"]).capacity = 0
    pushed = client.post(OC_TOMA, json=push_body(key, "Z-1", core.settings.tz))
    assert pushed.status_code == 200 and pushed.json["permit"]["over_allowance"] is True


# --- every channel at once -------------------------------------------------------------------------

CHECKOUTS = 8
CART_BUYERS = 6
API_LOT = 8
OVER_LOT = 2
OC_TOMA_PUSHES = 6
API_ZONE = 4
PARKMOBILE = 3


def test_every_channel_at_once_sells_exactly_the_free_spaces(app, core, place, make_user):
    """Checkouts, carts, partner lot permits (and a key allowed past the limit), OC-TOMA pushes,
    partner zone permits and a ParkMobile import, each in its own thread and connection, released
    together. The lot has 10 spaces and its zone 4: exactly that many are sold, each other buyer is
    told clearly, the over-allowance permits are flagged, and pulled ParkMobile records past the
    zone's capacity are kept and flagged."""
    tz = core.settings.tz
    lot_key = issue_key(core, "permits:write", sources=("api",))
    zone_key = issue_key(core, "permits:write", sources=("paystation", "hotspot"))
    over_key = issue_key(core, "permits:write", "permits:over-allowance", sources=("api",))
    buyers = [make_user(user_type="student") for _ in range(CART_BUYERS)]
    with core.db.session() as s:
        for buyer in buyers:
            carts.add_standard_item(s, buyer.id, place["term"], [f"CART {buyer.id}"], tz, now())
    receipt = ReceiptContext(name="Guest", site_name="Campus", base_url="https://parking.test", tz=tz)
    card = Card(SUCCESS_CARD, 12, now().year + 2, "123")
    provider = SandboxProvider(core.db)
    total = CHECKOUTS + CART_BUYERS + API_LOT + OVER_LOT + OC_TOMA_PUSHES + API_ZONE + 1
    start = threading.Barrier(total)
    outcomes: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    guard = threading.Lock()

    def run(channel: str, action) -> None:
        try:
            start.wait(timeout=60)
            outcome = action()
        except BaseException as exc:  # any crash is a failure of the test, reported below
            with guard:
                failures.append(exc)
            return
        with guard:
            outcomes.append((channel, outcome))

    def checkout(n: int) -> str:
        order = TemporaryOrder(
            lot_id=place["lot"],
            product_id=place["hourly"],
            duration="60",
            plate=f"GST {n:03d}",
            email=f"guest{n}@example.com",
        )
        result = quick_checkout.buy(
            core.db,
            provider,
            order,
            SUCCESS_CARD,
            f"12/{(now().year + 2) % 100}",
            "123",
            idempotency_key=f"checkout-{n}",
            user_id=None,
            receipt=receipt,
            backend=email.OutboxBackend(),
            now=now(),
        )
        assert result.status == "paid" or (result.status == "sold_out" and "sold out" in result.message), (
            result
        )
        return "sold" if result.paid else "refused"

    def cart(user_id: int) -> str:
        result = carts.checkout_cart(
            core.db,
            provider,
            user_id,
            card,
            f"cart-{user_id}",
            receipt=receipt,
            backend=email.OutboxBackend(),
            now=now(),
        )
        assert result.status in ("paid", "sold_out"), result
        assert result.status == "paid" or "sold out" in result.message, result
        return "sold" if result.status == "paid" else "refused"

    def partner(path: str, body: dict[str, object], headers: dict[str, str]) -> str:
        response = app.test_client().post(path, json=body, headers=headers)
        assert response.status_code in (200, 201, 409), response.get_data(as_text=True)
        if response.status_code == 409:
            assert response.is_json and "has no space left for that time" in response.json["error"]
            return "refused"
        permit = response.json.get("permit", response.json)
        return "flagged" if permit["over_allowance"] else "sold"

    def parkmobile() -> str:
        moment = now()
        records = [
            pay_stations.IncomingRecord(
                f"PM-{n}",
                f"PM {n}",
                "1001",
                moment - timedelta(minutes=5),
                moment + timedelta(hours=1),
                300,
                "CAD",
            )
            for n in range(PARKMOBILE)
        ]
        with core.db.session() as s:
            result = pay_stations.import_records(s, "parkmobile", records, moment, core.settings.tz)
        assert result.created == PARKMOBILE
        return "imported"

    threads = [threading.Thread(target=run, args=("lot", lambda n=n: checkout(n))) for n in range(CHECKOUTS)]
    threads += [threading.Thread(target=run, args=("lot", lambda u=b.id: cart(u))) for b in buyers]
    threads += [
        threading.Thread(
            target=run,
            args=("lot", lambda n=n: partner("/api/v1/permits", api_body(f"API-{n}"), bearer(lot_key))),
        )
        for n in range(API_LOT)
    ]
    threads += [
        threading.Thread(
            target=run,
            args=("over", lambda n=n: partner("/api/v1/permits", api_body(f"OVER-{n}"), bearer(over_key))),
        )
        for n in range(OVER_LOT)
    ]
    threads += [
        threading.Thread(
            target=run, args=("zone", lambda n=n: partner(OC_TOMA, push_body(zone_key, f"OCT-{n}", tz), {}))
        )
        for n in range(OC_TOMA_PUSHES)
    ]
    threads += [
        threading.Thread(
            target=run,
            args=(
                "zone",
                lambda n=n: partner(
                    "/api/v1/permits",
                    api_body(f"HS-{n}", source="hotspot", lot=None, zone="1001"),
                    bearer(zone_key),
                ),
            ),
        )
        for n in range(API_ZONE)
    ]
    threads.append(threading.Thread(target=run, args=("parkmobile", parkmobile)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(outcomes) == total

    told = Counter(outcomes)
    # The over-allowance key is never refused; it takes free spaces like anyone while there are some.
    assert told[("over", "refused")] == 0
    lot_sold = told[("lot", "sold")] + told[("over", "sold")]
    with core.db.session() as s:
        pulled = s.scalars(select(Permit).where(Permit.source == PermitSource.PARKMOBILE)).all()
        # ParkMobile's sessions are sold in the lot that schedules their zone: both count them.
        assert {(p.lot_id, p.zone_id) for p in pulled} == {(place["lot"], place["zone"])}
        pulled_room = sum(not p.over_allowance for p in pulled)
        in_lot = s.scalars(
            select(Permit).where(
                Permit.lot_id == place["lot"],
                Permit.status != PermitStatus.CANCELLED,
                Permit.source != PermitSource.PARKMOBILE,
            )
        ).all()
        assert sum(not p.over_allowance for p in in_lot) == lot_sold
        assert sum(p.over_allowance for p in in_lot) == told[("over", "flagged")]
        zone_permits = s.scalars(
            select(Permit).where(Permit.zone_id == place["zone"], Permit.source != PermitSource.PARKMOBILE)
        ).all()
        assert s.scalars(select(PayStationRecord)).all() == []
    assert len(pulled) == PARKMOBILE
    # The lot's 10 places went to sales and pulled sessions alike: never more (a pulled session
    # past a limit is flagged), and none left while anyone was refused (pulled ones take a space
    # even when flagged, for the zone may be what was full).
    assert lot_sold + pulled_room <= 10 <= lot_sold + PARKMOBILE
    assert told[("lot", "refused")] == CHECKOUTS + CART_BUYERS + API_LOT - told[("lot", "sold")]
    assert len(zone_permits) == told[("zone", "sold")] and told[("zone", "flagged")] == 0
    assert told[("zone", "refused")] == OC_TOMA_PUSHES + API_ZONE - len(zone_permits)
    # The zone's 4 places went to pushes and pulled sessions alike, the same way.
    assert len(zone_permits) + pulled_room <= 4 <= len(zone_permits) + PARKMOBILE
    assert all(not p.over_allowance for p in zone_permits)
