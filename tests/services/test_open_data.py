"""Open data: the public list, history ranges, the FIWARE mapping and the one-second body cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dashboard.core import Core
from dashboard.services import body_cache, occupancy, open_data
from dashboard.services.body_cache import BodyCache
from dashboard.services.errors import ValidationFailed
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource
from tests.faults import disk_error

NOW = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_local_cache_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read their own writes at once (``test_a_confirmed_body_is_served_locally``
    covers the grace period itself)."""
    monkeypatch.setattr(BodyCache, "local_ttl_s", 0.0)


def test_a_confirmed_body_is_served_locally_for_a_moment(core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BodyCache, "local_ttl_s", 30.0)
    cache = BodyCache(core.redis, "parkops:test:grace")
    first = cache.get(lambda: b"one")
    cache.invalidate()
    assert cache.get(lambda: b"two") == first  # within the grace period: no Redis round trip
    monkeypatch.setattr(BodyCache, "local_ttl_s", 0.0)
    assert cache.get(lambda: b"two").body == b"two"


def _group(session: Session, name: str, *, lots: int = 2, **fields: object) -> LotGroup:
    group = LotGroup(name=name, latitude=43.47, longitude=-80.54, **fields)
    session.add(group)
    session.flush()
    for n in range(lots):
        session.add(
            Lot(
                name=f"{name} lot {n}",
                lot_group_id=group.id,
                capacity=100,
                sells_standard=n == 0,
                sells_temporary=n != 0,
            )
        )
    session.flush()
    return group


def _apply(core: Core, session: Session, group: LotGroup, occupied: int, capacity: int, ts: datetime) -> None:
    occupancy.apply_figure(
        session,
        LiveStore(core.redis),
        group.id,
        OccupancySource.DEVICES,
        occupied,
        capacity,
        ts,
        step_percent=5,
    )


def _policy(core: Core, session: Session) -> occupancy.Policy:
    return occupancy.load_policy(session, core.secrets)


def _states(core: Core, session: Session, now: datetime = NOW) -> dict[str, occupancy.GroupOccupancy]:
    states = open_data.public_states(session, LiveStore(core.redis), _policy(core, session), now)
    return {state.name: state for state in states}


def test_public_group_carries_the_live_figure(core: Core, session: Session) -> None:
    group = _group(session, "Garage")
    _apply(core, session, group, 150, 200, NOW - timedelta(minutes=2))

    (listed,) = open_data.public_groups(session, LiveStore(core.redis), _policy(core, session), NOW)

    assert listed["id"] == group.id and listed["name"] == "Garage"
    assert (listed["lat"], listed["lon"], listed["color"]) == (43.47, -80.54, group.map_color)
    assert listed["status"] == "open" and listed["stale"] is False and listed["source"] == "devices"
    assert (listed["capacity"], listed["occupied"], listed["available"], listed["percent"]) == (
        200,
        150,
        50,
        75.0,
    )
    assert listed["updated_at"] == (NOW - timedelta(minutes=2)).isoformat()
    assert [lot["name"] for lot in listed["lots"]] == ["Garage lot 0", "Garage lot 1"]
    first = listed["lots"][0]
    assert first == {
        "id": first["id"],
        "name": "Garage lot 0",
        "sold": 0,
        "allowance": 100,
        "available": 100,
        "percent": 0.0,
        "sells_standard": True,
        "sells_temporary": False,
    }


def test_admin_detail_and_secrets_stay_out_of_the_public_group(core: Core, session: Session) -> None:
    group = _group(session, "Garage", parking_logix_name="PL Garage", parking_logix_api_key="token-xyz")
    _apply(core, session, group, 10, 100, NOW)

    (listed,) = open_data.public_groups(session, LiveStore(core.redis), _policy(core, session), NOW)

    assert "token-xyz" not in repr(listed) and "PL Garage" not in repr(listed)
    assert {"physical", "permits", "sources", "show_on_map"}.isdisjoint(listed)


