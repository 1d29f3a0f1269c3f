"""Mistall client: lot counts from Mistall's camera-based car counting.

Mistall publishes no API documentation, so the wire format below is ASSUMED. Everything that knows
it lives in this module, with recorded example payloads in ``tests/workers/payloads/mistall_*.json``;
when Mistall's real format is known, ``MistallClient._login``, ``_parse_lots`` and those payloads
change, and nothing else.

Assumed wire format:

1. ``POST {api_url}/auth/token`` with the JSON body ``{"username": ..., "password": ...}``
   -> ``200 {"access_token": "...", "token_type": "Bearer", "expires_in": 3600}``;
   401 or 403 when the credentials are wrong.
2. ``GET {api_url}/lots`` with ``Authorization: Bearer <access_token>``
   -> ``200 {"lots": [{"id": "ML-1", "name": "North Garage", "capacity": 420, "occupied": 233,
   "updated_at": "2024-05-01T14:05:00Z"}, ...]}``.
   ``id`` is required (a number or a string); ``name``, ``capacity``, ``occupied`` and
   ``updated_at`` may be missing or null; numbers may arrive as strings (``"420"``).

A token lives for one ``fetch_lots`` call: the task runs every 10 minutes, so keeping tokens
between runs would save one request and cost a stored credential.

Transport: connect timeout 5 s, read timeout 15 s; connection errors and HTTP 5xx are retried with
exponential backoff. A read timeout is not retried: a vendor that needed more than 15 s will not do
better a second later, and the next run is minutes away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.vendor_http import (
    BACKOFF_FACTOR,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RETRIES,
    VendorClient,
    whole_number,
)

SETTINGS_HINT = "System Settings > Third Party > Mistall"


class MistallError(Exception):
    """Mistall could not be used this run; ``str()`` tells an admin what to check."""


@dataclass(frozen=True)
class MistallLotReading:
    """One lot as Mistall reports it. Counts are None when Mistall left them out."""

    mistall_id: str
    name: str
    capacity: int | None
    occupied: int | None
    updated_at: datetime | None


class MistallClient(VendorClient):
    """Logs in and reads every lot the Mistall account can see. Use as a context manager."""

    vendor = "Mistall"
    url_setting = "Mistall API URL"
    error = MistallError

    def __init__(
        self,
        api_url: str,
        username: str,
        password: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
    ) -> None:
        super().__init__(
            api_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            backoff_factor=backoff_factor,
            methods=("GET", "POST"),
        )
        self.api_url = self.base_url
        self._username = username
        self._password = password

    def fetch_lots(self) -> list[MistallLotReading]:
        """Every lot with its current count. Raises ``MistallError``."""
        token = self._login()
        payload = self._call("GET", "/lots", headers={"Authorization": f"Bearer {token}"})
        return _parse_lots(payload)

    def _login(self) -> str:
        payload = self._call(
            "POST", "/auth/token", json={"username": self._username, "password": self._password}
        )
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise MistallError(
                f"Mistall login at {self.api_url}/auth/token answered without an access_token: "
                "check the Mistall API URL"
            )
        return token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.api_url}{path}"
        response = self._request(method, path, **kwargs)
        if response.status_code in (401, 403):
            if path == "/auth/token":
                raise MistallError(
                    f"Mistall rejected the login (HTTP {response.status_code}): check Mistall Username "
                    f"and Mistall Password ({SETTINGS_HINT})"
                )
            raise MistallError(
                f"Mistall refused {method} {url} with a fresh token (HTTP {response.status_code}): "
                "the account may lack access to lot data; ask Mistall"
            )
        if response.status_code >= 500:
            raise MistallError(
                f"Mistall answered HTTP {response.status_code} to {method} {url} after "
                f"{self._retries} retries: the service is having trouble, the next run tries again"
            )
        if response.status_code != 200:
            raise MistallError(
                f"Mistall answered HTTP {response.status_code} to {method} {url}: check the Mistall API URL"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise MistallError(
                f"Mistall answered {method} {url} with something that is not JSON "
                f"(starts {response.text[:80]!r}): check the Mistall API URL"
            ) from exc


def _parse_lots(payload: Any) -> list[MistallLotReading]:
    lots = payload.get("lots") if isinstance(payload, dict) else None
    if not isinstance(lots, list):
        raise MistallError(
            'Mistall\'s lot list has an unexpected shape (no "lots" list): its API may have changed'
        )
    return [_parse_lot(index, item) for index, item in enumerate(lots)]


def _parse_lot(index: int, item: Any) -> MistallLotReading:
    if not isinstance(item, dict):
        raise MistallError(f"Mistall lot #{index + 1} is not an object: its API may have changed")
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise MistallError(f"Mistall lot #{index + 1} has no id: its API may have changed")
    mistall_id = str(raw_id).strip()
    name = item.get("name")
    return MistallLotReading(
        mistall_id=mistall_id,
        name=name.strip() if isinstance(name, str) and name.strip() else mistall_id,
        capacity=_count(mistall_id, item, "capacity"),
        occupied=_count(mistall_id, item, "occupied"),
        updated_at=_timestamp(mistall_id, item.get("updated_at")),
    )


def _count(lot: str, item: dict[str, Any], field: str) -> int | None:
    """A whole non-negative number, given as a number or a string; None when missing."""
    raw = item.get(field)
    if raw is None or raw == "":
        return None
    number = whole_number(raw)
    if number is None:
        raise MistallError(f"Mistall lot {lot}: {field} is not a whole number ({raw!r})")
    return number


def _timestamp(lot: str, raw: Any) -> datetime | None:
    """ISO-8601; a time without an offset is taken as UTC."""
    if raw is None or raw == "":
        return None
    try:
        parsed = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise MistallError(f"Mistall lot {lot}: updated_at is not an ISO-8601 time ({raw!r})")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
