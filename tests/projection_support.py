"""Helpers for projection tests: an event log for an app, and waiting for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from threading import Thread

from api.composition import event_log
from domain.application import RestorationApp
from projections.base import Projection
from projections.runner import EventLog, Worker

WAIT_SECONDS = 20.0


def log_of(app: RestorationApp) -> EventLog:
    return event_log(app)


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a hang guard, not a speed check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running_worker(url: str, app: RestorationApp, projections: list[Projection], **options: object) -> Iterator[Worker]:
    worker = Worker(url, log_of(app), projections, **options)  # type: ignore[arg-type]
    thread = Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
