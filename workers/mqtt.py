"""MQTT connection helpers shared by the ingester, the simulator and the health check."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"}:
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt:// or mqtts://)")
    tls = parts.scheme in {"mqtts", "ssl"}
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


class ReadAheadClient(mqtt.Client):
    """A paho client that reads whatever the socket holds (up to ``READ_AHEAD`` bytes) in one
    system call and hands paho each packet from memory.

    paho reads a packet in at least three ``recv`` calls (its type byte, each byte of its length,
    its body). Each is a system call that lets go of the GIL, so under a flood of small messages
    the reading thread spends most of its time in the kernel and waiting to take the GIL back from
    the thread that applies them. Only for a caller that runs its own loop and asks ``buffered``
    before waiting on the socket (``select`` cannot see these bytes): paho's ``loop_forever``
    and ``loop_start`` would leave them unread until more arrive."""

    READ_AHEAD = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_at = 0

    def buffered(self) -> bool:
        """Whether bytes already read wait in memory."""
        return self._ahead_at < len(self._ahead)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._ahead_at >= len(self._ahead):
            data = super()._sock_recv(max(bufsize, self.READ_AHEAD))
            if len(data) <= bufsize:
                return data
            self._ahead, self._ahead_at = data, 0
        start = self._ahead_at
        self._ahead_at = min(start + bufsize, len(self._ahead))
        return self._ahead[start : self._ahead_at]

    def _sock_close(self) -> None:
        # What the old connection brought must not be read as the start of the new one's.
        self._ahead, self._ahead_at = b"", 0
        super()._sock_close()


AnyClient = TypeVar("AnyClient", bound=mqtt.Client)


def make_client(
    url: str, client_id: str = "", *, persistent: bool = False, manual_ack: bool = False
) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho 2.x client for ``url``. ``persistent`` keeps the broker-side session (QoS 1 messages
    queued while the client is away are delivered when it reconnects); ``manual_ack`` leaves the
    PUBACK to the caller, who sends it once the message is safely applied."""
    return _made(mqtt.Client, url, client_id, persistent, manual_ack)


def make_read_ahead_client(
    url: str, client_id: str, *, persistent: bool = False, manual_ack: bool = False
) -> tuple[ReadAheadClient, BrokerAddress]:
    """``make_client``'s settings on a ``ReadAheadClient``, for a caller with its own network loop."""
    return _made(ReadAheadClient, url, client_id, persistent, manual_ack)


def _made(
    kind: type[AnyClient], url: str, client_id: str, persistent: bool, manual_ack: bool
) -> tuple[AnyClient, BrokerAddress]:
    address = parse_mqtt_url(url)
    client = kind(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent, manual_ack=manual_ack
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    return client, address


def probe(url: str, timeout: float = 3.0) -> None:
    """Connect and disconnect; raise if the broker does not accept us within ``timeout``."""
    client, address = make_client(url)
    connected = threading.Event()
    result: dict[str, object] = {}

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        result["reason"] = reason
        connected.set()

    client.on_connect = on_connect
    client.connect(address.host, address.port, keepalive=10)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise TimeoutError(f"no CONNACK from {address.host}:{address.port} within {timeout}s")
        reason = result["reason"]
        if getattr(reason, "is_failure", False):
            raise ConnectionError(f"broker refused the connection: {reason}")
    finally:
        client.disconnect()
        client.loop_stop()
