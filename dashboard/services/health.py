"""Health of the three parts ParkOps cannot work without: database, Redis, MQTT broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    latency_ms: int
    error: str | None = None


def run_check(name: str, probe: Callable[[], object]) -> Check:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure is the answer, not a crash
        return Check(
            name, False, round((time.perf_counter() - started) * 1000), f"{type(exc).__name__}: {exc}"
        )
    return Check(name, True, round((time.perf_counter() - started) * 1000))
