"""A loop waiting on a bell stops when cancelled, even if the bell rings at that moment."""

from __future__ import annotations

import asyncio

from api.background import LoopTask, wait_at_most


class Ringing(LoopTask):
    task_name = "ringing"

    def __init__(self) -> None:
        self.bell = asyncio.Event()
        self.rounds = 0

    async def _run(self) -> None:
        while True:
            self.rounds += 1
            self.bell.clear()
            await wait_at_most(60, self.bell)


async def test_stop_is_not_lost_when_the_bell_rings_as_it_arrives() -> None:
    # Cancel after each number of loop steps after the ring, so one of them meets a wait that
    # has just ended: asyncio.wait_for on Python 3.11 returned normally then, and lost the stop.
    for steps in range(8):
        loop = Ringing()
        await loop.start()
        await asyncio.sleep(0)
        loop.bell.set()
        for _ in range(steps):
            await asyncio.sleep(0)
        stopping = asyncio.create_task(loop.stop())
        await asyncio.wait({stopping}, timeout=5)
        assert stopping.done(), f"stop() was lost when cancelled {steps} steps after the ring"
        assert loop._task is not None and loop._task.cancelled()


async def test_wait_at_most_returns_at_the_ring_or_the_time_limit() -> None:
    bell = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, bell.set)
    await asyncio.wait_for(wait_at_most(60, bell), 5)
    assert bell.is_set()
    await wait_at_most(0.01, asyncio.Event())  # no ring: returns, no TimeoutError
