"""Response bodies cached in Redis for every web process: the open API's list (which the user
map's body is worded from), the staff screens' body and the FIWARE feed (``BodyCache``), and the
one subscriber per process that tells them a figure changed (``ChangeWatch``).

Why a module of its own: the cache is how every hot read path (the API's list, both maps, the
FIWARE feed) stays at the cost of a Redis read however many visitors ask, and its rules (who
rebuilds, who waits, what a lost database serves) are the same for each of them.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import redis
from redis.exceptions import LockError
from redis.typing import EncodableT
from sqlalchemy.exc import DBAPIError

from dashboard.db import lost_connection
from dashboard.services import occupancy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str

    @cached_property
    def gzipped(self) -> bytes:
        """Compressed once per process and body: the list shrinks about tenfold, and a third of a
        megabyte per map refresh is what limits the server otherwise."""
        return gzip.compress(self.body, compresslevel=6, mtime=0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


REFRESH_THREAD = "parkops-refresh"  # the name of each thread rebuilding a body behind the requests
# KEYS: the ETag key, its "current" marker, the previous ETag, the body, the change count;
# ARGV: the ETag, the body, keep and ttl (ms), the change count read before the build.
STORE_LUA = """
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], 1, 'PX', ARGV[4])
return 1
"""


class BodyCache:
    """A response body kept in Redis and rebuilt every ``ttl_ms``, shared by every web process.

    Redis holds the current ETag under ``key`` and each body under ``key:body:<etag>``; a process
    keeps the last body it read, so a request whose ETag it already holds costs one small read,
    not a transfer of the whole body (the list of 500 groups is about a third of a megabyte).

    Two ways a body goes out of date, answered differently:

    - **A change** (``occupancy`` deletes ``key`` as it applies a figure): the first request to
      take a short Redis lock rebuilds the body while it waits; the others serve the previous one
      (``key:last``, kept ``keep_ms``) instead of piling onto the database. Only a cold start,
      with no previous body at all, builds without the lock.
    - **Time** (figures going stale, edits that announce nothing: ``key:current`` expires after
      ``ttl_ms``): the body in hand is served at once and one thread rebuilds it behind the
      request (stale-while-revalidate). Why: with 5,000 lot groups a rebuild takes most of a
      second, and every second one visitor's request waited for it (the city-sized map showed its
      pins 1.2-2.8 s after navigation instead of 0.9 s).

    A change during a rebuild (``occupancy.drop_cached_bodies`` counts it under ``key:changes``)
    leaves the rebuilt body as the previous one only: it was read before the change, so it must
    not stand as the current body, which the next request then rebuilds.

    When a rebuild cannot reach the database, the previous body is served again, and stands as
    the current one for ``ttl_ms`` more (one try per ``ttl_ms`` for all the processes, not one per
    request); with no previous body left (``keep_ms`` after the last build), the error goes up
    for the route to answer 503.
    """

    _memo: ClassVar[dict[str, CachedBody]] = {}  # per process: the last body read, by key
    # per process: when that body was last confirmed, and the change generation it was read in
    _checked: ClassVar[dict[str, tuple[float, int]]] = {}
    # A body confirmed this recently, with no change announced since (``ChangeWatch``), is served
    # without asking Redis: under load that removes a round trip from nearly every request. A
    # change missed (the watch reconnecting) shows after at most this long.
    local_ttl_s: ClassVar[float] = 0.1
    FRESH_WAIT_S: ClassVar[float] = 2.0
    # per process: the keys a thread is rebuilding behind the requests (one thread per key)
    _refreshing: ClassVar[set[str]] = set()
    _refreshing_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, client: redis.Redis, key: str, ttl_ms: int = 1000, lock_ms: int = 10_000, keep_ms: int = 60_000
    ) -> None:
        self.redis = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.lock_ms = lock_ms
        self.keep_ms = keep_ms
        self._changes = key + occupancy.CHANGES_SUFFIX

    def get(self, build: Callable[[], bytes], *, fresh: bool = False, held: str | None = None) -> CachedBody:
        """``fresh`` is for a reader that was just told of a change (a pushed message): the local
        tenth of a second and the previous body served during a rebuild could both hide it until
        its next refresh, so it asks Redis and waits for a rebuild in progress instead. ``held``
        is the ETag that reader already has: a previous body other than it is news to it, served
        at once; only a reader that holds the previous body waits for the new one."""
        known = self._memo.get(self.key)
        checked_at, generation = self._checked.get(self.key, (0.0, -1))
        recent = generation == CHANGES.generation and time.monotonic() - checked_at < self.local_ttl_s
        if not fresh and known is not None and recent:
            return known
        generation = CHANGES.generation  # taken before reading: a change announced meanwhile counts
        cached = self._get(build, fresh, held)
        self._checked[self.key] = (time.monotonic(), generation)
        return cached

    def _get(self, build: Callable[[], bytes], fresh: bool, held: str | None = None) -> CachedBody:
        etag, current = self.redis.mget(self.key, self.key + ":current")
        if etag is not None and current is None:
            self._refresh_behind(build)
        if etag is None:
            lock = self.redis.lock(self.key + ":lock", timeout=self.lock_ms / 1000, blocking=False)
            if lock.acquire():
                try:
                    seen = self.redis.get(self._changes)
                    return self._store(build(), seen)
                except DBAPIError as exc:
                    if not lost_connection(exc):
                        raise
                    return self._previous_again(exc)
                finally:
                    # LockError: the build outlived the lock, whose expiry already freed it.
                    with contextlib.suppress(LockError):
                        lock.release()
            etag = self.redis.get(self.key + ":last")
            if fresh and (held is None or etag is None or _text(etag) == held):
                etag = self._wait_for_rebuild()
            if etag is None:
                return self._cached(build())
        return self._read(_text(etag)) or self._cached(build())

    def _previous_again(self, exc: DBAPIError) -> CachedBody:
        last = self.redis.get(self.key + ":last")
        previous = self._read(_text(last)) if last is not None else None
        if previous is None:
            raise exc
        pipe = self.redis.pipeline()
        pipe.set(self.key, previous.etag, px=self.keep_ms)
        pipe.set(self.key + ":current", 1, px=self.ttl_ms)
        pipe.execute()
        log.warning(
            "%s: the database is unreachable (%s); serving the body built before", self.key, exc.orig or exc
        )
        return previous

    def _refresh_behind(self, build: Callable[[], bytes]) -> None:
        """Rebuilds the body in a thread of this process (unless one already is), while the
        request that noticed serves the body in hand."""
        with self._refreshing_lock:
            if self.key in self._refreshing:
                return
            self._refreshing.add(self.key)
        name = f"{REFRESH_THREAD} {self.key}"
        threading.Thread(target=self._refresh, args=(build,), name=name, daemon=True).start()

    def _refresh(self, build: Callable[[], bytes]) -> None:
        try:
            lock = self.redis.lock(self.key + ":lock", timeout=self.lock_ms / 1000, blocking=False)
            if not lock.acquire():
                return  # another request or process is rebuilding it
            try:
                seen = self.redis.get(self._changes)
                self._store(build(), seen)
            except DBAPIError as exc:
                if not lost_connection(exc):
                    raise
                self._previous_again(exc)
            finally:
                with contextlib.suppress(LockError):
                    lock.release()
        except Exception:  # a thread of its own: nobody above it to answer; the next second retries
            log.exception("%s: rebuilding the body failed; serving the one in hand", self.key)
            with contextlib.suppress(redis.RedisError):  # once a second, not once per request
                self.redis.set(self.key + ":current", 1, px=self.ttl_ms)
        finally:
            with self._refreshing_lock:
                self._refreshing.discard(self.key)

    def _wait_for_rebuild(self) -> bytes | str | None:
        """The ETag another request is building, once it is stored (None after ``FRESH_WAIT_S``:
        the caller then builds for itself)."""
        deadline = time.monotonic() + self.FRESH_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(0.01)
            etag = self.redis.get(self.key)
            if etag is not None:
                return etag
        return None

    def invalidate(self) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(self.key, self.key + ":current", self.key + ":last")
        pipe.incr(self._changes)
        pipe.execute()

    def _store(self, body: bytes, seen: bytes | str | None) -> CachedBody:
        """Store ``body``, built from data read after ``key:changes`` read ``seen``: as the
        current body if no change was counted since, else as the previous one only."""
        cached = self._cached(body)
        keys = [self.key, self.key + ":current", self.key + ":last", f"{self.key}:body:{cached.etag}"]
        args: list[EncodableT] = [cached.etag, body, self.keep_ms, self.ttl_ms, seen or b""]
        # Made here, not with the cache: a cache is made per request, a store once a second.
        self.redis.register_script(STORE_LUA)(keys=[*keys, self._changes], args=args)
        self._memo[self.key] = cached
        return cached

    def _read(self, etag: str) -> CachedBody | None:
        known = self._memo.get(self.key)
        if known is not None and known.etag == etag:
            return known
        body = self.redis.get(f"{self.key}:body:{etag}")
        if body is None:  # expired between the two reads
            return None
        cached = CachedBody(body if isinstance(body, bytes) else body.encode(), etag)
        self._memo[self.key] = cached
        return cached

    @staticmethod
    def _cached(body: bytes) -> CachedBody:
        return CachedBody(body, hashlib.blake2b(body, digest_size=16).hexdigest())


class ChangeWatch:
    """One Redis subscriber per process (and per Redis connection pool) to the occupancy change
    channel: each message moves ``generation`` on, which makes ``BodyCache`` ask Redis again
    instead of serving its local copy. Without it a new figure waited out the local tenth of a
    second (publish -> API was ~108 ms). If the subscription is down, the local copy is still
    re-checked every ``local_ttl_s``."""

    RETRY_SECONDS = 5.0

    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._pool: object | None = None
        self._pid = 0
        self._thread: Any = None
        self._retry_at = 0.0
        self._down = False

    def watch(self, client: redis.Redis) -> None:
        """Make sure this process listens (cheap when it already does)."""
        if self._watching(client) or time.monotonic() < self._retry_at:
            return
        with self._lock:
            if self._watching(client):
                return
            if self._thread is not None and self._pid == os.getpid():
                self._thread.stop()  # another Redis than before (tests build one per app)
            self._thread = None
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(**{occupancy.CHANNEL: self._changed})
                self._thread = pubsub.run_in_thread(
                    sleep_time=1.0, daemon=True, exception_handler=self._failed
                )
            except redis.RedisError as exc:
                log.warning("open data: cannot watch occupancy changes (%s); reading Redis each time", exc)
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
                return
            self._pool, self._pid = client.connection_pool, os.getpid()
            self.generation += 1

    def _watching(self, client: redis.Redis) -> bool:
        return (
            self._thread is not None
            and self._pool is client.connection_pool
            and self._pid == os.getpid()
            and self._thread.is_alive()
        )

    def _changed(self, _message: object) -> None:
        self.generation += 1
        self._down = False

    def _failed(self, exc: BaseException, _pubsub: object, _thread: object) -> None:
        """Redis restarting: messages may be lost meanwhile, so nothing local counts as confirmed;
        the subscription comes back with the connection. Logged once per outage."""
        self.generation += 1
        if not self._down:
            log.warning("open data: lost the occupancy change channel (%s); retrying", exc)
        self._down = True
        time.sleep(1.0)


CHANGES = ChangeWatch()
