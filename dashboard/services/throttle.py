"""Failure counters in Redis that stop guessing: passwords on ``POST /login`` (per account and per
client address) and API keys (per client address).

Each counter counts the failures of one subject (an account's normalised e-mail, a client address)
and expires ``window`` seconds after its first. An attempt is counted before the password or key is
checked, and taken back if it did not fail. Once a counter reaches its limit, the subject is refused,
with nothing checked, until the counter expires; refused attempts are not counted, so a lock lasts at
most ``window`` whatever an attacker keeps sending: nobody can lock a real user out for longer than
that at a time. The counters are shared by every web process.

Subjects are hashed into the key names (no e-mail addresses in Redis). IPv6 clients are counted
per /64, the block one subscriber usually holds, or rotating addresses would escape the limit.

If Redis cannot be reached, attempts are let through (and the error logged): logging in must keep
working in an outage; guessing is limited again as soon as Redis is back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from dashboard.services.errors import DomainError

log = logging.getLogger(__name__)

KEY_PREFIX = "parkops:throttle:"

# KEYS: the subjects' counters; ARGV: limit and window of each. If any counter is at its limit,
# nothing changes and the longest wait comes back ({-1, seconds, index}); otherwise every counter
# counts this attempt ({0, count...}), its expiry starting with its first attempt (and repaired if
# a counter somehow lost it: one without would lock its subject for ever). One script, so no two
# processes interleave: 200 guesses sent at once get exactly ``failures`` password checks.
_ATTEMPT = """
local wait, which = 0, 0
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, window)
      ttl = window
    end
    if ttl > wait then
      wait, which = ttl, i
    end
  end
end
if wait > 0 then
  return {-1, wait, which}
end
local counts = {0}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 or redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, tonumber(ARGV[2 * i]))
  end
  counts[i + 1] = count
end
return counts
"""

# Take back an attempt that did not fail (never below zero, never re-creating an expired counter).
_RELEASE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
"""


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failures per subject within ``window`` seconds of the first."""

    name: str
    failures: int
    window: int


# An account: a person mistyping does not reach 10 in a quarter of an hour; a guesser gets 10.
LOGIN_ACCOUNT = Limit("login-account", failures=10, window=15 * 60)
# An address: higher, as a campus or an office shares one address behind NAT.
LOGIN_ADDRESS = Limit("login-address", failures=50, window=15 * 60)
# Unknown API keys from one address (a revoked key is not a guess and is not counted: a fleet
# still sending the old key during a key rotation must not lock out the devices already updated).
API_KEY_ADDRESS = Limit("api-key-address", failures=30, window=15 * 60)


# Self-service forms that send a link by e-mail (register, resend, forgot password): every request
# counts, per address written to (nobody can flood someone's inbox) and per client. The client's
# counter is not the login's: a campus behind one address registering at term start must not lock
# its logins. A wrong e-mailed link, though, is a guess and counts as a failed login (``LOGIN_ADDRESS``).
ACCOUNT_MAIL = Limit("account-mail", failures=5, window=15 * 60)
ACCOUNT_MAIL_ADDRESS = Limit("account-mail-address", failures=30, window=15 * 60)


@dataclass(frozen=True)
class Subject:
    """What one counter counts failures of: ``value`` under ``limit``."""

    limit: Limit
    value: str

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{KEY_PREFIX}{self.limit.name}:{digest}"


class Throttled(DomainError):
    """Too many failures: refused for ``retry_after`` more seconds."""

    def __init__(self, subject: Subject, retry_after: int) -> None:
        self.subject = subject
        self.retry_after = max(1, retry_after)
        super().__init__(f"Too many attempts; try again in {self.minutes_text}.")

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def minutes_text(self) -> str:
        return f"{self.minutes} minute" + ("" if self.minutes == 1 else "s")


def client_address(remote_addr: str | None) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return remote_addr or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def login_subjects(email: str, remote_addr: str | None) -> tuple[Subject, Subject]:
    """The account (its e-mail as looked up: trimmed, lower-cased) and the client address."""
    return (
        Subject(LOGIN_ACCOUNT, email.strip().lower()),
        Subject(LOGIN_ADDRESS, client_address(remote_addr)),
    )


def mail_subjects(email: str, remote_addr: str | None) -> tuple[Subject, Subject]:
    """The address a link would be sent to (as looked up) and the client address."""
    return (
        Subject(ACCOUNT_MAIL, email.strip().lower()),
        Subject(ACCOUNT_MAIL_ADDRESS, client_address(remote_addr)),
    )


class Attempt:
    """One counted attempt (``attempt``): say how it ended with ``failed`` or ``succeeded``."""

    def __init__(self, client: redis.Redis, subjects: Sequence[Subject], counts: Sequence[int]) -> None:
        self._client = client
        self._subjects = tuple(subjects)
        self._counts = tuple(counts)

    def failed(self) -> Throttled | None:
        """The attempt stays counted; the lock it started, if it was the last one allowed."""
        for subject, count in zip(self._subjects, self._counts, strict=False):
            if count == subject.limit.failures:
                return Throttled(subject, subject.limit.window)
        return None

    def succeeded(self, forget: Sequence[Subject] = ()) -> None:
        """Take the attempt back, and forget every failure of the subjects in ``forget`` (an account
        whose password was just given). Other subjects keep their earlier failures: a guesser's
        address is not cleared by logging in to an account of their own."""
        forgotten = {s.key for s in forget}
        others = [s.key for s in self._subjects if s.key not in forgotten]
        try:
            if others:
                self._client.register_script(_RELEASE)(keys=others)
            if forgotten:
                self._client.delete(*forgotten)
        except redis.RedisError:
            log.exception("throttle: Redis unavailable, attempt not taken back")


def attempt(client: redis.Redis, subjects: Sequence[Subject]) -> Attempt:
    """Count an attempt for every subject, or raise ``Throttled`` (the longest wait, counting
    nothing) if any has reached its limit. Counted before the password or key is checked, so that
    attempts sent at once cannot all slip in before the first failure is recorded."""
    limits = [value for s in subjects for value in (s.limit.failures, s.limit.window)]
    try:
        reply = client.register_script(_ATTEMPT)(keys=[s.key for s in subjects], args=limits)
    except redis.RedisError:
        log.exception("throttle: Redis unavailable, attempt not limited")
        return Attempt(client, (), ())
    if int(reply[0]) < 0:
        raise Throttled(subjects[int(reply[2]) - 1], int(reply[1]))
    return Attempt(client, subjects, [int(c) for c in reply[1:]])
