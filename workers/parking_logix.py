"""Parking Logix client: lot counts from the "OpenSpace Cloud API" (in-ground and gate sensors).

The calls and shapes follow Parking Logix's public documentation (see
``/work/shared/EXTERNAL-INTERFACES.md``); recorded examples are in
``tests/workers/payloads/parking_logix_*.json``.

- Every request carries the lot group's key in the ``x-api-key`` header.
- ``GET {base}/pl1/multi-lot-info`` answers a list holding one list of lots:
  ``[[{"location_name": "Lot A", "total_spaces": 4380, "free_spaces": 3410, "occupancy": 22}, ...]]``.
- ``GET {base}/pl1/location-info`` (the call of a single-lot key) answers
  ``[{"location_name", "total_spaces", "free_spaces", "date_time": "2017-06-14 12:38:34 -7:00", ...}]``.
- Numbers arrive as numbers in the vendor's guide and as strings (``"1143"``) in live use: both work.
- Errors: HTTP 401, 403 or 422, or HTTP 200 with ``{"status": "ERROR", "result": "<code>"}``.

When location-info is used: ``lots()`` asks multi-lot-info first, because one call then covers every
lot group sharing the key. A key may lack access to a call, and a single-lot key answers
multi-lot-info with HTTP 403; only then ``lots()`` asks location-info. Any other error is reported
as it is, so a wrong key is not hidden behind a second, confusing error.

Transport: connect timeout 5 s, read timeout 15 s; connection errors and HTTP 5xx are retried with
exponential backoff. A read timeout is not retried: the next run is minutes away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests

from workers.vendor_http import (
    BACKOFF_FACTOR,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RETRIES,
    VendorClient,
    whole_number,
)

MULTI_LOT_INFO = "/pl1/multi-lot-info"
LOCATION_INFO = "/pl1/location-info"
# "2017-06-14 12:38:34 -7:00": the offset's hour may have one digit, which strptime's %z refuses.
_DATE_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})\s*(?:([+-])(\d{1,2}):?(\d{2}))?$")
_STATUS_HINTS = {
    401: "the API key was not accepted: check the Parking Logix API key on the lot group",
    403: "the API key has no access to this call: check the Parking Logix API key on the lot group",
    422: "Parking Logix could not process the request",
}


class ParkingLogixError(Exception):
    """A Parking Logix call failed; ``str()`` tells an admin what to check. ``status`` is the HTTP
    status when the vendor answered with an error status, ``code`` the vendor's error code."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class LotCount:
    """One Parking Logix lot. ``updated_at`` is None when the call gives no time (multi-lot-info)."""

    location_name: str
    total_spaces: int
    free_spaces: int
    updated_at: datetime | None = None

    @property
    def occupied(self) -> int:
        """Spaces taken; a sensor reporting more free spaces than exist counts as empty, not negative."""
        return max(self.total_spaces - self.free_spaces, 0)


