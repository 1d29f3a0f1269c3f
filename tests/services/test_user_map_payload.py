"""What the Real-Time Map's script draws (``maps.user_map_payload``), for a sold-out lot group:
no Book button into a checkout that can only refuse, but "sold out", the nearest group that still
has permits, and the waitlist (a guest is asked to log in first). The browser journeys
(tests/browser/test_realtime_map.py) check the same popup as drawn."""

from __future__ import annotations

from typing import Any

from dashboard.services.maps import UserMapGroup, UserMapLot, nearest_with_space, user_map_payload


def group(group_id: int, name: str, lat: float, lon: float, *percents: float | None, **kw) -> UserMapGroup:
    lots = tuple(
        UserMapLot(
            lot_id=group_id * 10 + n,
            name=f"{name} lot {n}",
            percent_full=percent,
            offers_standard=False,
            offers_temporary=True,
        )
        for n, percent in enumerate(percents)
    )
    return UserMapGroup(
        group_id=group_id,
        name=name,
        color="#123456",
        lat=lat,
        lon=lon,
        status=kw.get("status", "open"),
        percent_available=40.0,
        lots=lots,
    )


FULL = group(1, "Full Garage", 43.4760, -80.5480, 100.0, 104.0)
NEAR = group(2, "Near Lots", 43.4765, -80.5485, 20.0)
FAR = group(3, "Far Lots", 43.4900, -80.5700, 10.0)
NEAR_BUT_FULL = group(4, "Next Door", 43.4761, -80.5481, 100.0)
NEAR_BUT_CLOSED = group(5, "Closed Yard", 43.4762, -80.5482, 0.0, status="closed")


def drawn(groups: list[UserMapGroup], *, logged_in: bool = False) -> dict[int, dict[str, Any]]:
    payload = user_map_payload(groups, logged_in=logged_in)
    return {feature["id"]: feature["properties"] for feature in payload["pins"]["features"]}


def test_the_nearest_group_with_space_is_offered() -> None:
    groups = [FULL, FAR, NEAR, NEAR_BUT_FULL, NEAR_BUT_CLOSED]
    assert nearest_with_space(FULL, groups) == NEAR
    assert nearest_with_space(FULL, [FULL, NEAR_BUT_FULL, NEAR_BUT_CLOSED]) is None


def test_a_guest_sees_sold_out_another_lot_and_log_in_for_the_waitlist() -> None:
    full = drawn([FULL, FAR, NEAR])[1]
    assert full["sold_out"] is True
    assert [lot["figure"] for lot in full["lots"]] == ["sold out", "sold out"]  # each lot says so too
    assert full["nearest"] == {"name": "Near Lots", "href": "/lot-groups/2"}
    assert full["login"] == "/login?next=%2Flot-groups%2F1" and full["href"] == "/lot-groups/1"


def test_a_signed_in_user_is_sent_to_the_waitlist_and_no_nearby_group_is_not_invented() -> None:
    alone = drawn([FULL, NEAR_BUT_FULL], logged_in=True)
    assert alone[1]["sold_out"] is True and alone[1]["nearest"] is None


def test_a_group_with_one_lot_left_still_books_and_marks_the_full_lot() -> None:
    partly = group(6, "Partly", 43.47, -80.54, 100.0, 50.0)
    shown = drawn([partly, NEAR])[6]
    assert shown["sold_out"] is False and shown["nearest"] is None
    assert [(lot["figure"], lot["sold_out"]) for lot in shown["lots"]] == [
        ("sold out", True),
        ("50% of permits taken", False),
    ]


def test_a_closed_or_unlocated_group_and_the_map_bounds() -> None:
    nowhere = UserMapGroup(7, "Nowhere", "#000000", None, None, "open", 50.0, ())
    payload = user_map_payload([NEAR_BUT_CLOSED, FAR, nowhere], logged_in=False)
    shown = {f["id"]: f for f in payload["pins"]["features"]}
    assert set(shown) == {5, 3}  # a group without a location has no pin
    assert shown[5]["properties"]["text"] == "Closed" and shown[3]["properties"]["text"] == "40% available"
    assert shown[3]["geometry"] == {"type": "Point", "coordinates": [-80.57, 43.49]}  # GeoJSON: lon, lat
    assert payload["bounds"] == [[43.4762, -80.57], [43.49, -80.5482]]
    assert user_map_payload([], logged_in=False)["bounds"] is None
