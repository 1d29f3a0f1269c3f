"""One MQTT ingester at a time: every ingester uses the same client id and persistent session, and
the broker would let two of them evict each other in a loop (about 8,300 reconnects in 20 s).

The lock lives in Redis (``dashboard.services.feed_health.LOCK_KEY``) with a short expiry that the
running ingester keeps renewing; a second ingester waits out one expiry for a holder that stopped
renewing, then refuses to start, naming the holder. A killed ingester's lock expires in
``LOCK_TTL_SECONDS``, at once when it ran on this host and its process is gone.

Why not several ingesters with MQTT 5 shared subscriptions: the embedded broker (amqtt) speaks
MQTT 3.1.1 only, and one ingester applies about 10,000 events a second.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

import redis

from dashboard.services.feed_health import LOCK_KEY
from models import utcnow

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 15
LOCK_REFRESH_SECONDS = 3.0

# Keep the lock if it is ours (or take it back if Redis lost it); 0 when another ingester has it.
REFRESH_LOCK_LUA = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_ENDED_LOCKS: set[str] = set()  # ids of this process's ingester locks that are over


class AnotherIngesterRunning(RuntimeError):
    """A second ingester was started: two would evict each other from the broker (one client id)."""


class IngestLock:
    """The lock one running ingester holds (see the module's docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.host = socket.gethostname()
        self.value = json.dumps(
            {"host": self.host, "pid": os.getpid(), "since": utcnow().isoformat(), "id": uuid.uuid4().hex}
        )
        self._refresh = client.register_script(REFRESH_LOCK_LUA)
        self._release = client.register_script(RELEASE_LOCK_LUA)
        self.refreshed_at = 0.0

    def acquire(self, stop: threading.Event, wait: float | None = None) -> bool:
        """Take the lock, waiting up to ``wait`` seconds (the lock's expiry) for a holder that
        stopped renewing it. Raises ``AnotherIngesterRunning`` naming the holder. False if
        ``stop`` was set meanwhile."""
        deadline = time.monotonic() + (LOCK_TTL_SECONDS + 1 if wait is None else wait)
        told = False
        while not stop.is_set():
            try:
                if self.redis.set(LOCK_KEY, self.value, nx=True, ex=LOCK_TTL_SECONDS):
                    self.refreshed_at = time.monotonic()
                    return True
                holder = self.redis.get(LOCK_KEY)
            except redis.RedisError as exc:
                log.warning("ingest: Redis does not answer (%s); waiting to take the ingester lock", exc)
                stop.wait(1.0)
                continue
            if holder is None:
                continue
            if self._holder_is_gone(holder):
                log.warning("ingest: the previous ingester on this host is gone; taking its lock")
                self.redis.delete(LOCK_KEY)
                continue
            if time.monotonic() >= deadline:
                raise AnotherIngesterRunning(holder_text(holder))
            if not told:
                log.warning(
                    "ingest: %s; waiting up to %ss for it to go", holder_text(holder), LOCK_TTL_SECONDS
                )
                told = True
            stop.wait(0.5)
        return False

    def _holder_is_gone(self, holder: bytes | str) -> bool:
        """True when the holder ran on this host and is over: its process is gone, or it was an
        earlier ingester of this very process (one that could not release the lock)."""
        try:
            info = json.loads(holder)
            if info.get("host") != self.host:
                return False
            if int(info["pid"]) == os.getpid():
                return info.get("id") in _ENDED_LOCKS
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except (ValueError, KeyError, TypeError, PermissionError):
            return False
        return False

    def refresh(self) -> bool:
        """Renew the lock; False when another ingester holds it now."""
        self.refreshed_at = time.monotonic()
        return bool(self._refresh(keys=[LOCK_KEY], args=[self.value, LOCK_TTL_SECONDS]))

    def release(self) -> None:
        _ENDED_LOCKS.add(json.loads(self.value)["id"])
        try:
            self._release(keys=[LOCK_KEY], args=[self.value])
        except redis.RedisError:
            log.warning("ingest: could not release the ingester lock (it expires in %ss)", LOCK_TTL_SECONDS)


def holder_text(holder: bytes | str) -> str:
    try:
        info = json.loads(holder)
        who = f"host {info['host']}, process {info['pid']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        who = "unknown holder"
    return (
        f"another ParkOps ingester is running ({who}); only one may run at a time "
        "(they share the broker session), see README, Production"
    )
