"""The failure counters behind the login and API key throttles, on the test Redis."""

from __future__ import annotations

import socket

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.services import throttle

LIMIT = throttle.Limit("test", failures=3, window=600)


def subject(value: str = "someone@campus.test") -> throttle.Subject:
    return throttle.Subject(LIMIT, value)


@pytest.mark.parametrize(
    ("remote", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # same subscriber, same counter
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_its_64(remote, counted_as):
    assert throttle.client_address(remote) == counted_as


def test_the_limit_locks_for_the_rest_of_the_window_and_refusals_are_not_counted(core):
    for _ in range(LIMIT.failures):
        lock = throttle.attempt(core.redis, [subject()]).failed()
    assert lock is not None and lock.minutes == 10
    for _ in range(5):
        with pytest.raises(throttle.Throttled) as refused:
            throttle.attempt(core.redis, [subject()])
    assert 0 < refused.value.retry_after <= LIMIT.window
    assert int(core.redis.get(subject().key)) == LIMIT.failures
    assert "someone" not in subject().key  # no e-mail addresses in Redis


def test_a_success_is_taken_back_and_forgets_only_what_it_is_told(core):
    account, address = subject(), subject("192.0.2.1")
    for _ in range(2):
        throttle.attempt(core.redis, [account, address]).failed()
    throttle.attempt(core.redis, [account, address]).succeeded(forget=[account])
    assert core.redis.get(account.key) is None
    assert int(core.redis.get(address.key)) == 2


def test_a_counter_that_lost_its_expiry_still_ends(core):
    core.redis.set(subject().key, LIMIT.failures)  # e.g. restored from a dump without its TTL
    with pytest.raises(throttle.Throttled):
        throttle.attempt(core.redis, [subject()])
    assert 0 < core.redis.ttl(subject().key) <= LIMIT.window


def test_taking_back_never_goes_below_zero_nor_revives_an_expired_counter(core):
    attempt = throttle.attempt(core.redis, [subject()])
    core.redis.delete(subject().key)  # expired meanwhile
    attempt.succeeded()
    assert core.redis.get(subject().key) is None


def test_without_redis_attempts_are_let_through_and_logged(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = redis.Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    attempt = throttle.attempt(unreachable, [subject()])
    assert attempt.failed() is None
    attempt.succeeded(forget=[subject()])
    assert "Redis unavailable, attempt not limited" in caplog.text
