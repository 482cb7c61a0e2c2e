"""A save larger than the socket buffers completes (see api/pipeline_flush.py).

Before the fix, psycopg's pipeline waited for the server's answer with part of the INSERT still
unsent, and the save hung for ever: from about 0.5 MB per save over a Unix socket, about 7 MB
over TCP. 16 MB exceeds both.
"""

from __future__ import annotations

import threading
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from domain.application import RestorationApp

BLOBS = 16
BLOB_BYTES = 1_000_000
WAIT_SECONDS = 120


def test_a_save_larger_than_the_socket_buffers_completes(app: RestorationApp) -> None:
    events = [StoredEvent(uuid4(), 1, "tests.large:Blob", bytes([n]) * BLOB_BYTES) for n in range(BLOBS)]
    positions: list[int] = []
    saving = threading.Thread(target=lambda: positions.extend(app.recorder.insert_events(events) or []), daemon=True)
    saving.start()
    saving.join(WAIT_SECONDS)
    assert not saving.is_alive(), f"a {BLOBS} MB save did not finish in {WAIT_SECONDS} s"
    assert positions == list(range(positions[0], positions[0] + BLOBS))
    stored = app.recorder.select_notifications(start=positions[0], limit=BLOBS)
    assert [s.state for s in stored] == [e.state for e in events]
