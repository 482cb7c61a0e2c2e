"""One LISTEN connection per process, fanned out in memory.

NOTIFY is a doorbell, never the data: whoever is woken reads the tables by position. So a
notification lost while disconnected costs nothing: on reconnect every bell rings and every
waiter re-reads from where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from api.background import LoopTask, wait_at_most

log = logging.getLogger(__name__)


class Doorbell:
    """Wakes every waiter at once. Take a ticket *before* checking the table, then await it,
    so a ring between the check and the wait is not missed."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        return self._rung

    def ring(self) -> None:
        self._rung.set()
        self._rung = asyncio.Event()


class Listener(LoopTask):
    """Listens on ``channels`` and rings each channel's doorbell; heartbeats and reconnects.

    Its connection is also the process's probe of the database: ``away`` says the database
    could not be reached lately, so a caller can refuse work at once instead of waiting.
    """

    task_name = "listener"

    def __init__(
        self,
        url: str,
        channels: list[str],
        *,
        heartbeat_seconds: float = 2.0,
        max_backoff_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.bells = {channel: Doorbell() for channel in channels}
        self.heartbeat_seconds = heartbeat_seconds
        self.max_backoff_seconds = max_backoff_seconds
        """Short: the database must be noticed back within a second or so of its return."""
        self.connected = asyncio.Event()
        self.away = False
        """True from a failed attempt to reach the database until the next connection."""

    def bell(self, channel: str) -> Doorbell:
        return self.bells[channel]

    def ring_all(self) -> None:
        for bell in self.bells.values():
            bell.ring()


    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                connection = await asyncpg.connect(self.url, timeout=5)
            except Exception as error:  # any failure to connect is retried, never fatal
                self.away = True
                log.warning("listener cannot connect (%s); retrying in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            backoff = 0.2
            closed = asyncio.Event()  # the server said goodbye: do not wait for the heartbeat
            connection.add_termination_listener(lambda _: closed.set())
            try:
                for channel, bell in self.bells.items():
                    await connection.add_listener(channel, lambda *_, bell=bell: bell.ring())
                self.connected.set()
                self.away = False
                self.ring_all()  # anything announced while we were away is read now
                while True:
                    await wait_at_most(self.heartbeat_seconds, closed)
                    await connection.fetchval("SELECT 1", timeout=self.heartbeat_seconds)
            except Exception as error:  # whatever broke the connection, start again
                self.away = True
                log.warning("listener lost its connection (%s); reconnecting", error)
                await asyncio.sleep(backoff)
            finally:
                self.connected.clear()
                self.ring_all()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), timeout=2)
