"""MQTT connection helpers shared by the ingester, the simulator and the health check."""

from __future__ import annotations

import threading
from dataclasses import dataclass
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


def make_client(
    url: str, client_id: str = "", *, persistent: bool = False, manual_ack: bool = False
) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho 2.x client for ``url``. ``persistent`` keeps the broker-side session (QoS 1 messages
    queued while the client is away are delivered when it reconnects); ``manual_ack`` leaves the
    PUBACK to the caller, who sends it once the message is safely applied."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(
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
