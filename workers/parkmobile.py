"""ParkMobile client: permits drivers bought in the ParkMobile app, for the Fetch ParkMobile Stats task.

ParkMobile publishes no API documentation, so the wire format below is ASSUMED. Everything that knows
it lives in this module, with recorded example payloads in ``tests/workers/payloads/parkmobile/``;
when ParkMobile's real format is known, ``ParkMobileClient.permits``, ``_parse_permit`` and those
payloads change, and nothing else.

Assumed wire format:

- Every request carries the API Username and API Password as HTTP basic auth and the key in the
  ``X-API-Key`` header (the seed's three credentials); 401 or 403 when any of them is wrong.
- ``GET {base_url}/permits?updatedSince=<ISO-8601 UTC>&page=<n>&pageSize=<size>`` answers
  ``200 {"permits": [...], "page": 1, "pageSize": 500, "hasMore": false}``: the permits created or
  changed (bought, extended) since that time, oldest change first. ``hasMore`` true means "ask for
  the next page"; a missing ``hasMore`` means no more pages.
- One permit::

      {"permitId": "PM-40211873", "licensePlate": "ABC 123", "plateState": "ON",
       "zone": "1001", "startTime": "2024-05-01T09:30:00-04:00",
       "endTime": "2024-05-01T11:30:00-04:00", "amount": "6.50", "currency": "CAD",
       "updatedAt": "2024-05-01T09:30:04-04:00"}

  ``permitId`` (a string or a number), ``licensePlate``, ``zone`` (ParkMobile's zone name or
  number, which the site mirrors as a lot zone of the same name), ``startTime`` and ``endTime``
  (ISO-8601 with a UTC offset), ``amount`` (a decimal number or string, at most two decimals) and
  ``currency`` (ISO 4217) are required; other fields are kept in the raw payload only.

A malformed permit does not fail the batch: it comes back in ``PermitBatch.rejected`` with the
reason, so one bad entry cannot hide the good ones and the run log still names it. A malformed
page (no ``permits`` list, not JSON) fails the call, because then nothing in it can be trusted.

A time without a UTC offset is refused rather than guessed: read in the wrong zone, every permit
would be hours off, and officers would tow paid cars.

Transport: connect timeout 5 s, read timeout 15 s; connection errors and HTTP 5xx are retried with
exponential backoff. A read timeout is not retried: the next run is three minutes away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from workers.vendor_http import BACKOFF_FACTOR, CONNECT_TIMEOUT, READ_TIMEOUT, RETRIES, VendorClient

PERMITS = "/permits"
PAGE_SIZE = 500
# A guard against a server that always says "hasMore": 100 pages of 500 is far more than a site
# sells between two runs, and the run fails loudly instead of looping.
MAX_PAGES = 100
SETTINGS_HINT = "System Settings > Third Party > ParkMobile"
# Each run asks for what changed since the last successful run began, minus this overlap, which
# covers clocks that disagree and permits written while that run was reading. Re-reading a permit
# costs nothing: the import is idempotent on its permit id.
OVERLAP = timedelta(minutes=10)
# The first run (or the first after a long pause) looks back this far, no further.
FIRST_LOOKBACK = timedelta(hours=24)
MAX_LOOKBACK = timedelta(days=7)


class ParkMobileError(Exception):
    """ParkMobile could not be used this run; ``str()`` tells an admin what to check."""


@dataclass(frozen=True)
class ParkMobilePermit:
    """One permit as ParkMobile sent it, times in UTC and the amount in cents."""

    permit_id: str
    plate: str
    zone: str
    start_at: datetime
    end_at: datetime
    amount_cents: int
    currency: str
    raw: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class RejectedPermit:
    """An entry that could not be read: ``ref`` names it ("permit PM-7" or "entry #3 of page 1")."""

    ref: str
    reason: str
    raw: Any = field(compare=False)


@dataclass(frozen=True)
class PermitBatch:
    permits: tuple[ParkMobilePermit, ...]
    rejected: tuple[RejectedPermit, ...]


def since(last_success: datetime | None, now: datetime) -> datetime:
    """Where the next run's ``updatedSince`` starts (see ``OVERLAP``, ``FIRST_LOOKBACK``)."""
    start = now - FIRST_LOOKBACK if last_success is None else last_success - OVERLAP
    return max(start, now - MAX_LOOKBACK)


