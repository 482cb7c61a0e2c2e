"""The NATS JetStream relay, against the NATS server on this machine (TEST_NATS_URL, default
nats://127.0.0.1:4222), in a stream and on subjects of the test's own."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from uuid import uuid4

import nats
import pytest
from nats.js.api import StreamConfig

from api.demo import load_demo
from api.relay import BrokerUnavailable, NatsRelayRunner
from api.background import in_background
from domain.application import RestorationApp
from domain.values import Provenance
from projections.messages import Message
from tests.projection_support import eventually, log_of

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
OPS = Provenance("ops@example.org")


class Stream:
    def __init__(self) -> None:
        token = uuid4().hex[:12]
        self.name = f"TEST_RELAY_{token.upper()}"
        self.prefix = f"test_{token}.events"

    async def _jetstream(self) -> tuple[nats.NATS, nats.js.JetStreamContext]:
        client = await nats.connect(NATS_URL, connect_timeout=5, allow_reconnect=False)
        return client, client.jetstream()

    def create(self) -> None:
        async def create() -> None:
            client, jetstream = await self._jetstream()
            await jetstream.add_stream(StreamConfig(name=self.name, subjects=[f"{self.prefix}.>"]))
            await client.close()

        asyncio.run(create())

    def delete(self) -> None:
        async def delete() -> None:
            client, jetstream = await self._jetstream()
            await jetstream.delete_stream(self.name)
            await client.close()

        asyncio.run(delete())

    def messages(self) -> list[tuple[str, str, dict[str, object]]]:
        """(subject, Nats-Msg-Id, payload) of every message in the stream, in stream order."""

        async def read() -> list[tuple[str, str, dict[str, object]]]:
            client, jetstream = await self._jetstream()
            info = await jetstream.stream_info(self.name)
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await jetstream.get_msg(self.name, seq)
                found.append((message.subject, (message.headers or {}).get("Nats-Msg-Id", ""), json.loads(message.data or b"")))
            await client.close()
            return found

        return asyncio.run(read())

    def count(self) -> int:
        async def count() -> int:
            client, jetstream = await self._jetstream()
            info = await jetstream.stream_info(self.name)
            await client.close()
            return int(info.state.messages)

        return asyncio.run(count())


@pytest.fixture
def stream() -> Iterator[Stream]:
    created = Stream()
    created.create()
    try:
        yield created
    finally:
        created.delete()


@contextmanager
def relaying(database_url: str, app: RestorationApp, stream: Stream, *, fail_after_first_publish: bool = False) -> Iterator[list[int]]:
    """A relay in a thread; yields the positions it publishes (repeats included)."""
    runner = NatsRelayRunner(database_url, log_of(app), nats_url=NATS_URL, stream=stream.name,
                             subject_prefix=stream.prefix, heartbeat_seconds=0.2)
    published: list[int] = []
    publish = runner.relay.publish

    def recording(messages: Sequence[Message]) -> None:
        publish(messages)
        first = not published
        published.extend(m.position for m in messages)
        if first and fail_after_first_publish:  # as if the process died before its position committed
            raise BrokerUnavailable("simulated crash between publishing and committing")

    runner.relay.publish = recording
    with in_background(runner.run, runner.stop, name="test-relay"):
        yield published


def test_every_event_is_published_once_on_its_kind_and_a_restart_resumes(
    app: RestorationApp, database_url: str, stream: Stream
) -> None:
    load_demo(app)
    first_head = app.head_position()
    with relaying(database_url, app, stream) as first_run:
        eventually(lambda: stream.count() == first_head, "the demo to be relayed")
    email = app.service_by_slug("email").id
    for status in ("PARTIAL_OUTAGE", "OPERATIONAL"):
        app.report_status(email, status=status, provenance=OPS)
    with relaying(database_url, app, stream) as second_run:
        eventually(lambda: stream.count() == app.head_position(), "the new events to be relayed")
    assert sorted(first_run) == list(range(1, first_head + 1))
    assert second_run == [first_head + 1, first_head + 2]  # resumed where it stopped
    messages = stream.messages()
    assert [int(message_id) for _, message_id, _ in messages] == list(range(1, app.head_position() + 1))
    assert all(subject == f"{stream.prefix}.{payload['type']}" for subject, _, payload in messages)
    subject, _, payload = messages[-1]
    assert subject == f"{stream.prefix}.StatusReported" and payload["serviceId"] == str(email)
    assert payload["data"]["status"] == "OPERATIONAL"  # type: ignore[index]


def test_a_batch_published_again_after_a_crash_is_dropped_by_the_broker(
    app: RestorationApp, database_url: str, stream: Stream
) -> None:
    load_demo(app)
    with relaying(database_url, app, stream, fail_after_first_publish=True) as published:
        eventually(lambda: len(published) > app.head_position(), "the first batch to be published again")
        eventually(lambda: stream.count() == app.head_position(), "every event to be relayed")
    assert len(published) > len(set(published)) == app.head_position()
    assert [int(message_id) for _, message_id, _ in stream.messages()] == list(range(1, app.head_position() + 1))
