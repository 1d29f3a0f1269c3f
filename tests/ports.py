"""Ports for test servers that are stopped and started again on the same port (outage tests)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20_000


def restartable_port() -> int:
    """A free port below the kernel's ephemeral range.

    While a server on a port inside that range is down, a client retrying it can be given that
    very port as its own source port and connect to itself (TCP simultaneous open); the server
    then cannot bind again. Seen: the embedded broker restarted under a reconnecting ingester
    failed with "address already in use", and the ingester got back its own PUBLISH as a PUBACK.
    """
    first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32_768
    for _ in range(100):
        port = random.randrange(LOWEST, max(first_ephemeral, LOWEST + 1_000))  # noqa: S311
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")
