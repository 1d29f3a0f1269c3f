"""The campus's day: the share of a lot's spaces taken at a local time of day and week.

One curve for the sensor simulator (which drives live counts towards it) and the demo's seeded
history (which must look like what the simulator then produces), so the capacity advice drawn from
that history matches what the live map shows afterwards.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

# (local hour, share of spaces taken) on a weekday; linear in between.
WEEKDAY_CURVE = [
    (0.0, 0.05),
    (6.0, 0.05),
    (7.0, 0.15),
    (8.5, 0.60),
    (10.0, 0.88),
    (11.75, 0.90),
    (12.5, 0.78),  # the lunch dip: people drive off campus for lunch
    (13.25, 0.86),
    (14.0, 0.90),
    (15.5, 0.75),
    (17.5, 0.35),
    (19.0, 0.20),
    (22.0, 0.10),
    (24.0, 0.05),
]
WEEKEND_FACTOR = 0.35


def target_fraction(local: datetime) -> float:
    """The share of a lot's spaces a campus lot has taken at this local time."""
    hour = local.hour + local.minute / 60 + local.second / 3600
    value = WEEKDAY_CURVE[-1][1]
    for (h0, v0), (h1, v1) in pairwise(WEEKDAY_CURVE):
        if h0 <= hour < h1:
            value = v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
            break
    if local.weekday() >= 5:
        base = WEEKDAY_CURVE[0][1]
        value = base + (value - base) * WEEKEND_FACTOR
    return value
