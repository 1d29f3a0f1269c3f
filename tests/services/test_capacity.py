"""Manage Capacity: the suggestion rule at its boundaries, the sensor history it reads (physical
sources of the lot's group, in the window, clamped at 100%), no advice without evidence, and
allowance changes: validated, audited with old and new, warned about below sold, announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import capacity, email, lots, waitlist
from dashboard.services.capacity import MIN_READINGS, MIN_SPAN, Peak
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import CHANNEL
from models import (
    AuditLog,
    Lot,
    LotGroup,
    OccupancySnapshot,
    OccupancySource,
    Permit,
    PermitKind,
    PermitStatus,
    Role,
)

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
ENOUGH = Peak(55.0, MIN_READINGS, NOW - MIN_SPAN)


# --- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak_percent", "sold", "margin", "expected", "words"),
    [
        (55.0, 100, 10, 163, "you can sell about 63 more, 163 in all"),  # floor(100 × 0.9 / 0.55)
        (50.0, 50, 0, 100, "about 50 more, 100 in all"),  # exact: no rounding down
        (90.0, 100, 10, 100, "sell no more than the 100 sold now"),  # exactly at the target
        (95.0, 100, 10, 100, "sell no more than the 100 sold now"),  # never below sold
        (10.0, 100, 10, 300, "capped at 3× capacity"),  # 900 → at most 3 × 100
        (0.0, 10, 10, 300, "capped at 3× capacity"),  # nobody seen: still bounded
    ],
)
def test_the_suggestion_rule(peak_percent, sold, margin, expected, words):
    suggestion = capacity.suggest(100, sold, Peak(peak_percent, 500, NOW - timedelta(days=28)), NOW, margin)
    assert suggestion.allowance == expected
    assert words in suggestion.sentence
    assert f"Peak physical use {peak_percent:.0f}% with {sold} sold" in suggestion.sentence


def test_no_suggestion_without_enough_evidence():
    def advice(peak, sold=100, capacity_=100, in_group=True):
        return capacity.suggest(capacity_, sold, peak, NOW, 10, in_group=in_group)

    assert advice(ENOUGH).allowance == 163
    too_few = advice(Peak(55.0, MIN_READINGS - 1, NOW - MIN_SPAN))
    assert too_few.allowance is None and "Not enough sensor history" in too_few.sentence
    too_recent = advice(Peak(55.0, 1000, NOW - MIN_SPAN + timedelta(seconds=1)))
    assert too_recent.allowance is None and "over 6 days" in too_recent.sentence
    assert "no sensor readings" in advice(None).sentence
    assert advice(ENOUGH, sold=0).allowance is None
    assert "No permits are valid now" in advice(ENOUGH, sold=0).sentence
    assert "No capacity" in advice(ENOUGH, capacity_=0).sentence
    assert "Not in a lot group" in advice(ENOUGH, in_group=False).sentence


# --- the overview --------------------------------------------------------------------------------


@pytest.fixture
def site(session) -> dict[str, int]:
    """A garage group with two lots (80 and 20 spaces) and a lot outside every group."""
    group = LotGroup(name="North Garage")
    quiet = LotGroup(name="Quiet Garage")
    session.add_all([group, quiet])
    session.flush()
    big = Lot(name="North A", capacity=80, lot_group_id=group.id)
    small = Lot(name="North B", capacity=20, permits_allowed=30, lot_group_id=group.id)
    alone = Lot(name="Loose Lot", capacity=10)
    fresh = Lot(name="Quiet Lot", capacity=10, lot_group_id=quiet.id)
    session.add_all([big, small, alone, fresh])
    session.flush()
    email.ensure_default_templates(session)
    session.commit()
    return {"group": group.id, "quiet": quiet.id, "big": big.id, "small": small.id, "alone": alone.id}


def snapshot(session, group_id, occupied, cap, at, source=OccupancySource.MISTALL) -> None:
    session.add(
        OccupancySnapshot(
            lot_group_id=group_id, source=source, occupied=occupied, capacity=cap, recorded_at=at
        )
    )


def history(session, group_id, peak_occupied=55, days=10) -> None:
    """A reading every 6 hours over ``days`` days, 40 of 100 full, one reading at the peak."""
    for step in range(days * 4):
        snapshot(session, group_id, 40, 100, NOW - timedelta(hours=6 * step))
    snapshot(session, group_id, peak_occupied, 100, NOW - timedelta(days=2))
    session.commit()


def sell(session, lot_id, count, start=NOW - timedelta(days=1)) -> None:
    for n in range(count):
        session.add(
            Permit(
                number=f"S-{lot_id}-{n}-{start.timestamp():.0f}",
                kind=PermitKind.STANDARD,
                status=PermitStatus.ACTIVE,
                lot_id=lot_id,
                valid_from=start,
                valid_to=start + timedelta(days=30),
            )
        )
    session.commit()


def by_name(rows) -> dict[str, capacity.LotCapacity]:
    return {row.name: row for row in rows}


def test_the_overview_reads_the_groups_physical_peak(session, site):
    history(session, site["group"])
    snapshot(
        session, site["group"], 100, 100, NOW - timedelta(days=1), OccupancySource.PERMITS
    )  # not a sensor
    snapshot(session, site["group"], 99, 100, NOW - timedelta(days=40))  # outside the window
    snapshot(session, site["group"], 55, 100, NOW + timedelta(hours=1))  # not yet
    session.commit()
    sell(session, site["big"], 40)
    sell(session, site["small"], 20)
    rows = by_name(capacity.overview(session, NOW, days=28, margin_percent=10))
    assert list(rows) == ["Loose Lot", "North A", "North B", "Quiet Lot"]
    big = rows["North A"]
    assert (big.capacity, big.allowance, big.sold, big.available, big.waiting) == (80, 80, 40, 40, 0)
    assert big.peak.percent == 55.0 and big.peak.readings == 41
    assert big.estimated_peak_cars == 44  # 55% of 80 spaces: sensors count the group, not the lot
    assert big.suggestion.allowance == 65  # floor(40 × 0.9 / 0.55)
    small = rows["North B"]
    assert (small.permits_allowed, small.allowance, small.available) == (30, 30, 10)
    assert small.suggestion.allowance == 32  # floor(20 × 0.9 / 0.55)
    assert rows["Loose Lot"].peak is None and "Not in a lot group" in rows["Loose Lot"].suggestion.sentence
    assert "no sensor readings" in rows["Quiet Lot"].suggestion.sentence

    # A wider margin suggests less; a shorter window that misses the peak suggests more.
    assert by_name(capacity.overview(session, NOW, margin_percent=30))["North A"].suggestion.allowance == 50
    week = by_name(capacity.overview(session, NOW, days=7))["North A"]
    assert week.peak.percent == 55.0


def test_counts_above_capacity_count_as_full(session, site):
    history(session, site["group"], peak_occupied=130)
    sell(session, site["big"], 40)
    row = capacity.lot_capacity(session, site["big"], NOW)
    assert row.peak.percent == 100.0
    assert row.suggestion.allowance == 40  # full at peak: sell no more


def test_window_and_margin_are_checked(session, site):
    with pytest.raises(ValidationFailed) as caught:
        capacity.overview(session, NOW, days=3, margin_percent=80)
    assert set(caught.value.errors) == {"days", "margin"}
    with pytest.raises(NotFound):
        capacity.lot_capacity(session, 999_999, NOW)


# --- changing the allowance ----------------------------------------------------------------------


@pytest.fixture
def policy() -> waitlist.OfferPolicy:
    return waitlist.OfferPolicy(
        timedelta(hours=24),
        "Campus",
        "https://parking.test",
        ZoneInfo("America/Toronto"),
        email.OutboxBackend(),
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "enter the number of permits allowed"),
        ("abc", "enter a whole number"),
        ("1.5", "enter a whole number"),
        (1.5, "enter a whole number"),
        (True, "enter a whole number"),
        (None, "enter a whole number"),
        ("-1", "cannot be negative"),
        (-1, "cannot be negative"),
        (100_001, "at most 100,000"),
    ],
)
def test_the_allowance_must_be_a_whole_number(session, site, make_user, policy, typed, message):
    manager = make_user(Role.MANAGER)
    with pytest.raises(ValidationFailed) as caught:
        capacity.set_allowance(session, site["big"], typed, manager.id, NOW, policy)
    assert caught.value.errors == {"allowance": message}
    assert session.scalars(select(AuditLog)).all() == []


def test_a_change_is_audited_and_announced(core, session, site, make_user, policy):
    manager = make_user(Role.MANAGER)
    saved = capacity.set_allowance(session, site["big"], " 120 ", manager.id, NOW, policy)
    session.commit()
    assert (saved.old, saved.new, saved.changed, saved.warning) == (80, 120, True, None)
    assert session.get(Lot, site["big"]).permits_allowed == 120
    entry = session.scalars(select(AuditLog)).one()
    assert (entry.action, entry.entity_type, entry.entity_id, entry.actor_id) == (
        "lot.allowance",
        "lot",
        str(site["big"]),
        manager.id,
    )
    assert entry.changes == {"permits_allowed": [None, 120]}

    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        capacity.announce(core.redis, saved)
        message = pubsub.get_message(timeout=1) or pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert message is not None
    assert json.loads(message["data"])["group_id"] == site["group"]

    same = capacity.set_allowance(session, site["big"], 120, manager.id, NOW, policy)
    assert not same.changed and same.announce_groups == ()
    assert len(session.scalars(select(AuditLog)).all()) == 1


def test_a_lot_without_a_group_announces_nothing(core, session, site, make_user, policy):
    saved = capacity.set_allowance(session, site["alone"], 5, None, NOW, policy)
    assert saved.changed and saved.announce_groups == ()


def test_lowering_below_sold_warns_and_cancels_nothing(session, site, make_user, policy):
    sell(session, site["big"], 40)
    saved = capacity.set_allowance(session, site["big"], 30, make_user(Role.MANAGER).id, NOW, policy)
    session.commit()
    assert saved.changed and saved.sold == 40
    assert "40 permits are valid now, more than the 30 allowed: none is cancelled" in saved.warning
    statuses = set(session.scalars(select(Permit.status).where(Permit.lot_id == site["big"])))
    assert statuses == {PermitStatus.ACTIVE}
    assert capacity.lot_capacity(session, site["big"], NOW).available == 0


def test_history_lists_allowance_changes_from_this_page_and_the_lot_editor(session, site, make_user, policy):
    manager = make_user(Role.MANAGER, email="manager@campus.test")
    admin = make_user(Role.ADMIN, email="admin@campus.test")
    capacity.set_allowance(session, site["big"], 90, manager.id, NOW, policy)
    session.commit()
    lots.update_general(
        session,
        site["big"],
        lots.GeneralFields(name="North A", capacity=80, permits_allowed=100, lot_group_id=site["group"]),
        admin.id,
    )
    lots.update_general(  # a change of something else is not an allowance change
        session,
        site["big"],
        lots.GeneralFields(
            name="North A",
            description="Level 2",
            capacity=80,
            permits_allowed=100,
            lot_group_id=site["group"],
        ),
        admin.id,
    )
    session.commit()
    changes = capacity.history(session, site["big"])
    assert [(c.actor_email, c.action, c.old, c.new) for c in changes] == [
        ("admin@campus.test", "lot.update", 90, 100),
        ("manager@campus.test", "lot.allowance", None, 90),
    ]
    assert capacity.history(session, site["small"]) == []
    with pytest.raises(NotFound):
        capacity.history(session, 999_999)