class ParkingLogixClient(VendorClient):
    """One client per run; the key is an argument of each call because every lot group has its own.
    Use as a context manager."""

    vendor = "Parking Logix"
    url_setting = "Parking Logix API Base URL"
    error = ParkingLogixError

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
    ) -> None:
        super().__init__(
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            backoff_factor=backoff_factor,
        )

    def lots(self, api_key: str) -> list[LotCount]:
        """Every lot the key can see: multi-lot-info, or location-info for a single-lot key."""
        try:
            return self.multi_lot_info(api_key)
        except ParkingLogixError as exc:
            if exc.status != 403:
                raise
        return self.location_info(api_key)

    def multi_lot_info(self, api_key: str) -> list[LotCount]:
        payload = self._get(MULTI_LOT_INFO, api_key)
        if not isinstance(payload, list):
            raise _shape_error(MULTI_LOT_INFO, "not a list")
        # Documented as a list holding one list; a flat list of lots is read the same way.
        items = [lot for entry in payload for lot in (entry if isinstance(entry, list) else [entry])]
        return [_lot(MULTI_LOT_INFO, item) for item in items]

    def location_info(self, api_key: str) -> list[LotCount]:
        payload = self._get(LOCATION_INFO, api_key)
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list):
            raise _shape_error(LOCATION_INFO, "not a list")
        return [_lot(LOCATION_INFO, item) for item in payload]

    def _get(self, path: str, api_key: str) -> Any:
        response = self._request("GET", path, headers={"x-api-key": api_key})
        status = response.status_code
        if status != 200:
            if status >= 500:
                hint = (
                    f"the service is having trouble after {self._retries} retries; the next run tries again"
                )
            else:
                hint = _STATUS_HINTS.get(status, "check the Parking Logix API Base URL")
            detail = _error_detail(response)
            raise ParkingLogixError(
                f"Parking Logix answered HTTP {status} to {path}{detail}: {hint}", status=status
            )
        try:
            payload = response.json()
        except ValueError as exc:
            raise ParkingLogixError(
                f"Parking Logix answered {path} with something that is not JSON "
                f"(starts {response.text[:80]!r}): check the Parking Logix API Base URL"
            ) from exc
        if isinstance(payload, dict) and str(payload.get("status", "")).upper() == "ERROR":
            code = str(payload.get("result") or "no error code")
            raise ParkingLogixError(f"Parking Logix refused {path}: {code}", code=code)
        return payload


def quoted(name: str) -> str:
    """A Parking Logix name as the task log shows it: in double quotes, with what cannot be seen
    made visible, because names must match exactly and ``"Mountaineer Garage "`` differs from
    ``"Mountaineer Garage"`` only by a space nobody sees.

    A space shows as itself only between two visible characters; at either end or beside other
    whitespace it shows as ␠ (U+2420 SYMBOL FOR SPACE): ``"Mountaineer Garage␠"``,
    ``"Lot␠␠A"``. Other whitespace and unprintable characters show as Python escapes (``\\t``,
    ``\\xa0`` for a no-break space, ``\\u200b`` for a zero-width space), and a backslash as ``\\\\``."""
    shown = []
    last = len(name) - 1
    for index, char in enumerate(name):
        if char == " ":
            inner = 0 < index < last and not name[index - 1].isspace() and not name[index + 1].isspace()
            shown.append(" " if inner else "\u2420")
        elif char == "\\" or char.isspace() or not char.isprintable():
            shown.append(repr(char)[1:-1])
        else:
            shown.append(char)
    return '"' + "".join(shown) + '"'


def _error_detail(response: requests.Response) -> str:
    """The vendor's error code or message from an error body, if it sent one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        detail = body.get("result") or body.get("message")
        if isinstance(detail, str) and detail.strip():
            return f" ({detail.strip()[:120]})"
    return ""


def _shape_error(path: str, what: str) -> ParkingLogixError:
    return ParkingLogixError(f"Parking Logix's answer to {path} has an unexpected shape ({what})")


def _lot(path: str, item: Any) -> LotCount:
    if not isinstance(item, dict):
        raise _shape_error(path, "a lot is not an object")
    name = item.get("location_name")
    if not isinstance(name, str) or not name:
        raise _shape_error(path, "a lot has no location_name")
    return LotCount(
        location_name=name,
        total_spaces=_count(path, name, item, "total_spaces"),
        free_spaces=_count(path, name, item, "free_spaces"),
        updated_at=_date_time(item.get("date_time")),
    )


def _count(path: str, name: str, item: dict[str, Any], field: str) -> int:
    """A whole non-negative number, given as a number or a string."""
    raw = item.get(field)
    number = whole_number(raw)
    if number is None:
        raise _shape_error(path, f"{field} of {name!r} is not a whole number: {raw!r}")
    return number


def _date_time(raw: Any) -> datetime | None:
    """``"2017-06-14 12:38:34 -7:00"`` in UTC (a time without an offset is taken as UTC); None when
    missing or unreadable: the caller then uses the time of the call, because a bad time must not
    throw away a good count."""
    match = _DATE_TIME_RE.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        return None
    day, clock, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    try:
        zone = timezone(-offset if sign == "-" else offset)
        return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        return None
