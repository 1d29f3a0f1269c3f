"""What the partner API tests share: a lot with a HotSpot zone, and keys issued as an admin would."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.services import api_keys
from models import Lot, LotZone, LotZoneSchedule


@dataclass(frozen=True)
class Place:
    lot_id: int
    other_lot_id: int
    zone: str


def make_place(core) -> Place:
    """North Garage (code NG) has zone 1001 every day, all day; South Lot has no zone."""
    with core.db.session() as s:
        north = Lot(name="North Garage", code="NG", capacity=50)
        south = Lot(name="South Lot", code="SL", capacity=20)
        zone = LotZone(name="1001")
        s.add_all([north, south, zone])
        s.flush()
        s.add(LotZoneSchedule(lot_id=north.id, zone_id=zone.id))
        return Place(north.id, south.id, zone.name)


ALL_SOURCES = ("api", "hotspot", "paystation")


def issue_key(core, *scopes: str, revoked: bool = False, sources: tuple[str, ...] = ALL_SOURCES) -> str:
    """A key as an admin issues it; by default it acts for every partner source."""
    with core.db.session() as s:
        issued = api_keys.create_key(s, "partner", list(scopes), None, list(sources))
        if revoked:
            api_keys.revoke_key(s, issued.view.id, None, issued.view.created_at)
    return issued.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