def test_closed_group_reads_closed_with_null_figures(core: Core, session: Session) -> None:
    group = _group(session, "Closed Deck", is_closed=True)
    _apply(core, session, group, 0, 200, NOW)

    (listed,) = open_data.public_groups(session, LiveStore(core.redis), _policy(core, session), NOW)

    assert listed["status"] == "closed"
    assert listed["capacity"] is listed["occupied"] is listed["available"] is listed["percent"] is None


def test_group_turns_stale_after_the_policy_limit(core: Core, session: Session) -> None:
    group = _group(session, "Quiet Lot")
    _apply(core, session, group, 40, 100, NOW - timedelta(minutes=59))
    assert _states(core, session)["Quiet Lot"].status == "open"

    late = NOW + timedelta(minutes=2)  # devices go stale after 60 minutes by default
    (listed,) = open_data.public_groups(session, LiveStore(core.redis), _policy(core, session), late)

    assert listed["status"] == "stale" and listed["stale"] is True and listed["occupied"] == 40


def test_hidden_groups_are_absent(core: Core, session: Session) -> None:
    _group(session, "Shown")
    _group(session, "Service Yard", show_on_map=False)
    store, policy = LiveStore(core.redis), _policy(core, session)

    assert [g["name"] for g in open_data.public_groups(session, store, policy, NOW)] == ["Shown"]
    assert list(_states(core, session)) == ["Shown"]


# -- history ranges -------------------------------------------------------------------------------
def test_range_defaults_to_the_last_day() -> None:
    window = open_data.parse_range(None, None, None, NOW)
    assert (window.start, window.end, window.source) == (NOW - timedelta(hours=24), NOW, None)


def test_range_reads_offsets_and_an_unencoded_plus() -> None:
    window = open_data.parse_range("2026-11-01T08:00:00-05:00", "2026-11-02T13:00:00 00:00", "devices", NOW)
    assert window.start == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    assert window.source is OccupancySource.DEVICES


