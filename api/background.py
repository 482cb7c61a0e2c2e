"""Running a long-lived loop (a worker, a sender, a relay) beside the caller, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

JOIN_SECONDS = 30


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
