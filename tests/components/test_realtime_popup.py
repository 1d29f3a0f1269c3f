"""The Real-Time Map popup of a sold-out lot group: no Book button into a checkout that can only
refuse, but "sold out", the nearest group that still has permits, and the waitlist (a guest is
asked to log in first)."""

from __future__ import annotations

import json

from dashboard.components import realtime_map
from dashboard.components.realtime_map import _plain, _popup_content, _popup_height, nearest_with_space
from dashboard.services.maps import UserMapGroup, UserMapLot


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


def shown(content) -> str:
    return json.dumps(_plain(content))


def test_the_nearest_group_with_space_is_offered() -> None:
    groups = [FULL, FAR, NEAR, NEAR_BUT_FULL, NEAR_BUT_CLOSED]
    assert nearest_with_space(FULL, groups) == NEAR
    assert nearest_with_space(FULL, [FULL, NEAR_BUT_FULL, NEAR_BUT_CLOSED]) is None


def test_a_guest_sees_sold_out_another_lot_and_log_in_for_the_waitlist() -> None:
    text = shown(_popup_content(FULL, NEAR, logged_in=False))
    assert "Book permit" not in text and "/checkout/temp/" not in text
    assert "Sold out" in text and text.count(" sold out") == 2  # each lot says so too
    assert "Near Lots" in text and '"/lot-groups/2"' in text
    assert "/login?next=%2Flot-groups%2F1" in text and "to join the waitlist" in text


def test_a_signed_in_user_is_sent_to_the_waitlist_and_no_nearby_group_is_not_invented() -> None:
    text = shown(_popup_content(FULL, None, logged_in=True))
    assert "Join a waitlist" in text and '"/lot-groups/1"' in text and "/login" not in text
    assert "Nearest with space" not in text


def test_a_group_with_one_lot_left_still_books_and_marks_the_full_lot() -> None:
    partly = group(6, "Partly", 43.47, -80.54, 100.0, 50.0)
    text = shown(_popup_content(partly, NEAR, logged_in=False))
    assert "Book permit" in text and "Sold out:" not in text
    assert " sold out" in text and "50% of permits taken" in text


def test_the_popup_reserves_room_for_the_sold_out_offer() -> None:
    open_twin = group(1, "Full Garage", 43.4760, -80.5480, 10.0, 20.0)
    assert _popup_height(FULL) > _popup_height(open_twin)


def test_an_opening_popup_stays_clear_of_the_zoom_buttons() -> None:
    """Leaflet's zoom buttons sit in the map's top-left corner, about 80 px tall."""
    marker = shown(realtime_map._marker(FULL))
    assert '"autoPanPaddingTopLeft": [10, 88]' in marker
