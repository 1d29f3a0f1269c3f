"""What every vendor client shares: one ``requests`` session with timeouts and retries.

Retries with exponential backoff cover connection errors and 5xx answers; a read timeout is not
retried (the task runs again within minutes, and a slow vendor should not hold a worker for long).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from types import TracebackType
from typing import Any, ClassVar, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
RETRIES = 3
BACKOFF_FACTOR = 0.5
RETRY_STATUSES = (500, 502, 503, 504)


class VendorClient:
    """Base of the vendor clients; use them as context managers so the session is closed.

    Subclasses name the vendor, the setting that holds its URL and their error class, so that a
    transport failure reads the same for every vendor and tells the admin what to check.
    """

    vendor: ClassVar[str] = "the vendor"
    url_setting: ClassVar[str] = "API URL"
    error: ClassVar[type[Exception]] = RuntimeError

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        methods: Iterable[str] = ("GET",),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._http = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=False,
            status=retries,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset(methods),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            return self._http.request(method, url, timeout=self._timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise self.error(
                f"could not connect to {self.vendor} at {url} within {self._timeout[0]:g} s "
                f"({self._retries} retries): check the {self.url_setting}"
            ) from exc
        except requests.Timeout as exc:
            raise self.error(
                f"{self.vendor} did not answer {method} {url} within {self._timeout[1]:g} s"
            ) from exc
        except requests.ConnectionError as exc:
            raise self.error(
                f"could not reach {self.vendor} at {url} ({self._retries} retries): "
                f"check the {self.url_setting}"
            ) from exc
        except requests.RequestException as exc:
            raise self.error(f"request to {self.vendor} at {url} failed: {exc}") from exc


def whole_number(raw: object) -> int | None:
    """A non-negative whole number sent as a number or as a string ("1143"); None if it is not one
    (the caller says which vendor field was wrong)."""
    try:
        number = math.nan if raw is None or isinstance(raw, bool) else float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if number >= 0 and number.is_integer() else None
