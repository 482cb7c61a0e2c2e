"""Make psycopg's pipeline finish sending before it waits for answers.

The write side saves through ``eventsourcing``, which sends a save's INSERT in a psycopg
pipeline. psycopg (3.3.9, both its C and Python implementations) stops its send loop as soon
as no command is left to queue, even when libpq still holds part of the last message unsent;
it then waits only for the server to answer. The server is still waiting for the rest of the
message, so both wait for ever. It happens when one save's message is larger than the socket
buffer: about 0.5 MB over a Unix socket (the embedded server), about 7 MB over TCP here.

``install()`` wraps the pipeline's send loop so it returns only when libpq's output is empty,
reading meanwhile so the server is never blocked writing to us. ``tests/test_large_saves.py``
fails if this stops working, for instance after a psycopg upgrade changes the names used here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from psycopg import _pipeline_base
from psycopg.abc import PipelineCommand, PQGen
from psycopg.pq.abc import PGconn
from psycopg.waiting import Ready, Wait

Communicate = Callable[[PGconn, deque[PipelineCommand]], PQGen[list[list[Any]]]]


def _sending_everything(communicate: Communicate) -> Communicate:
    def pipeline_communicate(pgconn: PGconn, commands: deque[PipelineCommand]) -> PQGen[list[list[Any]]]:
        results = yield from communicate(pgconn, commands)
        while pgconn.flush():  # 1: part of the output is still in libpq's buffer
            ready = yield Wait.RW
            if ready & Ready.R:
                pgconn.consume_input()  # kept by libpq for the fetch that follows
        return results

    pipeline_communicate.wrapped = communicate  # type: ignore[attr-defined]
    return pipeline_communicate


def install() -> None:
    """Idempotent: wraps psycopg's pipeline send loop once per process."""
    current = _pipeline_base.pipeline_communicate
    if not hasattr(current, "wrapped"):
        _pipeline_base.pipeline_communicate = _sending_everything(current)
