"""API tests read their own writes at once: no per-process grace period on cached bodies."""

import pytest

from dashboard.services.body_cache import BodyCache


@pytest.fixture(autouse=True)
def _no_local_cache_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BodyCache, "local_ttl_s", 0.0)
