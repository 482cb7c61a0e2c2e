"""The webhook sender: posts the outbox's deliveries, signed per Standard Webhooks.

- At least once, in position order per endpoint: an endpoint's next delivery is only sent
  once the receiver has acknowledged the previous one (any 2xx). Endpoints are independent:
  each has its own lane, so a failing receiver holds up no one else.
- A failure (connection error, timeout, redirect, any other status) is retried with
  exponential back-off and jitter, the delay capped at ``RetrySchedule.max_seconds``
  (24 hours by default); the delivery is never abandoned while its endpoint exists.
  ``410 Gone`` disables the endpoint.
- Woken by NOTIFY on the outbox's channel; a sweep every ``sweep_seconds`` picks up anything
  a lost notification or a retry time left behind.
- One sender is active at a time (an advisory lock); others stand by and take over.
- Every request goes to an address checked just before it (see ``api.webhook_safety``), with
  connect and read timeouts; only the first 512 bytes of a response are kept.

Run it with ``restoration webhooks send``, in ``restoration serve``, or in a thread with
:func:`run_webhook_sender`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from api.webhook_safety import RefusedDestination, Resolver, private_allowed
from projections.webhook_outbox import (
    CHANNEL,
    Attempt,
    Pending,
    Target,
    ensure_tables,
    pending_deliveries,
    record_attempts,
    sendable_endpoints,
    webhook_id,
)

log = logging.getLogger(__name__)

RESPONSE_PREFIX_BYTES = 512
ERROR_LIMIT = 500
STOP_CHECK_SECONDS = 0.25
USER_AGENT = "RestorationTracker-Webhooks/0.1"
SENDER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"restoration-webhook-sender").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class RetrySchedule:
    """Delay before retry n (n = failures so far): ``first_seconds * factor**(n-1)``, capped at
    ``max_seconds``, of which a random ``jitter`` fraction is taken off so that retries after a
    receiver's outage do not all arrive at once."""

    first_seconds: float = 5.0
    factor: float = 2.0
    max_seconds: float = 24 * 3600.0
    jitter: float = 0.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrySchedule:
        """``RESTORATION_WEBHOOK_RETRY_FIRST_SECONDS`` and ``..._MAX_SECONDS``, else the defaults."""
        env = os.environ if environ is None else environ
        return cls(
            first_seconds=float(env.get("RESTORATION_WEBHOOK_RETRY_FIRST_SECONDS", cls.first_seconds)),
            max_seconds=float(env.get("RESTORATION_WEBHOOK_RETRY_MAX_SECONDS", cls.max_seconds)),
        )

    def delay(self, failures: int, rng: random.Random) -> float:
        exponent = min(max(failures - 1, 0), 64)  # beyond this the cap applies anyway
        capped = min(self.max_seconds, self.first_seconds * self.factor**exponent)
        return capped * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class Timeouts:
    connect_seconds: float = 5.0
    read_seconds: float = 10.0
    total_seconds: float = 30.0
    """For the whole request, so a receiver that answers a byte at a time cannot hold a lane."""


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body`` keyed with the secret's bytes (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, message_id, stamp, body),
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:ERROR_LIMIT]


