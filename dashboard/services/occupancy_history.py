"""A lot group's figures over time, as the snapshots kept them (``occupancy_snapshots``: written
at a fixed interval and when a figure moves by more than a set step, ``occupancy``), for the
API's history endpoint and the dashboard's since-midnight widget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OccupancySnapshot, OccupancySource


@dataclass(frozen=True)
class HistoryPoint:
    recorded_at: datetime
    source: str
    occupied: int
    capacity: int


def history(
    session: Session,
    group_id: int,
    start: datetime,
    end: datetime,
    source: OccupancySource | None = None,
) -> list[HistoryPoint]:
    query = (
        select(OccupancySnapshot)
        .where(
            OccupancySnapshot.lot_group_id == group_id,
            OccupancySnapshot.recorded_at >= start,
            OccupancySnapshot.recorded_at <= end,
        )
        .order_by(OccupancySnapshot.recorded_at)
    )
    if source is not None:
        query = query.where(OccupancySnapshot.source == source)
    return [
        HistoryPoint(row.recorded_at, str(row.source), row.occupied, row.capacity)
        for row in session.scalars(query)
    ]
