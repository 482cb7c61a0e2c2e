"""The shared tail's buffer: it answers only for positions it fully covers."""

from __future__ import annotations

import asyncio
from typing import Any

from api.listener import Doorbell
from api.timeline_tail import TimelineTail


async def test_the_tail_serves_what_it_holds_and_admits_what_it_dropped() -> None:
    log = [{"position": p} for p in (1, 2, 4, 7, 8, 9, 12)]  # positions may have gaps

    async def fetch(after: int, limit: int) -> list[dict[str, Any]]:
        return [row for row in log if row["position"] > after][:limit]

    async def head() -> int:
        return 0

    bell = Doorbell()
    tail = TimelineTail(fetch, head, bell, capacity=2, page=2, recheck_seconds=0.05)
    assert tail.since(0) is None  # nothing read yet: subscribers read the table
    await tail.start()
    try:
        for _ in range(100):
            if tail.head == 12:
                break
            await asyncio.sleep(0.01)
        assert tail.head == 12
        assert tail.floor > 0  # the oldest rows were dropped
        assert tail.since(0) is None  # so it cannot answer from the start
        assert [r["position"] for r in tail.since(tail.floor)] == [p for p in (1, 2, 4, 7, 8, 9, 12) if p > tail.floor]
        assert tail.since(12) == []
        ticket = tail.grew.ticket()
        log.append({"position": 15})
        bell.ring()
        await asyncio.wait_for(ticket.wait(), 5)
        assert [r["position"] for r in tail.since(12)] == [15]
    finally:
        await tail.stop()