class WebhookSender:
    """Sends deliveries until :meth:`stop` (thread-safe) is called; ``await sender.run()``."""

    def __init__(
        self,
        database_url: str,
        *,
        schedule: RetrySchedule | None = None,
        timeouts: Timeouts = Timeouts(),
        sweep_seconds: float = 1.0,
        chunk: int = 100,
        pool_size: int = 4,
        allow_private: bool | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.database_url = database_url
        self.schedule = schedule or RetrySchedule.from_env()
        self.timeouts = timeouts
        self.sweep_seconds = sweep_seconds
        self.chunk = chunk
        self.pool_size = pool_size
        self.resolver = Resolver(allow_private=private_allowed() if allow_private is None else allow_private)
        self.stopping = stopping or threading.Event()
        self.active = False
        """True while this sender holds the lock (the others stand by)."""
        self._rng = random.Random()
        self._lanes: dict[UUID, tuple[Target, asyncio.Event, asyncio.Task[None]]] = {}

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                await self._serve()
                backoff = 0.2
            except (psycopg.OperationalError, OSError) as error:
                log.warning("webhook sender lost the database (%s); retrying in %.1fs", error, backoff)
                await self._pause(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self.active = False

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(STOP_CHECK_SECONDS, max(deadline - time.monotonic(), 0)))

    async def _serve(self) -> None:
        with psycopg.connect(self.database_url) as setup:
            ensure_tables(setup)
        timeout = httpx.Timeout(
            connect=self.timeouts.connect_seconds, read=self.timeouts.read_seconds,
            write=self.timeouts.read_seconds, pool=self.timeouts.connect_seconds,
        )
        async with (
            await AsyncConnection.connect(self.database_url, autocommit=True) as control,
            AsyncConnectionPool(self.database_url, min_size=1, max_size=self.pool_size, open=False) as pool,
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        ):
            await control.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            try:
                while not self.stopping.is_set():
                    if not self.active:
                        cursor = await control.execute("SELECT pg_try_advisory_lock(%s)", (SENDER_LOCK_KEY,))
                        row = await cursor.fetchone()
                        self.active = bool(row and row[0])
                        if self.active:
                            log.info("webhook sender: this one is now the active sender")
                    if self.active:
                        async with pool.connection() as connection:
                            targets = await sendable_endpoints(connection)
                        self._update_lanes(targets, pool, client)
                    await self._wait_for_doorbell(control)
            finally:
                await self._close_lanes()  # before the pool and the client they use close

    async def _wait_for_doorbell(self, control: AsyncConnection[Any]) -> None:
        """Wake every lane when the outbox rings; return at the sweep, or when stopping."""
        deadline = time.monotonic() + self.sweep_seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            rang = False
            async for _ in control.notifies(timeout=STOP_CHECK_SECONDS, stop_after=1):
                rang = True
            if rang:
                self._wake_lanes()
                deadline = min(deadline, time.monotonic() + STOP_CHECK_SECONDS)
        self._wake_lanes()
        await control.execute("SELECT 1")  # heartbeat: a dead connection raises here

    def _wake_lanes(self) -> None:
        for _, wake, _ in self._lanes.values():
            wake.set()

    def _update_lanes(self, targets: list[Target], pool: AsyncConnectionPool, client: httpx.AsyncClient) -> None:
        """One lane per enabled endpoint: start new ones, end those deleted, disabled or changed."""
        wanted = {t.id: t for t in targets}
        for endpoint_id, (target, _, task) in list(self._lanes.items()):
            if wanted.get(endpoint_id) != target or task.done():
                task.cancel()
                del self._lanes[endpoint_id]
        for endpoint_id, target in wanted.items():
            if endpoint_id not in self._lanes:
                wake = asyncio.Event()
                wake.set()
                task = asyncio.create_task(self._lane(target, wake, pool, client), name=f"webhook-{endpoint_id}")
                self._lanes[endpoint_id] = (target, wake, task)

    async def _close_lanes(self) -> None:
        tasks = [task for _, _, task in self._lanes.values()]
        self._lanes.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _lane(self, target: Target, wake: asyncio.Event, pool: AsyncConnectionPool, client: httpx.AsyncClient) -> None:
        """Deliver to one endpoint, oldest first, until cancelled or the endpoint is gone."""
        while True:
            try:
                wake.clear()
                async with pool.connection() as connection:
                    pending = await pending_deliveries(connection, target.id, self.chunk)
                if not pending:
                    await wake.wait()
                    continue
                due = pending[0].next_attempt_at
                if due is not None and due > _now():
                    await asyncio.sleep((due - _now()).total_seconds())
                    continue
                if await self._send_run(target, pending, pool, client):
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # the database blipped, or a bug: log it, keep the lane alive
                log.exception("webhook lane for %s failed; retrying", target.id)
                await asyncio.sleep(self.sweep_seconds)

    async def _send_run(
        self, target: Target, pending: list[Pending], pool: AsyncConnectionPool, client: httpx.AsyncClient
    ) -> bool:
        """Send deliveries in order until one fails; log them. True if the endpoint is now disabled."""
        delivered: list[Attempt] = []
        failed: Attempt | None = None
        try:
            for item in pending:
                attempt = await self._post(client, target, item)
                if attempt.status_code is not None and 200 <= attempt.status_code < 300:
                    delivered.append(attempt)
                    continue
                failed = attempt
                break
        except asyncio.CancelledError:  # stopping, or the endpoint was deleted: log what was sent
            if delivered:
                async with pool.connection() as connection:
                    await record_attempts(connection, target.id, delivered, None, retry_at=None)
            raise
        gone = failed is not None and failed.status_code == 410
        retry_at = None
        if failed is not None and not gone:
            failures = next(p.attempts for p in pending if p.position == failed.position) + 1
            retry_at = failed.at + timedelta(seconds=self.schedule.delay(failures, self._rng))
        async with pool.connection() as connection:
            await record_attempts(
                connection, target.id, delivered, failed, retry_at=retry_at,
                disable_reason="The receiver answered 410 Gone." if gone else None,
            )
        if gone:
            log.warning("webhook endpoint %s answered 410 Gone: disabled", target.id)
        return gone

    async def _post(self, client: httpx.AsyncClient, target: Target, item: Pending) -> Attempt:
        at = _now()
        body = item.body.encode("utf-8")
        try:
            destination = await self.resolver.destination(target.url)
            headers = {**destination.headers, **signed_headers(target.secret, webhook_id(target.id, item.position), body)}
            async with asyncio.timeout(self.timeouts.total_seconds):
                async with client.stream(
                    "POST", destination.url, content=body, headers=headers, extensions=destination.extensions
                ) as response:
                    prefix = b""
                    async for chunk in response.aiter_raw():
                        prefix += chunk
                        if len(prefix) >= RESPONSE_PREFIX_BYTES:
                            break
        except RefusedDestination as refused:
            return Attempt(item.position, at, None, f"Refused: {refused}"[:ERROR_LIMIT], None)
        except (httpx.HTTPError, OSError, TimeoutError) as error:
            return Attempt(item.position, at, None, _short(error), None)
        text = prefix[:RESPONSE_PREFIX_BYTES].decode("utf-8", "replace")
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Attempt(item.position, at, response.status_code, error, text)


def run_webhook_sender(database_url: str, stop_event: threading.Event, **options: Any) -> None:
    """Run a sender in this thread until ``stop_event`` is set (options: see WebhookSender)."""
    sender = WebhookSender(database_url, stopping=stop_event, **options)
    asyncio.run(sender.run())
