"""A stand-in for the campus's counting cameras and space sensors, so the demo's numbers move.

It publishes exactly what real devices would (same topics, same JSON, QoS 1) to the broker, so
the ingester cannot tell the difference and the whole pipeline is exercised. Occupancy follows a
campus day in the site's time zone: lots fill from 7 to 10, dip over lunch, empty from
mid-afternoon, and stay light at night and on weekends. A speed factor runs that day faster (60:
an hour a minute) with proportionally more traffic, for demos; the messages still carry the real
time, because the ingester orders readings by it.

The simulator keeps its own occupancy per counter so that the events it sends never take a lot
below 0 or above its capacity, and sends an absolute count now and then, as real counters do.
"""

from __future__ import annotations

import json
import logging
import random
import string
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from sqlalchemy import select

from dashboard.services.campus_day import target_fraction
from models import DeviceKind, Lot, SensingDevice, utcnow
from workers.mqtt import make_client

if TYPE_CHECKING:  # the simulator process needs no Flask or Dash
    from dashboard.core import Core

log = logging.getLogger(__name__)

TICK_SECONDS = (0.2, 0.5)  # one counter event per tick: about three events a second overall
COUNT_EVERY = timedelta(seconds=60)
SENSOR_CHANCE = 0.4  # share of ticks that also consider flipping one space sensor
PLATE_CHANCE = 0.7  # share of counter events whose camera read a plate
DEVICE_POLL_SECONDS = 10.0
MAX_EVENTS_PER_TICK = 500
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30


def choose_direction(occupied: int, capacity: int, target: float, trend: float, rng: random.Random) -> str:
    """'in' or 'out': pulled towards ``target`` and pushed by ``trend`` (the curve's slope, so
    mornings lean 'in' and afternoons 'out'), never past empty or full."""
    if occupied <= 0:
        return "in"
    if occupied >= capacity:
        return "out"
    p_in = 0.5 + 2.0 * (target - occupied / capacity) + 3.0 * trend
    return "in" if rng.random() < min(0.95, max(0.05, p_in)) else "out"


@dataclass(frozen=True)
class SimClock:
    """Simulated time: starts at ``start`` (real time by default) and runs ``speed`` times faster."""

    real_start: datetime
    start: datetime
    speed: float

    def at(self, now: datetime) -> datetime:
        return self.start + (now - self.real_start) * self.speed

    @property
    def events_per_tick(self) -> int:
        """Traffic grows with the speed so that lots still follow the day's curve."""
        return max(1, min(MAX_EVENTS_PER_TICK, round(self.speed)))


@dataclass
class CounterSim:
    device_id: str
    capacity: int
    occupied: int
    next_count_at: datetime | None = None


@dataclass
class SensorSim:
    device_id: str
    occupied: bool