class ParkMobileClient(VendorClient):
    """Reads the permits that changed since a time. Use as a context manager."""

    vendor = "ParkMobile"
    url_setting = "ParkMobile API Base URL"
    error = ParkMobileError

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        api_key: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            backoff_factor=backoff_factor,
        )
        self._auth = (username, password)
        self._api_key = api_key
        self._page_size = page_size

    def permits(self, updated_since: datetime) -> PermitBatch:
        """Every permit created or changed since ``updated_since``, all pages. Raises ``ParkMobileError``."""
        stamp = updated_since.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        permits: list[ParkMobilePermit] = []
        rejected: list[RejectedPermit] = []
        for page in range(1, MAX_PAGES + 1):
            payload = self._get({"updatedSince": stamp, "page": page, "pageSize": self._page_size})
            entries = payload.get("permits") if isinstance(payload, dict) else None
            if not isinstance(entries, list):
                raise ParkMobileError(
                    f'ParkMobile\'s permit list (page {page}) has an unexpected shape (no "permits" list): '
                    "its API may have changed"
                )
            for index, entry in enumerate(entries):
                parsed = _parse_permit(entry, f"entry #{index + 1} of page {page}")
                if isinstance(parsed, ParkMobilePermit):
                    permits.append(parsed)
                else:
                    rejected.append(parsed)
            if payload.get("hasMore") is not True:
                return PermitBatch(tuple(permits), tuple(rejected))
        raise ParkMobileError(
            f"ParkMobile still had more permits after {MAX_PAGES} pages of {self._page_size}: "
            "nothing was imported; the answer may be looping"
        )

    def _get(self, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{PERMITS}"
        response = self._request(
            "GET", PERMITS, params=params, auth=self._auth, headers={"X-API-Key": self._api_key}
        )
        status = response.status_code
        if status in (401, 403):
            raise ParkMobileError(
                f"ParkMobile rejected the credentials (HTTP {status}): check ParkMobile API Username, "
                f"ParkMobile API Password and ParkMobile X-API-Key ({SETTINGS_HINT})"
            )
        if status >= 500:
            raise ParkMobileError(
                f"ParkMobile answered HTTP {status} to GET {url} after {self._retries} retries: "
                "the service is having trouble, the next run tries again"
            )
        if status != 200:
            raise ParkMobileError(
                f"ParkMobile answered HTTP {status} to GET {url}: check the ParkMobile API Base URL"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ParkMobileError(
                f"ParkMobile answered GET {url} with something that is not JSON "
                f"(starts {response.text[:80]!r}): check the ParkMobile API Base URL"
            ) from exc


class _Malformed(ValueError):
    pass


def _parse_permit(entry: Any, position: str) -> ParkMobilePermit | RejectedPermit:
    if not isinstance(entry, dict):
        return RejectedPermit(position, "not an object", entry)
    permit_id = _text(entry.get("permitId"))
    ref = f"permit {permit_id}" if permit_id else position
    try:
        if not permit_id:
            raise _Malformed("no permitId")
        start_at = _time(entry, "startTime")
        end_at = _time(entry, "endTime")
        if end_at <= start_at:
            raise _Malformed("endTime is not after startTime")
        return ParkMobilePermit(
            permit_id=permit_id,
            plate=_required_text(entry, "licensePlate"),
            zone=_required_text(entry, "zone"),
            start_at=start_at,
            end_at=end_at,
            amount_cents=_cents(entry.get("amount")),
            currency=_currency(entry.get("currency")),
            raw=entry,
        )
    except _Malformed as exc:
        return RejectedPermit(ref, str(exc), entry)


def _text(raw: Any) -> str:
    """A string or a number as text ("1001" and 1001 are the same zone); "" for anything else."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return ""
    return str(raw).strip()


def _required_text(entry: dict[str, Any], name: str) -> str:
    value = _text(entry.get(name))
    if not value:
        raise _Malformed(f"no {name}")
    return value


def _time(entry: dict[str, Any], name: str) -> datetime:
    raw = entry.get(name)
    if raw is None or raw == "":
        raise _Malformed(f"no {name}")
    try:
        parsed = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise _Malformed(f"{name} is not an ISO-8601 time ({raw!r})")
    if parsed.tzinfo is None:
        raise _Malformed(f"{name} has no UTC offset ({raw!r})")
    return parsed.astimezone(UTC)


def _cents(raw: Any) -> int:
    """A decimal amount ("6.50" or 6.5) in cents; negative amounts or fractions of a cent are refused."""
    if raw is None or raw == "" or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _Malformed("no amount")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _Malformed(f"amount is not a number ({raw!r})") from None
    cents = amount * 100
    if not amount.is_finite() or amount < 0 or cents != cents.to_integral_value():
        raise _Malformed(f"amount is negative or has fractions of a cent ({raw!r})")
    return int(cents)


def _currency(raw: Any) -> str:
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if len(code) != 3 or not code.isalpha():
        raise _Malformed(f"currency is not a three-letter code ({raw!r})")
    return code