@pytest.mark.parametrize(
    ("start", "end", "source", "field", "words"),
    [
        ("2026-11-01T08:00:00", None, None, "from", "time zone"),
        ("yesterday", None, None, "from", "ISO-8601"),
        (None, "2026-13-01T00:00:00Z", None, "to", "ISO-8601"),
        ("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z", None, "from", "after"),
        ("2026-09-01T00:00:00Z", "2026-11-01T00:00:00Z", None, "from", "31 days"),
        (None, None, "cameras", "source", "mistall"),
    ],
)
def test_bad_ranges_name_their_field(
    start: str | None, end: str | None, source: str | None, field: str, words: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        open_data.parse_range(start, end, source, NOW)
    assert list(raised.value.errors) == [field] and words in raised.value.errors[field]


def test_history_points_in_range(core: Core, session: Session) -> None:
    group = _group(session, "Garage")
    _apply(core, session, group, 10, 100, NOW - timedelta(hours=30))
    _apply(core, session, group, 50, 100, NOW - timedelta(hours=2))
    window = open_data.parse_range(None, None, None, NOW)

    points = open_data.history_points(session, group.id, window)

    assert points == [
        {
            "recorded_at": open_data.iso_utc(NOW - timedelta(hours=2)),
            "source": "devices",
            "occupied": 50,
            "capacity": 100,
            "percent": 50.0,
        }
    ]


# -- FIWARE mapping -------------------------------------------------------------------------------
def test_off_street_parking_statuses(core: Core, session: Session) -> None:
    figures = {"Full": 100, "Busy": 95, "Quiet": 10, "Closed": 0}
    for name, occupied in figures.items():
        group = _group(session, name, is_closed=name == "Closed")
        _apply(core, session, group, occupied, 100, NOW)
    stale = _group(session, "Stale")
    _apply(core, session, stale, 10, 100, NOW - timedelta(hours=3))

    entities = {e["name"]: e for e in open_data.off_street_parkings(_states(core, session).values(), "gru")}

    assert entities["Full"]["status"] == ["full"] and entities["Full"]["availableSpotNumber"] == 0
    assert entities["Busy"]["status"] == ["almostFull"] and entities["Busy"]["occupancy"] == 0.95
    assert entities["Quiet"]["status"] == ["open"] and entities["Quiet"]["availableSpotNumber"] == 90
    assert entities["Closed"]["status"] == ["closed"] and "availableSpotNumber" not in entities["Closed"]
    assert "status" not in entities["Stale"] and "availableSpotNumber" not in entities["Stale"]
    assert entities["Stale"]["observationDateTime"] == "2026-11-03T11:00:00Z"
    assert (
        entities["Quiet"]["id"]
        == f"urn:ngsi-ld:OffStreetParking:gru-{_states(core, session)['Quiet'].group_id}"
    )
    assert entities["Quiet"]["location"] == {"type": "Point", "coordinates": [-80.54, 43.47]}


def test_flags_are_published_as_codes_and_only_with_a_current_figure(core: Core, session: Session) -> None:
    """Every flag text maps to a code (an unknown one to ``other``, never to nothing); FIWARE has
    them beside ``status``, so a stale or closed entity, which has no status, has none."""
    policy = _policy(core, session)
    texts = {
        "Drifted": occupancy.capacity_flag(150, 100, policy),
        "Clamped": occupancy.BELOW_ZERO_FLAG,
        "Odd": "a flag some future source sets",
        "Stale": occupancy.capacity_flag(150, 100, policy),
        "Closed": occupancy.BELOW_ZERO_FLAG,
    }
    for name, flag in texts.items():
        group = _group(session, name, is_closed=name == "Closed")
        ts = NOW - timedelta(hours=3) if name == "Stale" else NOW
        occupancy.apply_figure(
            session,
            LiveStore(core.redis),
            group.id,
            OccupancySource.DEVICES,
            150,
            100,
            ts,
            step_percent=5,
            flag=flag,
        )
    states = _states(core, session)

    listed = {
        g["name"]: g["flags"] for g in open_data.public_groups(session, LiveStore(core.redis), policy, NOW)
    }
    assert listed == {
        "Clamped": ["below_zero"],
        "Closed": [],
        "Drifted": ["over_capacity"],
        "Odd": ["other"],
        "Stale": ["over_capacity"],
    }
    entities = {e["name"]: e for e in open_data.off_street_parkings(states.values(), "gru")}
    assert {name: e.get("statusFlags") for name, e in entities.items()} == {
        "Clamped": ["belowZero"],
        "Closed": None,
        "Drifted": ["overCapacity"],
        "Odd": ["other"],
        "Stale": None,
    }


def test_groups_without_coordinates_and_their_lots_are_left_out(core: Core, session: Session) -> None:
    located = _group(session, "Located")
    nowhere = LotGroup(name="Nowhere")
    session.add(nowhere)
    session.flush()
    session.add(Lot(name="Nowhere lot", lot_group_id=nowhere.id, capacity=10))
    session.flush()
    states = _states(core, session).values()

    assert [e["name"] for e in open_data.off_street_parkings(states, "gru")] == ["Located"]
    lots = open_data.parking_groups(session, states, "gru")
    assert {lot["refParkingSite"] for lot in lots} == {f"urn:ngsi-ld:OffStreetParking:gru-{located.id}"}
    assert [lot["name"] for lot in lots] == ["Located lot 0", "Located lot 1"]
    permit_lot, visitor_lot = lots
    assert permit_lot["category"] == ["offStreet", "onlyWithPermit"] and permit_lot["chargeType"] == [
        "seasonTicket"
    ]
    assert visitor_lot["category"] == ["offStreet"] and visitor_lot["chargeType"] == ["temporaryPrice"]


def test_site_id_is_the_site_name_as_a_slug(core: Core, session: Session) -> None:
    assert open_data.site_id(session, core.secrets) == "parkops"


# -- the body cache -------------------------------------------------------------------------------
class Builder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return b'{"n":%d}' % self.calls


def _cache(core: Core, ttl_ms: int = 60_000) -> body_cache.BodyCache:
    return body_cache.BodyCache(core.redis, "test:body", ttl_ms=ttl_ms)


def test_cache_builds_once_per_ttl(core: Core) -> None:
    cache, build = _cache(core), Builder()

    first, second = cache.get(build), cache.get(build)

    assert build.calls == 1 and first == second and first.body == b'{"n":1}' and len(first.etag) == 32
    cache.invalidate()
    assert cache.get(build).body == b'{"n":2}' and build.calls == 2


def test_cache_is_shared_through_redis(core: Core) -> None:
    """Another process (no memo) reads the body from Redis without building it."""
    stored = _cache(core).get(Builder())
    body_cache.BodyCache._memo.clear()

    assert _cache(core).get(Builder()) == stored


def _rebuilt(cache: body_cache.BodyCache, build: Callable[[], bytes], old: body_cache.CachedBody) -> bytes:
    """The body once the rebuild behind the requests has stored another (or the old one after 5 s)."""
    deadline = time.monotonic() + 5
    body = cache.get(build)
    while body == old and time.monotonic() < deadline:
        time.sleep(0.01)
        body = cache.get(build)
    return body.body


def test_an_expired_body_is_served_at_once_and_rebuilt_behind_the_requests(core: Core) -> None:
    """Past its second the body in hand is still served: one thread rebuilds it (a rebuild of a
    city's list takes most of a second, which a visitor used to wait out)."""
    cache, release, calls = _cache(core, ttl_ms=50), threading.Event(), []

    def build() -> bytes:
        calls.append(1)
        if len(calls) > 1:
            # A request waiting for this rebuild would wait here 5 s, then fail the test.
            assert release.wait(5), "a request waited for the rebuild"
        return b'{"n":%d}' % len(calls)

    first = cache.get(build)
    time.sleep(0.1)
    served = [cache.get(build) for _ in range(5)]
    assert served == [first] * 5 and len(calls) == 2  # one rebuild for every request
    release.set()
    assert _rebuilt(cache, build, first) == b'{"n":2}'


def _fails_from_the_second_build(error: Exception) -> tuple[Callable[[], bytes], list[int]]:
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        if len(calls) > 1:
            raise error
        return b'{"n":1}'

    return build, calls


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """Whether ``text`` is logged within 5 s (by the thread rebuilding behind the requests)."""
    deadline = time.monotonic() + 5
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    return text in caplog.text


def test_a_rebuild_behind_the_requests_that_loses_the_database_keeps_the_body(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    cache = _cache(core, ttl_ms=500)
    build, calls = _fails_from_the_second_build(OperationalError("SELECT", None, disk_error()))
    first = cache.get(build)
    time.sleep(0.55)
    assert cache.get(build) == first
    assert _logged(caplog, "the database is unreachable")
    # Tried once, then the body in hand stands for another second's worth: no try per request.
    assert [cache.get(build) for _ in range(5)] == [first] * 5 and len(calls) == 2


def test_a_rebuild_behind_the_requests_that_fails_otherwise_is_logged(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    cache = _cache(core, ttl_ms=500)
    build, calls = _fails_from_the_second_build(ValueError("a bug in the build"))
    first = cache.get(build)
    time.sleep(0.55)
    assert cache.get(build) == first
    assert _logged(caplog, "rebuilding the body failed") and "a bug in the build" in caplog.text
    # Tried again a second later, not by every request meanwhile.
    assert [cache.get(build) for _ in range(5)] == [first] * 5 and len(calls) == 2


def _blocked_builds(release: threading.Event) -> tuple[Callable[[], bytes], threading.Event]:
    """Builds numbered from 1; the second says it has started (it has read the data), then waits
    for ``release``."""
    calls: list[int] = []
    started = threading.Event()

    def build() -> bytes:
        calls.append(1)
        if len(calls) == 2:
            started.set()
            assert release.wait(5)
        return b'{"n":%d}' % len(calls)

    return build, started


@pytest.fixture
def list_cache(core: Core, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], BodyCache]:
    """The list's own cache, with no body this process read in an earlier test."""
    monkeypatch.setattr(body_cache.BodyCache, "_memo", {})
    monkeypatch.setattr(body_cache.BodyCache, "_checked", {})
    return lambda ttl_ms: BodyCache(core.redis, occupancy.PUBLIC_CACHE_KEY, ttl_ms=ttl_ms)


def test_a_change_during_a_rebuild_behind_the_requests_is_not_hidden_by_it(
    core: Core, list_cache: Callable[[int], BodyCache]
) -> None:
    """The rebuild read the data before the change: its body must not stand as the current one,
    or a page told of the change would be given it (and keep it until its next poll)."""
    cache, release = list_cache(50), threading.Event()
    build, started = _blocked_builds(release)
    first = cache.get(build)
    time.sleep(0.1)
    assert cache.get(build) == first  # past its second: rebuilt behind, blocked in the build
    assert started.wait(5)
    occupancy.announce_changes(core.redis, [{"group_id": 1}])
    release.set()
    deadline = time.monotonic() + 5
    while core.redis.get(occupancy.PUBLIC_CACHE_KEY + ":last") == first.etag.encode():
        assert time.monotonic() < deadline, "the rebuild behind the requests did not end"
        time.sleep(0.01)
    assert core.redis.get(occupancy.PUBLIC_CACHE_KEY) is None  # kept as the previous body only
    assert cache.get(build, fresh=True, held=first.etag).body == b'{"n":3}'  # built after the change


def test_a_change_during_a_rebuild_by_a_request_is_not_hidden_by_it(
    core: Core, list_cache: Callable[[int], BodyCache]
) -> None:
    cache, release = list_cache(60_000), threading.Event()
    build, started = _blocked_builds(release)
    cache.get(build)
    occupancy.announce_changes(core.redis, [{"group_id": 1}])
    rebuilt: list[body_cache.CachedBody] = []
    request = threading.Thread(target=lambda: rebuilt.append(cache.get(build)))
    request.start()
    assert started.wait(5)
    occupancy.announce_changes(core.redis, [{"group_id": 2}])
    release.set()
    request.join(5)
    assert rebuilt[0].body == b'{"n":2}'  # its own request gets what it built
    assert core.redis.get(occupancy.PUBLIC_CACHE_KEY) is None
    assert cache.get(build, fresh=True, held=rebuilt[0].etag).body == b'{"n":3}'


def test_cache_serves_the_previous_body_while_another_request_rebuilds(core: Core) -> None:
    cache, build = _cache(core), Builder()
    previous = cache.get(build)
    core.redis.delete("test:body")  # the second is over
    other = core.redis.lock("test:body:lock", timeout=10)
    assert other.acquire(blocking=False)

    assert cache.get(build) == previous and build.calls == 1
    other.release()
    assert cache.get(build).body == b'{"n":2}'


def test_a_fresh_read_waits_for_the_rebuild_instead_of_the_previous_body(core: Core) -> None:
    """A page told of a change (pushed message) must not get the body from before it."""
    cache, build = _cache(core), Builder()
    cache.get(build)
    core.redis.delete("test:body")  # a change dropped the current ETag
    other = core.redis.lock("test:body:lock", timeout=10, thread_local=False)  # released by the thread
    assert other.acquire(blocking=False)

    def other_request_rebuilds() -> None:
        time.sleep(0.2)
        _cache(core)._store(b'{"n":"rebuilt"}', None)  # noqa: SLF001  (what the lock holder does)
        other.release()

    rebuilder = threading.Thread(target=other_request_rebuilds)
    rebuilder.start()
    assert cache.get(build, fresh=True).body == b'{"n":"rebuilt"}'
    rebuilder.join()
    assert build.calls == 1


def test_a_fresh_read_holding_an_older_body_gets_the_previous_one_at_once(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous body is news to a page that holds an older one: no wait for the rebuild.
    A page that holds the previous body itself waits (the test above)."""
    cache, build = _cache(core), Builder()
    previous = cache.get(build)
    core.redis.delete("test:body")
    other = core.redis.lock("test:body:lock", timeout=10)
    assert other.acquire(blocking=False)
    waits: list[str] = []
    monkeypatch.setattr(body_cache.BodyCache, "_wait_for_rebuild", lambda self: waits.append(self.key))
    assert cache.get(build, fresh=True, held="an-older-etag") == previous
    assert waits == [] and build.calls == 1
    cache.get(build, fresh=True, held=previous.etag)
    assert waits == ["test:body"]  # it holds the previous body: it waits for the new one
    other.release()


def test_a_fresh_read_skips_the_local_grace(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body_cache.BodyCache, "local_ttl_s", 30.0)
    monkeypatch.setattr(body_cache.BodyCache, "_memo", {})
    monkeypatch.setattr(body_cache.BodyCache, "_checked", {})
    cache, build = _cache(core), Builder()
    cache.get(build)
    cache.invalidate()
    assert cache.get(build).body == b'{"n":1}'  # within the local grace
    assert cache.get(build, fresh=True).body == b'{"n":2}'


def test_an_announced_change_ends_the_local_grace(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """A figure the ingester applied is announced on the change channel: the process stops
    serving its local copy at once instead of after the grace (publish -> API in milliseconds)."""
    monkeypatch.setattr(body_cache.BodyCache, "local_ttl_s", 30.0)
    monkeypatch.setattr(body_cache.BodyCache, "_memo", {})
    monkeypatch.setattr(body_cache.BodyCache, "_checked", {})
    body_cache.CHANGES.watch(core.redis)
    cache, build = _cache(core), Builder()
    cache.get(build)
    cache.invalidate()
    assert cache.get(build).body == b'{"n":1}'  # nothing announced: the local copy
    before = body_cache.CHANGES.generation
    deadline = time.monotonic() + 5
    while body_cache.CHANGES.generation == before and time.monotonic() < deadline:
        core.redis.publish(occupancy.CHANNEL, '{"group_id": 1}')
        time.sleep(0.05)
    assert cache.get(build).body == b'{"n":2}'


def test_cold_cache_with_a_rebuild_in_progress_builds_without_storing(core: Core) -> None:
    cache, build = _cache(core), Builder()
    other = core.redis.lock("test:body:lock", timeout=10)
    assert other.acquire(blocking=False)

    assert cache.get(build).body == b'{"n":1}'
    assert core.redis.keys("test:body*") == [b"test:body:lock"]
    other.release()


def test_same_body_same_etag(core: Core) -> None:
    cache = _cache(core)
    first = cache.get(lambda: b"[]")
    cache.invalidate()
    assert cache.get(lambda: b"[]").etag == first.etag
    cache.invalidate()
    assert cache.get(lambda: b"[1]").etag != first.etag


def test_group_index_reads_one_group_of_the_list() -> None:
    index = open_data.GroupIndex()
    body = open_data.dump({"lot_groups": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]})
    cached = body_cache.CachedBody(body, "etag-1")

    assert index.group(cached, 2) == b'{"id":2,"name":"B"}'
    assert index.group(cached, 3) is None
    changed = body_cache.CachedBody(open_data.dump({"lot_groups": [{"id": 2, "name": "B2"}]}), "etag-2")
    assert index.group(changed, 2) == b'{"id":2,"name":"B2"}'


def test_occupancy_drops_the_list_cache_on_change() -> None:
    """The two modules name one key: a change must reach the next reader of the list."""
    assert occupancy.PUBLIC_CACHE_KEY == open_data.LIST_CACHE_KEY


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_history_ranges_refuse_dates_at_the_edges_of_time(moment: str) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as caught:
        open_data.parse_range(None, moment, None, now)
    assert "between the years" in caught.value.errors["to"]