class Simulator:
    """The devices' state and the messages one tick produces; no I/O, so it can be tested."""

    def __init__(
        self,
        counters: list[CounterSim],
        sensors: list[SensorSim],
        prefix: str,
        tz: tzinfo,
        rng: random.Random | None = None,
        clock: SimClock | None = None,
    ) -> None:
        self.counters = counters
        self.sensors = sensors
        self.prefix = prefix
        self.tz = tz
        self.rng = rng or random.Random()
        self.clock = clock

    @classmethod
    def start_at(
        cls,
        devices: list[tuple[str, DeviceKind, int]],
        prefix: str,
        tz: tzinfo,
        now: datetime,
        rng: random.Random | None = None,
        clock: SimClock | None = None,
    ) -> Simulator:
        """Devices as (device_id, kind, lot capacity), occupied as a campus would be at ``now``
        (on the simulated clock, when there is one)."""
        rng = rng or random.Random()
        target = target_fraction((clock.at(now) if clock else now).astimezone(tz))
        counters = [
            CounterSim(device_id, capacity, round(capacity * target))
            for device_id, kind, capacity in devices
            if kind is DeviceKind.COUNTER and capacity > 0
        ]
        sensors = [
            SensorSim(device_id, rng.random() < target)
            for device_id, kind, _ in devices
            if kind is DeviceKind.SPACE_SENSOR
        ]
        return cls(counters, sensors, prefix, tz, rng, clock)

    def tick(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """(topic, payload) pairs for one tick: due absolute counts, counter events (one, or
        ``speed`` of them on a fast clock), and sometimes a space sensor that changed state."""
        local = (self.clock.at(now) if self.clock else now).astimezone(self.tz)
        target = target_fraction(local)
        trend = target_fraction(local + timedelta(minutes=30)) - target
        stamp = now.isoformat()
        events = self.clock.events_per_tick if self.clock else 1
        messages: list[tuple[str, dict[str, Any]]] = []
        for counter in self.counters:
            if counter.next_count_at is None or now >= counter.next_count_at:
                counter.next_count_at = now + COUNT_EVERY
                body = {"occupied": counter.occupied, "capacity": counter.capacity, "ts": stamp}
                messages.append((f"{self.prefix}/counters/{counter.device_id}/count", body))
        for _ in range(events if self.counters else 0):
            counter = self.rng.choice(self.counters)
            direction = choose_direction(counter.occupied, counter.capacity, target, trend, self.rng)
            counter.occupied += 1 if direction == "in" else -1
            event: dict[str, Any] = {"event_id": str(uuid.uuid4()), "direction": direction, "ts": stamp}
            if self.rng.random() < PLATE_CHANCE:
                event["plate"] = self._plate()
            messages.append((f"{self.prefix}/counters/{counter.device_id}/events", event))
        for _ in range(events if self.sensors else 0):
            if self.rng.random() >= SENSOR_CHANCE:
                continue
            sensor = self.rng.choice(self.sensors)
            wanted = self.rng.random() < target
            if wanted != sensor.occupied:
                sensor.occupied = wanted
                state = {"occupied": wanted, "ts": stamp, "event_id": str(uuid.uuid4())}
                messages.append((f"{self.prefix}/sensors/{sensor.device_id}/state", state))
        return messages

    def _plate(self) -> str:
        """An Ontario-style plate (four letters, three digits)."""
        letters = "".join(self.rng.choices(string.ascii_uppercase, k=4))
        digits = "".join(self.rng.choices(string.digits, k=3))
        return f"{letters} {digits}"


def load_devices(core: Core) -> list[tuple[str, DeviceKind, int]]:
    """Active devices with their lot's capacity: (device_id, kind, capacity)."""
    with core.db.session() as session:
        rows = session.execute(
            select(SensingDevice.device_id, SensingDevice.kind, Lot.capacity)
            .join(Lot, SensingDevice.lot_id == Lot.id)
            .where(SensingDevice.is_active)
            .order_by(SensingDevice.device_id)
        ).all()
    return [(device_id, kind, capacity) for device_id, kind, capacity in rows]


def _wait_for_devices(core: Core, stop: threading.Event) -> list[tuple[str, DeviceKind, int]]:
    """``parkops run`` may start before ``parkops seed-demo``: wait for devices instead of failing."""
    warned = False
    while not stop.is_set():
        try:
            devices = load_devices(core)
        except Exception:
            log.exception("simulator: cannot load devices; retrying")
            devices = []
        if devices:
            return devices
        if not warned:
            log.warning("simulator: no sensing devices yet (run `parkops seed-demo`); waiting")
            warned = True
        stop.wait(DEVICE_POLL_SECONDS)
    return []


def run_simulator(
    core: Core, stop: threading.Event, *, speed: float | None = None, start: datetime | None = None
) -> None:
    """Publish simulated traffic until ``stop`` is set. Ticks are skipped while the broker is
    away (paho reconnects with backoff), so the simulated occupancy stays what was published.
    ``speed`` (default: PARKOPS_SIMULATOR_SPEED) and ``start`` set the simulated clock."""
    devices = _wait_for_devices(core, stop)
    if not devices:
        return
    now = utcnow()
    speed = core.settings.simulator_speed if speed is None else speed
    clock = SimClock(now, start or now, speed) if speed != 1 or start else None
    simulator = Simulator.start_at(
        devices, core.settings.mqtt_topic_prefix, core.settings.tz, now, clock=clock
    )
    # A fresh id per run: two simulators must not kick each other off the broker.
    client, address = make_client(core.mqtt_url, f"parkops-sim-{uuid.uuid4().hex[:12]}")
    client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
    connected = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            log.warning("simulator: broker refused the connection: %s", reason)
            return
        log.info("simulator: publishing to %s:%s for %d devices", address.host, address.port, len(devices))
        connected.set()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        connected.clear()
        if not stop.is_set():
            log.warning("simulator: disconnected (%s); reconnecting", reason)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        while not stop.wait(simulator.rng.uniform(*TICK_SECONDS)):
            if not connected.is_set():
                continue
            for topic, body in simulator.tick(utcnow()):
                client.publish(topic, json.dumps(body), qos=1)
    finally:
        client.disconnect()
        client.loop_stop()
        log.info("simulator: stopped")


def start_simulator_thread(core: Core, stop: threading.Event) -> threading.Thread:
    """Run the simulator in a daemon thread (``parkops run`` with the embedded broker)."""
    thread = threading.Thread(target=run_simulator, args=(core, stop), name="parkops-simulator", daemon=True)
    thread.start()
    return thread
