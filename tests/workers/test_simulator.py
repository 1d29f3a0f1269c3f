"""The simulator's traffic model on a fast clock: the campus day in minutes, real timestamps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.services.campus_day import target_fraction
from models import DeviceKind
from workers.simulator import SimClock, Simulator

TORONTO = ZoneInfo("America/Toronto")


def test_the_day_has_a_lunch_dip() -> None:
    day = datetime(2026, 11, 3, tzinfo=TORONTO)
    late_morning, lunch, afternoon = (day.replace(hour=h, minute=m) for h, m in ((11, 45), (12, 30), (14, 0)))
    assert target_fraction(lunch) < target_fraction(late_morning) - 0.05
    assert target_fraction(lunch) < target_fraction(afternoon) - 0.05


def test_a_fast_clock_runs_the_day_in_minutes_with_real_timestamps() -> None:
    real_start = datetime(2026, 11, 3, 20, 0, tzinfo=UTC)  # 15:00 in Toronto: the real clock
    sim_start = datetime(2026, 11, 3, 6, 0, tzinfo=TORONTO)  # the simulated day starts at 06:00
    clock = SimClock(real_start, sim_start.astimezone(UTC), speed=120)
    devices = [("cnt-a", DeviceKind.COUNTER, 400), ("cnt-b", DeviceKind.COUNTER, 200)]
    sim = Simulator.start_at(devices, "p", TORONTO, real_start, random.Random(3), clock=clock)
    capacity = sum(counter.capacity for counter in sim.counters)
    at_start = sum(counter.occupied for counter in sim.counters) / capacity
    share_at: dict[int, float] = {}
    stamps: list[str] = []
    for step in range(0, 301):  # a tick a second for five real minutes: ten simulated hours
        now = real_start + timedelta(seconds=step)
        messages = sim.tick(now)
        stamps.extend(body["ts"] for _topic, body in messages)
        hour = clock.at(now).astimezone(TORONTO).hour
        share_at[hour] = sum(counter.occupied for counter in sim.counters) / capacity
    assert clock.events_per_tick == 120
    assert at_start < 0.1  # 06:00: nearly empty
    assert share_at[11] > 0.7  # filled over the morning
    assert share_at[15] < share_at[11] - 0.1  # and emptying in the afternoon
    assert all(real_start <= datetime.fromisoformat(ts) <= real_start + timedelta(minutes=5) for ts in stamps)
