"""Manage Capacity on constructed history: a term lot's oversell ratio from its peak hour (against
the permits valid then), a visitor lot's spaces kept for visitors, never below sold, no advice
without evidence (said plainly), and allowance changes: validated, refused below sold, flagged
when they leave few permits to sell, audited with old and new, announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import capacity, email, lots, waitlist
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

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def site(session) -> dict[str, int]:
    """North Garage (100 spaces counted) with a term lot of 100 spaces, a second term lot of 20
    (30 allowed) and a visitor lot of 50; a quiet group without readings; a lot in no group."""
    group = LotGroup(name="North Garage")
    quiet = LotGroup(name="Quiet Garage")
    session.add_all([group, quiet])
    session.flush()
    big = Lot(name="North A", capacity=100, lot_group_id=group.id)
    small = Lot(name="North B", capacity=20, permits_allowed=30, lot_group_id=group.id)
    visitors = Lot(
        name="North Pay", capacity=50, lot_group_id=group.id, sells_standard=False, sells_temporary=True
    )
    alone = Lot(name="Loose Lot", capacity=10)
    fresh = Lot(name="Quiet Lot", capacity=10, lot_group_id=quiet.id)
    session.add_all([big, small, visitors, alone, fresh])
    session.flush()
    email.ensure_default_templates(session)
    session.commit()
    return {
        "group": group.id,
        "quiet": quiet.id,
        "big": big.id,
        "small": small.id,
        "visitors": visitors.id,
        "alone": alone.id,
        "fresh": fresh.id,
    }


def snapshot(session, group_id, occupied, cap, at, source=OccupancySource.MISTALL) -> None:
    session.add(
        OccupancySnapshot(
            lot_group_id=group_id, source=source, occupied=occupied, capacity=cap, recorded_at=at
        )
    )


def history(session, group_id, days=14, level=40, peaks=((55, NOW - timedelta(days=2)),)) -> None:
    """A reading every hour for ``days`` days at ``level`` of 100, and the ``peaks`` (occupied, time)."""
    for step in range(1, days * 24 + 1):
        snapshot(session, group_id, level, 100, NOW - timedelta(hours=step) + timedelta(minutes=5))
    for occupied, at in peaks:
        snapshot(session, group_id, occupied, 100, at)
    session.commit()


def sell(
    session, lot_id, count, start=NOW - timedelta(days=30), kind=PermitKind.STANDARD, hours=24 * 60
) -> None:
    for n in range(count):
        session.add(
            Permit(
                number=f"S-{lot_id}-{n}-{start.timestamp():.0f}",
                kind=kind,
                status=PermitStatus.ACTIVE,
                lot_id=lot_id,
                valid_from=start,
                valid_to=start + timedelta(hours=hours),
            )
        )
    session.commit()


def advice(session, lot_id, **options) -> capacity.LotCapacity:
    return capacity.lot_capacity(session, lot_id, NOW, **options)


# --- term lots: the oversell ratio history supports ---------------------------------------------


def test_a_term_lot_may_oversell_by_the_ratio_seen_at_its_peak(session, site):
    history(session, site["group"])
    sell(session, site["big"], 100)
    row = advice(session, site["big"])
    peak = row.evidence.peak
    assert (peak.at, peak.percent, peak.cars, peak.permits) == (NOW - timedelta(days=2), 55.0, 55, 100)
    # 55 cars for 100 permits: 100 spaces × 90% / 0.55 = 163 permits, 1.63 per space
    assert (row.suggestion.allowance, row.suggestion.kind) == (163, "term")
    assert row.suggestion.headline == "Sell up to 163 (1.63 per space)"
    assert row.suggestion.sentence == (
        "At the busiest hour (Saturday 28 November 2026 at 15:00) about 55 cars parked for 100 valid "
        "permits, so up to 163 permits (1.63 per space) keep that hour at 90% full: 63 more than sold."
    )
    assert row.peak_percent == 55.0
    # A wider margin suggests less.
    assert advice(session, site["big"], margin_percent=30).suggestion.allowance == 127  # 70 / 0.55


def test_an_empty_peak_is_still_bounded(session, site):
    """No car at the busiest hour would allow any number: the advice stops at 3× capacity."""
    history(session, site["group"], level=0, peaks=())
    sell(session, site["big"], 10)
    row = advice(session, site["big"])
    assert row.suggestion.allowance == 300
    assert (
        "up to 300 permits (3.00 per space, the most this page suggests: 3× capacity)"
        in row.suggestion.sentence
    )


def test_the_ratio_is_read_against_the_permits_valid_at_that_hour(session, site):
    """50 permits were valid at the peak; 50 more were sold since. The show-up rate is 55 for 50,
    so 100 spaces at 90% hold 81 permits: fewer than the 100 sold, so sell no more."""
    history(session, site["group"])
    sell(session, site["big"], 50)
    sell(session, site["big"], 50, start=NOW - timedelta(days=1))
    row = advice(session, site["big"])
    assert (row.evidence.peak.cars, row.evidence.peak.permits, row.sold) == (55, 50, 100)
    assert (row.suggestion.allowance, row.suggestion.headline) == (100, "Sell no more")
    assert "so 81 permits would keep that hour at 90% full: 100 are sold already" in row.suggestion.sentence


def test_hours_with_too_few_permits_say_nothing_about_holders(session, site):
    """Early in a term three permits beside a busy group would read as 27 cars per permit."""
    history(session, site["group"], peaks=((80, NOW - timedelta(days=10)), (50, NOW - timedelta(days=1))))
    sell(session, site["big"], 3)
    sell(session, site["big"], 97, start=NOW - timedelta(days=3))
    row = advice(session, site["big"])
    assert row.evidence.peak.at == NOW - timedelta(days=1)
    assert row.suggestion.allowance == 180  # 90 × 100 / 50


def test_the_chart_has_each_days_busiest_hour(session, site):
    history(session, site["group"], days=10)
    sell(session, site["big"], 100)
    days = advice(session, site["big"]).evidence.days
    assert len(days) == 11  # ten days back from 15:00, in UTC: 11 calendar days touched
    assert [hour.at for hour in days] == sorted(hour.at for hour in days)
    assert max(hour.cars for hour in days) == 55 and all(hour.permits == 100 for hour in days)


def test_counts_above_capacity_count_as_full_and_only_sensors_count(session, site):
    history(session, site["group"], peaks=((130, NOW - timedelta(days=2)),))
    snapshot(session, site["group"], 100, 100, NOW - timedelta(days=1), OccupancySource.PERMITS)
    snapshot(session, site["group"], 99, 100, NOW - timedelta(days=40))  # outside the window
    snapshot(session, site["group"], 99, 100, NOW + timedelta(hours=1))  # not yet
    session.commit()
    sell(session, site["big"], 80)
    row = advice(session, site["big"])
    assert row.evidence.peak.percent == 100.0 and row.evidence.readings == 14 * 24 + 1
    assert row.suggestion.allowance == 80  # full at the busiest hour: sell no more


# --- visitor lots: the spaces to keep for visitors ----------------------------------------------


def test_a_visitor_lot_keeps_its_spaces_for_visitors_not_the_permits_of_this_minute(session, site):
    history(session, site["group"])
    sell(session, site["visitors"], 5, start=NOW - timedelta(hours=1), kind=PermitKind.TEMPORARY, hours=2)
    sell(
        session,
        site["visitors"],
        12,
        start=NOW - timedelta(days=2, hours=1),
        kind=PermitKind.TEMPORARY,
        hours=3,
    )
    row = advice(session, site["visitors"])
    assert row.sold == 5
    assert (row.suggestion.allowance, row.suggestion.kind) == (45, "visitors")
    assert row.suggestion.headline == "Keep 45 for visitors"
    assert row.suggestion.sentence == (
        "At the busiest hour (Saturday 28 November 2026 at 15:00) the lot was about 55% full with 12 visitor "
        "permits; keep 45 of the 50 spaces for visitors (10% left for pay-station and zone parkers)."
    )


def test_advice_is_never_below_sold(session, site):
    history(session, site["group"], peaks=((95, NOW - timedelta(days=2)),))
    sell(session, site["big"], 100)
    sell(session, site["visitors"], 48, start=NOW - timedelta(hours=1), kind=PermitKind.TEMPORARY, hours=2)
    assert advice(session, site["big"]).suggestion.allowance == 100
    assert advice(session, site["visitors"]).suggestion.allowance == 48
    for margin in (0, 10, 50):
        for row in capacity.overview(session, NOW, margin_percent=margin):
            assert row.suggestion.allowance is None or row.suggestion.allowance >= row.sold, row.name


# --- no evidence: say so plainly ----------------------------------------------------------------


def test_without_history_the_page_says_so_rather_than_advising(session, site):
    sell(session, site["fresh"], 5)
    rows = {row.name: row for row in capacity.overview(session, NOW)}
    fresh = rows["Quiet Lot"].suggestion
    assert fresh.allowance is None and fresh.headline is None
    assert fresh.sentence == (
        "No advice yet: the lot's group has no sensor readings; "
        "advice needs 24 readings over at least 7 days."
    )
    assert rows["Quiet Lot"].evidence is None and rows["Quiet Lot"].peak_percent is None
    assert rows["Loose Lot"].suggestion.sentence.startswith("No advice: this lot is in no lot group")


def test_too_little_history_is_named(session, site):
    history(session, site["group"], days=6, peaks=())
    sell(session, site["big"], 10)
    short = advice(session, site["big"]).suggestion
    assert short.allowance is None
    assert "only 144 readings over 5 days" in short.sentence


def test_a_term_lot_without_permits_in_its_history_gets_no_ratio(session, site):
    history(session, site["group"])
    row = advice(session, site["small"])
    assert row.suggestion.allowance is None
    assert "no permits of this lot were valid while the sensors counted" in row.suggestion.sentence


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
    assert (saved.old, saved.new, saved.changed, saved.warning) == (100, 120, True, None)
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


def test_lowering_below_sold_is_refused(session, site, make_user, policy):
    sell(session, site["big"], 40)
    with pytest.raises(ValidationFailed) as caught:
        capacity.set_allowance(session, site["big"], 30, make_user(Role.MANAGER).id, NOW, policy)
    assert caught.value.errors == {
        "allowance": "at least the 40 permits valid now: a lower number cancels none of them, "
        "it only stops every sale until enough lapse"
    }
    session.rollback()
    assert session.get(Lot, site["big"]).permits_allowed is None
    assert session.scalars(select(AuditLog)).all() == []
    with pytest.raises(ValidationFailed):
        capacity.preview_allowance(session, site["big"], "39", NOW)


def test_a_change_leaving_few_to_sell_is_flagged_before_and_after(session, site, make_user, policy):
    sell(session, site["big"], 40)
    assert capacity.low_available(100) == 5 and capacity.low_available(300) == 15
    roomy = capacity.preview_allowance(session, site["big"], "45", NOW)
    assert (roomy.sold, roomy.left, roomy.warning) == (40, 5, None)
    tight = capacity.preview_allowance(session, site["big"], 44, NOW)
    assert tight.left == 4
    assert tight.warning == "44 allowed with 40 sold leaves only 4 permits to sell in North A."
    full = capacity.preview_allowance(session, site["big"], 40, NOW)
    assert full.warning == (
        "40 allowed with 40 sold leaves no permit to sell in North A: "
        "everyone who tries to buy one is told it is sold out."
    )
    assert session.get(Lot, site["big"]).permits_allowed is None  # a preview saves nothing
    saved = capacity.set_allowance(session, site["big"], 40, make_user(Role.MANAGER).id, NOW, policy)
    assert saved.changed and saved.warning == full.warning
    assert capacity.lot_capacity(session, site["big"], NOW).available == 0


def test_an_allowance_already_below_sold_can_be_kept(session, site, make_user, policy):
    """Set lower elsewhere (the lot editor) before permits were sold: saving it unchanged is no change."""
    session.get(Lot, site["big"]).permits_allowed = 30
    session.commit()
    sell(session, site["big"], 40)
    assert capacity.preview_allowance(session, site["big"], 30, NOW).left == 0
    same = capacity.set_allowance(session, site["big"], 30, make_user(Role.MANAGER).id, NOW, policy)
    assert not same.changed


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
