"""The staff body's wording (``dashboard.services.lot_status``), from plain states: relative times
are worded against the moment the body is built, and a group without a location is listed, not
pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.services.lot_status import lot_status_payload
from dashboard.services.occupancy import Figure, GroupOccupancy, LotPermits
from models import OccupancySource

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def state(group_id: int, name: str, *, lat: float | None, physical: Figure | None) -> GroupOccupancy:
    return GroupOccupancy(
        group_id=group_id,
        name=name,
        map_color="#123456",
        latitude=lat,
        longitude=None if lat is None else -80.5,
        show_on_map=True,
        closed=False,
        physical=physical,
        permits=Figure(OccupancySource.PERMITS, 3, 10, NOW),
        lots=(LotPermits(group_id * 10, f"{name} Lot", 3, 10, True, False),),
    )


def test_times_are_worded_as_of_the_build_and_unlocated_groups_are_listed() -> None:
    counted = Figure(OccupancySource.DEVICES, 30, 120, NOW - timedelta(minutes=2), flag="odd")
    body = lot_status_payload(
        [state(1, "North", lat=43.47, physical=counted), state(2, "Nowhere", lat=None, physical=None)], NOW
    )
    north, nowhere = body["groups"]
    assert north["physical"]["updated"] == "updated 2 min ago"
    assert north["physical"]["origin"] == "Live sensors · updated 2 min ago"
    assert north["physical"]["officer"] == " · 25% full · 90 free"
    assert north["lots"][0]["fullness"] == 25.0  # the group's physical percent
    assert nowhere["physical"] is None and nowhere["lots"][0]["fullness"] == 30.0  # the permits'
    assert [f["id"] for f in body["pins"]["features"]] == [1]
    assert body["hidden"] == "Not on the map (hidden or no location): Nowhere."
    later = lot_status_payload([state(1, "North", lat=43.47, physical=counted)], NOW + timedelta(hours=1))
    assert later["groups"][0]["physical"]["updated"] == "updated 1 h ago"
    assert later["hidden"] is None


def test_no_pin_no_bounds() -> None:
    body = lot_status_payload([state(2, "Nowhere", lat=None, physical=None)], NOW)
    assert body["bounds"] is None and body["pins"]["features"] == []
