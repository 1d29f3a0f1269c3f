"""Is the MQTT ingester alive and applying what the devices send? Read by ``/healthz``, Sensor
Feed Health and the dashboard; written by ``workers.ingest``.

Why it is shaped this way: the ingester is its own process, so it reports through Redis, which
every web process reads. It keeps one hash (``STATUS_KEY``) up to date about once a second: when
it last looped, when it last applied a batch, how many messages wait unapplied (unacknowledged:
the broker keeps them) and since when, and the last error. "Stuck" is then a plain rule on those
times (``IngesterStatus.stuck``): messages waiting longer than ``STUCK_AFTER_SECONDS``, or no
report for that long from an ingester that did not say it stopped (killed or hung). A stopped
ingester is not stuck: it says so, and the broker keeps the messages for its return.

A broker that forgot the ingester's session (restarted without persistence, or expired it) has
dropped whatever it queued for it: that is counted in ``SESSIONS_LOST_KEY`` and shown too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis

STATUS_KEY = "parkops:ingest:status"
SESSIONS_LOST_KEY = "parkops:ingest:sessions-lost"
LOCK_KEY = "parkops:ingest:lock"
STUCK_AFTER_SECONDS = 60


class IngesterStuck(RuntimeError):
    """The ingester has applied nothing for too long: live occupancy is frozen."""


@dataclass(frozen=True)
class IngesterStatus:
    """What the ingester last reported. Times are UTC; ``waiting_since`` is None when nothing waits."""

    owner: str
    started_at: datetime | None
    beat_at: datetime | None
    applied_at: datetime | None
    waiting: int
    waiting_since: datetime | None
    last_error: str | None
    connected: bool
    stopped_at: datetime | None

    def stuck(self, now: datetime) -> str | None:
        """Why live occupancy is frozen, in words; None when it is not."""
        if self.stopped_at is not None:
            return None
        if self.waiting_since is not None:
            waited = (now - self.waiting_since).total_seconds()
            if waited > STUCK_AFTER_SECONDS:
                cause = f" (last error: {self.last_error})" if self.last_error else ""
                return f"{self.waiting:,} message(s) waiting to be applied for {waited:,.0f} s{cause}"
        if self.beat_at is not None:
            silent = (now - self.beat_at).total_seconds()
            if silent > STUCK_AFTER_SECONDS:
                return f"the ingester ({self.owner}) has not reported for {silent:,.0f} s: killed or hung"
        return None


@dataclass(frozen=True)
class SessionsLost:
    """How often the broker forgot the ingester's session, and when it last did."""

    count: int
    last_at: datetime | None


def _time(value: bytes | str | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


def _text(value: bytes | str | None) -> str | None:
    """Redis answers bytes (the clients here do not decode responses)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace") if value else None
    return value or None


def read_status(client: redis.Redis) -> IngesterStatus | None:
    """The last report, or None when no ingester has reported since Redis was last emptied."""
    raw = client.hgetall(STATUS_KEY)
    if not raw:
        return None
    get = {_text(key): value for key, value in raw.items()}.get
    return IngesterStatus(
        owner=_text(get("owner")) or "unknown",
        started_at=_time(get("started_at")),
        beat_at=_time(get("beat_at")),
        applied_at=_time(get("applied_at")),
        waiting=int(get("waiting") or 0),
        waiting_since=_time(get("waiting_since")),
        last_error=_text(get("last_error")),
        connected=get("connected") == b"1",
        stopped_at=_time(get("stopped_at")),
    )


def read_sessions_lost(client: redis.Redis) -> SessionsLost:
    count, last_at = client.hmget(SESSIONS_LOST_KEY, "count", "last_at")
    return SessionsLost(int(count or 0), _time(last_at))


def ensure_not_stuck(client: redis.Redis, now: datetime | None = None) -> None:
    """Raise ``IngesterStuck`` naming why. A Redis failure is not the ingester's: it is reported
    by Redis's own health check, so this one then says nothing."""
    try:
        status = read_status(client)
    except redis.RedisError:
        return
    reason = status.stuck(now or datetime.now(UTC)) if status else None
    if reason:
        raise IngesterStuck(reason)
