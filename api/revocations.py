"""Websockets closed the moment their token is revoked.

An HTTP request looks its token up every time, but a websocket authenticates once, in
``connection_init``, and may then stay open for days. So ``revoke_token`` commits with a
NOTIFY on ``TOKENS_CHANNEL``; the process's one Listener rings this watch's doorbell, and the
watch reads which of the open websockets' tokens are still live and closes the others. As
everywhere here, NOTIFY is only a doorbell: the listener rings every bell when it reconnects,
so a notification lost meanwhile costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from uuid import UUID

import asyncpg

from api.background import LoopTask
from api.listener import Doorbell
from api.tokens import LIVE_AMONG_SQL

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Revocable(Protocol):
    async def close_revoked(self) -> None:
        """Close the connection, saying its token was revoked."""


class RevocationWatch(LoopTask):
    """The open websockets by token, and the task that closes those whose token is revoked."""

    task_name = "revocation-watch"

    def __init__(self, pool: asyncpg.Pool, bell: Doorbell) -> None:
        self._pool = pool
        self._bell = bell
        self._open: dict[UUID, set[Revocable]] = {}
        self.checks = 0
        """How many times the open connections' tokens were checked (for tests and metrics)."""

    def ticket(self) -> asyncio.Event:
        """Take one before authenticating a connection and hand it to :meth:`watch`, so a
        revocation committed while the token was being looked up is not missed."""
        return self._bell.ticket()

    def watch(self, token_id: UUID, connection: Revocable, ticket: asyncio.Event) -> None:
        self._open.setdefault(token_id, set()).add(connection)
        if ticket.is_set():
            self._bell.ring()  # a token was revoked meanwhile: look again, this connection included

    def forget(self, token_id: UUID, connection: Revocable) -> None:
        """The connection has closed."""
        connections = self._open.get(token_id, set())
        connections.discard(connection)
        if not connections:
            self._open.pop(token_id, None)


    async def _run(self) -> None:
        ticket = self._bell.ticket()
        while True:
            await ticket.wait()
            ticket = self._bell.ticket()  # taken before reading, so a ring meanwhile means read again
            try:
                await self._close_revoked()
                self.checks += 1
            except DATABASE_ERRORS as error:
                log.warning("cannot check for revoked tokens (%s); trying again in %.0fs", error, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
                self._bell.ring()

    async def _close_revoked(self) -> None:
        watched = list(self._open)
        if not watched:
            return
        live = {row["id"] for row in await self._pool.fetch(LIVE_AMONG_SQL, watched)}
        for token_id in watched:
            if token_id not in live:
                for connection in self._open.pop(token_id, set()):
                    await connection.close_revoked()
