"""Broker relay: every event, as the same JSON message webhooks get, published to NATS
JetStream on ``<prefix>.<kind>`` (default ``restoration.events.<kind>``), for fan-out beyond
what webhooks should carry.

The relay is a projection with its own tracking row, run by the ordinary projection worker
(so one relay is active at a time, the others stand by, and a restart resumes where it
stopped). A batch is published, every publish acknowledged by JetStream, before its position
commits; a crash in between publishes that batch again, and JetStream drops the repeats
because each message's ``Nats-Msg-Id`` is its position (within the stream's duplicate window,
two minutes by default). If the broker is unreachable the batch rolls back and is retried with
back-off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from psycopg import Cursor

from projections.base import Envelope, Projection
from projections.messages import Message, MessageComposer
from projections.runner import EventLog, Worker

log = logging.getLogger(__name__)

DEFAULT_SUBJECT_PREFIX = "restoration.events"
DEFAULT_STREAM = "RESTORATION_EVENTS"
PUBLISH_TIMEOUT_SECONDS = 10.0


class BrokerUnavailable(Exception):
    """Publishing failed; the batch was not recorded as relayed and will be tried again."""


class NatsRelay(Projection):
    """Publishes each batch through ``publish`` (which returns once every message is
    acknowledged, or raises BrokerUnavailable) inside the transaction that records it."""

    name = "nats_relay"
    rebuildable = False
    composer = MessageComposer("nats_relay")
    tables = composer.tables

    def __init__(self, publish: Callable[[Sequence[Message]], None]) -> None:
        self.publish = publish

    def create_statements(self) -> list[str]:
        return self.composer.create_statements()

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        self.publish(self.composer.compose(cursor, batch))


class JetStreamPublisher:
    """A NATS connection on an event loop of its own, for the worker's thread to publish through."""

    def __init__(self, nats_url: str, *, stream: str, subject_prefix: str) -> None:
        self.nats_url = nats_url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-relay", daemon=True)
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None

    def __enter__(self) -> JetStreamPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close()).result(timeout=PUBLISH_TIMEOUT_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=PUBLISH_TIMEOUT_SECONDS)
        self._loop.close()

    def subject(self, kind: str) -> str:
        return f"{self.subject_prefix}.{kind}"

    def publish(self, messages: Sequence[Message]) -> None:
        pending = self._call(self._publish(messages))
        try:
            pending.result(timeout=PUBLISH_TIMEOUT_SECONDS * 2)
        except (nats.errors.Error, OSError, TimeoutError) as error:
            pending.cancel()
            raise BrokerUnavailable(f"publishing to NATS at {self.nats_url} failed: {error!r}") from error

    def _call(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _connected(self) -> JetStreamContext:
        if self._jetstream is None or self._client is None or self._client.is_closed:
            # No reconnecting inside the client: a lost connection fails the batch, and the
            # worker's back-off decides when to connect again.
            self._client = await nats.connect(self.nats_url, connect_timeout=5, allow_reconnect=False)
            self._jetstream = self._client.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)
            await self._ensure_stream(self._jetstream)
        return self._jetstream

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        try:
            await jetstream.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await jetstream.add_stream(name=self.stream, subjects=[f"{self.subject_prefix}.>"])
            log.info("created JetStream stream %s for %s.>", self.stream, self.subject_prefix)

    async def _publish(self, messages: Sequence[Message]) -> None:
        """Send the batch in order without waiting in between, then wait for every ack."""
        jetstream = await self._connected()
        acks = [
            await jetstream.publish_async(
                self.subject(m.kind), m.body.encode("utf-8"), headers={"Nats-Msg-Id": str(m.position)}
            )
            for m in messages
        ]
        for ack in await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT_SECONDS):
            if ack.duplicate:
                log.info("JetStream already had message %s (a batch relayed again)", ack.seq)

    async def _close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()


class NatsRelayRunner:
    """Relays until :meth:`stop` (thread-safe); ``run()`` blocks."""

    def __init__(
        self,
        database_url: str,
        log_: EventLog,
        *,
        nats_url: str,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        heartbeat_seconds: float = 1.0,
    ) -> None:
        self.publisher = JetStreamPublisher(nats_url, stream=stream, subject_prefix=subject_prefix)
        self.relay = NatsRelay(self.publisher.publish)
        self.worker = Worker(
            database_url, log_, [self.relay], heartbeat_seconds=heartbeat_seconds, retry_on=(BrokerUnavailable,)
        )

    @property
    def active(self) -> bool:
        return self.relay.name in self.worker.held

    def run(self) -> None:
        with self.publisher:
            self.worker.run()

    def stop(self) -> None:
        self.worker.stop()
