"""Running a long-lived loop beside the caller: in a thread (a worker, a sender, a relay), or
as a task on the event loop (the listener, the shared tail, the revocation watch)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

JOIN_SECONDS = 30


async def wait_at_most(seconds: float, event: asyncio.Event) -> None:
    """Wait until ``event`` is set or ``seconds`` have passed, whichever comes first.

    Not ``asyncio.wait_for``: on Python 3.11 it drops a cancellation that arrives just as the
    event is set, so a loop waiting on a bell carried on after ``stop()`` cancelled it, and
    ``stop()`` waited for ever (tests hung at shutdown). ``asyncio.timeout`` keeps it.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


@contextmanager
def in_background(run: Callable[[], object], stop: Callable[[], object], *, name: str) -> Iterator[None]:
    """Run ``run`` in a daemon thread for the duration of the block; then ``stop`` it and wait."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(timeout=JOIN_SECONDS)


class LoopTask:
    """An object whose ``_run`` loop runs as an asyncio task from ``start()`` until ``stop()``."""

    task_name = "loop"
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
