"""``occupancy.group_states``, read as plain rows: each group's active lots in name order with
their allowances (``permits_allowed``, else the capacity), only the groups asked for, and the
physical figure from the source the group is configured for."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from dashboard.core import Core
from dashboard.services import occupancy
from dashboard.services.occupancy import LiveStore, Staleness
from models import Lot, LotGroup, OccupancySource


def test_lots_allowances_chosen_groups_and_the_configured_source(core: Core, session: Session) -> None:
    counted = LotGroup(name="Counted", mistall_lot_id="M-1", latitude=43.47, longitude=-80.54)
    counted.lots = [
        Lot(name="B lot", capacity=50, permits_allowed=70, sells_standard=True),
        Lot(name="A lot", capacity=20, sells_temporary=True, sells_standard=False),
        Lot(name="C lot", capacity=99, is_active=False),
    ]
    empty = LotGroup(name="Empty", is_closed=True, show_on_map=False)
    other = LotGroup(name="Other")
    session.add_all([counted, empty, other, Lot(name="Loose lot", capacity=5)])
    session.commit()
    store, now = LiveStore(core.redis), datetime.now(UTC)
    for source, occupied in ((OccupancySource.DEVICES, 10), (OccupancySource.MISTALL, 40)):
        occupancy.apply_figure(session, store, counted.id, source, occupied, 100, now, step_percent=5)
    session.commit()

    states = occupancy.group_states(session, store, Staleness(), now, [empty.id, counted.id])

    assert [state.name for state in states] == ["Counted", "Empty"]
    lots = states[0].lots
    assert [(lot.name, lot.allowance, lot.sells_standard, lot.sells_temporary) for lot in lots] == [
        ("A lot", 20, False, True),
        ("B lot", 70, True, False),
    ]
    assert (states[0].permits.occupied, states[0].permits.capacity) == (0, 90)
    assert states[0].physical is not None
    assert (states[0].physical.source, states[0].physical.occupied) == (OccupancySource.MISTALL, 40)
    assert {figure.source for figure in states[0].sources} == {
        OccupancySource.MISTALL,
        OccupancySource.DEVICES,
    }
    assert (states[0].latitude, states[0].longitude, states[0].closed) == (43.47, -80.54, False)
    assert states[1].lots == () and states[1].closed and not states[1].show_on_map
    assert states[1].physical is None
