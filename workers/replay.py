"""Replaying the messages the ingester kept for a device before anyone had registered it.

After an admin maps an unknown device, its kept messages are published again on their own topics
so that they reach the ingester like any other message and are counted by the same code. Why
through the broker rather than by calling the ingester: only the ingester process holds the
device map and the occupancy state; a job in another process would have to duplicate both.

Delivery is at least once. The messages are deleted in the same transaction that reads them, and
it commits only after the broker acknowledged every one (QoS 1), so a job that dies midway leaves
them kept for the next run; a message published twice is counted once, because the ingester
de-duplicates events by ``event_id`` (a repeated count reading is absolute and harmless).
"""

from __future__ import annotations

import logging
import uuid

from rq import Queue

from dashboard.core import Core, get_core
from dashboard.services import devices
from dashboard.services.errors import NotFound
from workers.mqtt import make_client

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10
JOB_TIMEOUT_SECONDS = 30 * 60


class ReplayFailed(RuntimeError):
    """The broker did not acknowledge a replayed message; the messages stay kept."""


def publish_in_order(core: Core, messages: list[tuple[str, str]]) -> None:
    """Publish with QoS 1, one message in flight at a time: slower than a window of 20, but the
    ingester sees them in the order they were kept, even across a device's different topics (a
    count reading must not overtake the events before it)."""
    client, address = make_client(core.mqtt_url, f"parkops-replay-{uuid.uuid4().hex[:12]}")
    client.max_inflight_messages_set(1)
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload.encode("utf-8"), qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(PUBLISH_TIMEOUT_SECONDS)
            if not info.is_published():
                raise ReplayFailed(f"broker did not acknowledge message {info.mid} within the timeout")
    finally:
        client.disconnect()
        client.loop_stop()


def replay(core: Core, device_id: str) -> int:
    """Publish a registered, active device's kept messages again; returns how many were published.

    A device that is unknown or inactive is left alone: the ingester would only keep its messages
    again (or drop them), so they wait until an admin registers or reactivates it.
    """
    with core.db.session() as session:
        try:
            device = devices.get_device(session, device_id)
        except NotFound:
            log.warning("replay: %s is not registered; its kept messages stay", device_id)
            return 0
        if not device.active:
            log.warning("replay: %s is inactive; its kept messages stay", device_id)
            return 0
        messages = devices.take_kept_messages(session, device_id)
        if messages:
            publish_in_order(core, messages)
    log.info("replay: published %d kept messages of %s", len(messages), device_id)
    return len(messages)


def replay_kept_messages(device_id: str) -> int:
    """The RQ job: a plain id in, a count out."""
    return replay(get_core(), device_id)


def enqueue_replay(core: Core, device_id: str) -> str:
    """Queue a replay of ``device_id``'s kept messages; returns the RQ job id. Call it after the
    device's registration is committed and announced with ``notify_devices_changed``."""
    queue = Queue(core.settings.queue_name, connection=core.redis)
    job = queue.enqueue(
        replay_kept_messages,
        device_id,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"replay kept messages of {device_id}",
    )
    return job.id
