"""The newest timeline rows, read once per process and shared by every live subscriber.

With hundreds of subscriptions open, each reading the table on every doorbell would put
hundreds of identical queries on the pool per event. Instead one task reads what is new
and keeps the latest rows in memory; subscribers filter them there. A subscriber that is
further behind than the buffer reaches (a replay, or a slow client) reads the table itself
until it catches up. Positions only grow, so there is no gap and no duplicate either way.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from api.background import LoopTask, wait_at_most
from api.listener import Doorbell

log = logging.getLogger(__name__)

Fetch = Callable[[int, int], Awaitable[Sequence[Any]]]
"""Rows with position after the first argument, at most the second, in position order."""
Head = Callable[[], Awaitable[int]]
"""The highest position there is now."""

NOT_STARTED = 2**62


class TimelineTail(LoopTask):
    task_name = "timeline-tail"

    def __init__(
        self,
        fetch: Fetch,
        head: Head,
        views_bell: Doorbell,
        *,
        convert: Callable[[Any], Any] = lambda row: row,
        capacity: int = 10_000,
        page: int = 500,
        recheck_seconds: float = 5.0,
    ) -> None:
        self._fetch = fetch
        self._head = head
        self._convert = convert
        self._views_bell = views_bell
        self._rows: list[Any] = []
        self._positions: list[int] = []
        self.capacity = capacity
        self.page = page
        self.recheck_seconds = recheck_seconds
        self.floor = NOT_STARTED
        """The buffer holds every row with a position above this (and up to ``head``);
        until the tail has read the head once it holds nothing, and subscribers read the table."""
        self.head = NOT_STARTED
        self.grew = Doorbell()


    def since(self, position: int) -> list[Any] | None:
        """Buffered rows after ``position``; None when the buffer does not reach that far back."""
        if position < self.floor:
            return None
        return self._rows[bisect.bisect_right(self._positions, position):]

    async def _run(self) -> None:
        while True:
            ticket = self._views_bell.ticket()
            try:
                if self.head == NOT_STARTED:
                    self.floor = self.head = await self._head()
                rows = await self._fetch(self.head, self.page)
            except Exception as error:  # the database is away: try again at the next ring
                log.warning("timeline tail could not read (%s)", error)
                rows = []
            for row in rows:  # converted once here, not once per subscriber
                self._rows.append(self._convert(row))
                self._positions.append(row["position"])
                self.head = row["position"]
            if len(self._rows) > 2 * self.capacity:  # trim in bulk: lists bisect fast, deques do not
                drop = len(self._rows) - self.capacity
                self.floor = self._positions[drop - 1]
                del self._rows[:drop], self._positions[:drop]
            if rows:
                self.grew.ring()
            if len(rows) < self.page:
                await wait_at_most(self.recheck_seconds, ticket)
