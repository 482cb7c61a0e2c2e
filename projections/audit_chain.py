"""The audit chain: every stored event sealed into a SHA-256 hash chain, with signed checkpoints.

An auditor can recompute everything here independently from the events table alone.

Seal of the event at position ``p`` (one row of ``audit_chain`` per stored event)::

    hash(p) = SHA-256( previous_hash                      32 bytes
                     ‖ p                                  8 bytes, unsigned big-endian
                     ‖ originator_id                      16 bytes, the UUID's RFC 4122 bytes
                     ‖ originator_version                 8 bytes, unsigned big-endian
                     ‖ len(topic)  ‖ topic                4 bytes unsigned big-endian, UTF-8 bytes
                     ‖ len(state)  ‖ state )              4 bytes unsigned big-endian, the bytea

``previous_hash`` is the hash of the previous *stored* event, or 32 zero bytes for the first.
Positions are a bigserial, so a failed insert leaves a gap: the chain simply links the events
on either side, and since each position is inside its hash, a gap sealed as a gap is
verifiable, and an event slipped into it later is not. ``state`` is the stored bytes as they
are (encrypted or compressed, when the store is configured to do so). A NULL topic or state
(never written by the tracker) counts as empty. ``state_digest`` = SHA-256(state) is kept
beside each seal only to diagnose a mismatch (a payload found at another position means the
events were reordered), never to decide one.

Checkpoint (one row of ``audit_checkpoints``) at the first sealed position at or after each
multiple of ``checkpoint_every``: that position, its hash, the time the event was recorded, and
an Ed25519 signature (RFC 8032, deterministic) over::

    b"restoration-tracker checkpoint v1\\x00"
    ‖ position                                8 bytes, unsigned big-endian
    ‖ hash                                    32 bytes
    ‖ recorded time in microseconds since 1970-01-01T00:00:00Z, 8 bytes, signed big-endian

``key_id`` names the signing key: the hex SHA-256 of its raw 32-byte public key. The private
key is a PEM (PKCS#8) file outside the database. Without one, checkpoints are still written,
unsigned. Signatures prove most once checkpoints are also published elsewhere: whoever holds
the key (the sealer) could re-seal a rewritten history, so only a checkpoint copied out
beforehand can show that the chain now says something else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import StoredEvent
from psycopg import Connection, Cursor, sql

from projections.base import Envelope, Projection
from projections.runner import LIVE_SCHEMA

log = logging.getLogger(__name__)

GENESIS = bytes(32)
CHECKPOINT_PREFIX = b"restoration-tracker checkpoint v1\x00"
DEFAULT_CHECKPOINT_EVERY = 1000
SIGNING_KEY_ENV = "RESTORATION_SIGNING_KEY"
CHECKPOINT_EVERY_ENV = "RESTORATION_CHECKPOINT_EVERY"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

_FIXED = struct.Struct(">32sQ16sQ")
_LENGTH = struct.Struct(">I")
_CHECKPOINT = struct.Struct(">Q32sq")


def chain_hash(previous: bytes, position: int, originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """The seal of one stored event (see the module docstring for the encoding)."""
    return hashlib.sha256(b"".join((
        _FIXED.pack(previous, position, originator_id, version),
        _LENGTH.pack(len(topic)), topic,
        _LENGTH.pack(len(state)), state,
    ))).digest()


def checkpoint_message(position: int, hash_: bytes, recorded_at: datetime) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return CHECKPOINT_PREFIX + _CHECKPOINT.pack(position, hash_, (recorded_at - EPOCH) // MICROSECOND)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read the Ed25519 signing key in {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key.")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the Ed25519 public key in {path}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key.")
    return key


def _uuid_bytes(originator_id: UUID | str) -> bytes:
    return originator_id.bytes if isinstance(originator_id, UUID) else UUID(originator_id).bytes


def _stored(envelope: Envelope) -> StoredEvent:
    if envelope.stored is None:
        raise ValueError(f"the event at position {envelope.position} came without its stored form")
    return envelope.stored


class AuditChain(Projection):
    """The sealer: a tracked projection that chains every stored event and checkpoints it."""

    name = "audit_chain"
    rebuild_cost = 12
    tables = ("audit_chain", "audit_checkpoints")

    def __init__(self, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, signing_key: Ed25519PrivateKey | None = None) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1; got {checkpoint_every}")
        self.checkpoint_every = checkpoint_every
        self.signing_key = signing_key
        self.key_id = key_id(signing_key.public_key()) if signing_key else None
        self._said_unsigned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuditChain:
        """Configured by RESTORATION_CHECKPOINT_EVERY and RESTORATION_SIGNING_KEY (a file path)."""
        env = os.environ if environ is None else environ
        every = env.get(CHECKPOINT_EVERY_ENV) or str(DEFAULT_CHECKPOINT_EVERY)
        if not every.isdigit():
            raise ValueError(f"{CHECKPOINT_EVERY_ENV} must be a whole number of events; got {every!r}")
        key_path = env.get(SIGNING_KEY_ENV)
        return cls(int(every), load_signing_key(Path(key_path)) if key_path else None)

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS audit_chain (
                position bigint PRIMARY KEY,
                hash bytea NOT NULL,
                previous_hash bytea NOT NULL,
                state_digest bytea NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS audit_checkpoints (
                position bigint PRIMARY KEY,
                hash bytea NOT NULL,
                recorded_at timestamptz NOT NULL,
                signature bytea,
                key_id text)""",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        cursor.execute("SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1")
        last = cursor.fetchone()
        previous_position, previous = (int(last[0]), bytes(last[1])) if last else (0, GENESIS)
        seals = []
        checkpoints = []
        every = self.checkpoint_every
        for envelope in batch:
            stored = _stored(envelope)
            state = stored.state or b""
            sealed = chain_hash(previous, envelope.position, _uuid_bytes(stored.originator_id),
                                stored.originator_version, (stored.topic or "").encode(), state)
            seals.append((envelope.position, sealed, previous, hashlib.sha256(state).digest()))
            if envelope.position // every > previous_position // every:
                checkpoints.append(self._checkpoint(envelope.position, sealed, envelope.recorded_at))
            previous_position, previous = envelope.position, sealed
        with cursor.copy("COPY audit_chain (position, hash, previous_hash, state_digest) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "bytea", "bytea", "bytea"])
            for seal in seals:
                copy.write_row(seal)
        if checkpoints:
            cursor.executemany(
                "INSERT INTO audit_checkpoints (position, hash, recorded_at, signature, key_id) "
                "VALUES (%s, %s, %s, %s, %s)",
                checkpoints,
            )

    def _checkpoint(self, position: int, hash_: bytes, recorded_at: datetime) -> tuple[Any, ...]:
        if self.signing_key is None:
            if not self._said_unsigned:
                log.warning("audit checkpoints are written unsigned: %s is not set", SIGNING_KEY_ENV)
                self._said_unsigned = True
            return position, hash_, recorded_at, None, None
        signature = self.signing_key.sign(checkpoint_message(position, hash_, recorded_at))
        return position, hash_, recorded_at, signature, self.key_id


# ---- checkpoints, for publishing ---------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    position: int
    hash: bytes
    recorded_at: datetime
    signature: bytes | None
    key_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "hash": self.hash.hex(),
            "recordedAt": self.recorded_at.isoformat(),
            "signature": self.signature.hex() if self.signature else None,
            "keyId": self.key_id,
        }

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        if self.signature is None:
            return False
        try:
            public_key.verify(self.signature, checkpoint_message(self.position, self.hash, self.recorded_at))
        except InvalidSignature:
            return False
        return True


def checkpoints(connection: Connection[Any]) -> Iterator[Checkpoint]:
    """Every checkpoint in position order, streamed."""
    with connection.transaction(), connection.cursor("audit_checkpoints_out") as cursor:
        cursor.execute("SELECT position, hash, recorded_at, signature, key_id FROM audit_checkpoints ORDER BY position")
        for position, hash_, recorded_at, signature, signer in cursor:
            yield Checkpoint(position, bytes(hash_), recorded_at, bytes(signature) if signature else None, signer)


# ---- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The first position where the stored history and its seals disagree, and why."""

    position: int
    reason: str
    """``changed``, ``missing``, ``reordered``, ``inserted``, ``checkpoint`` or ``signature``."""
    detail: str


@dataclass(frozen=True)
class ChainReport:
    head: int
    """The last position in the events table."""
    sealed_head: int
    """The last position the sealer sealed."""
    verified_up_to: int
    """Every event up to and including this position matches its seal."""
    events_verified: int
    unsealed: int
    """Events after ``sealed_head``: not yet sealed (the sealer is behind), not tampering by itself."""
    checkpoints_verified: int
    signatures_verified: int
    unsigned_checkpoints: int
    problem: Finding | None

    @property
    def intact(self) -> bool:
        return self.problem is None


VERIFY_FETCH = 10_000


def verify_chain(
    connection: Connection[Any],
    events_table: str,
    *,
    public_keys: Sequence[Ed25519PublicKey] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> ChainReport:
    """Recompute the chain from the events table and compare it with the seals and checkpoints.

    Reads one consistent snapshot with server-side cursors (constant memory) and stops at
    the first position that does not match. Call it with no transaction open. With ``public_keys``, every signed checkpoint's
    signature is checked too; ``on_progress(position, sealed_head)`` is called now and then.
    """
    events = sql.Identifier(LIVE_SCHEMA, events_table)
    keys = {key_id(key): key for key in public_keys}
    with connection.transaction(), connection.cursor() as cursor:
        # One snapshot for both tables, while the sealer may be appending to them.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head, sealed_head, tracked = _heads(cursor, events)
        unsealed = _count_after(cursor, events, sealed_head)
        walk = _Walk(keys, sealed_head, on_progress)
        with connection.cursor("audit_events", binary=True) as stored, \
                connection.cursor("audit_seals", binary=True) as seals:
            stored.itersize = seals.itersize = VERIFY_FETCH
            stored.execute(
                sql.SQL(
                    "SELECT notification_id, uuid_send(originator_id), originator_version, "
                    "convert_to(topic, 'UTF8'), state FROM {} WHERE notification_id <= %s "
                    "ORDER BY notification_id"
                ).format(events),
                (sealed_head,),
            )
            seals.execute(
                "SELECT s.position, s.hash, s.previous_hash, s.state_digest, "
                "c.hash, c.recorded_at, c.signature, c.key_id "
                "FROM audit_chain s LEFT JOIN audit_checkpoints c USING (position) ORDER BY s.position"
            )
            walk.run(stored, seals, cursor)
        if walk.problem is None and tracked > sealed_head:
            walk.problem = Finding(
                sealed_head + 1, "missing",
                f"the sealer sealed up to position {tracked}, but the chain now ends at {sealed_head}: "
                "sealed events (and their seals) after it were removed",
            )
    return ChainReport(
        head=head, sealed_head=sealed_head, verified_up_to=walk.verified_up_to,
        events_verified=walk.events, unsealed=unsealed, checkpoints_verified=walk.checkpoints,
        signatures_verified=walk.signatures, unsigned_checkpoints=walk.unsigned, problem=walk.problem,
    )


def _heads(cursor: Cursor[Any], events: sql.Identifier) -> tuple[int, int, int]:
    """(last event position, last sealed position, position the sealer's tracking reached)."""
    cursor.execute(
        sql.SQL(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM {}), "
            "(SELECT coalesce(max(position), 0) FROM audit_chain), "
            "(SELECT coalesce(max(position), 0) FROM {})"
        ).format(events, sql.Identifier(AuditChain().tracking_table))
    )
    head, sealed_head, tracked = cursor.fetchone() or (0, 0, 0)
    return int(head), int(sealed_head), int(tracked)


def _count_after(cursor: Cursor[Any], events: sql.Identifier, position: int) -> int:
    cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s").format(events), (position,))
    row = cursor.fetchone()
    return int(row[0]) if row else 0


class _Walk:
    """The state of one pass along the chain: where it got to, and what it found."""

    def __init__(self, keys: dict[str, Ed25519PublicKey], sealed_head: int,
                 on_progress: Callable[[int, int], None] | None) -> None:
        self.keys = keys
        self.sealed_head = sealed_head
        self.on_progress = on_progress
        self.verified_up_to = 0
        self.events = self.checkpoints = self.signatures = self.unsigned = 0
        self.problem: Finding | None = None

    def run(self, stored: Iterator[Any], seals: Iterator[Any], cursor: Cursor[Any]) -> None:
        """Walk both streams in position order, a merge: each holds positions the other may lack."""
        previous = GENESIS
        last = 0
        event = next(stored, None)
        seal = next(seals, None)
        while event is not None or seal is not None:
            if seal is None or (event is not None and event[0] < seal[0]):
                self.problem = Finding(event[0], "inserted", (
                    f"an event is stored at position {event[0]}, which the chain recorded as empty "
                    "(or its seal was removed)"))
                return
            position, sealed, sealed_previous, digest, checkpoint, recorded_at, signature, signer = seal
            if event is None or position < event[0]:
                self.problem = Finding(position, "missing", f"the event sealed at position {position} is gone")
                return
            if sealed_previous != previous:
                self.problem = Finding(position, "missing", (
                    f"the seal of position {position} links to a predecessor the history no longer has: "
                    f"an event and its seal between positions {last} and {position} were removed, "
                    "or the seal was edited"))
                return
            _, originator_id, version, topic, state = event
            state = state or b""
            computed = chain_hash(previous, position, originator_id, version, topic or b"", state)
            if computed != sealed:
                self.problem = _mismatch(cursor, position, state, digest)
                return
            if checkpoint is not None:
                self.problem = self._check_point(Checkpoint(position, checkpoint, recorded_at, signature, signer), computed)
                if self.problem:
                    return
            previous, last = computed, position
            self.verified_up_to = position
            self.events += 1
            if self.on_progress is not None and self.events % VERIFY_FETCH == 0:
                self.on_progress(position, self.sealed_head)
            event = next(stored, None)
            seal = next(seals, None)

    def _check_point(self, checkpoint: Checkpoint, computed: bytes) -> Finding | None:
        position = checkpoint.position
        if checkpoint.hash != computed:
            return Finding(position, "checkpoint", (
                f"the checkpoint at position {position} records hash {checkpoint.hash.hex()}, but the chain "
                f"now gives {computed.hex()}: the history was re-sealed after the checkpoint was written"))
        self.checkpoints += 1
        if checkpoint.signature is None:
            self.unsigned += 1
            return None
        if not self.keys:
            return None
        key = self.keys.get(checkpoint.key_id or "")
        if key is None:
            return Finding(position, "signature", (
                f"the checkpoint at position {position} is signed by key {checkpoint.key_id}, "
                "which is not among the public keys given"))
        if not checkpoint.signed_by(key):
            return Finding(position, "signature", f"the checkpoint at position {position} has an invalid signature")
        self.signatures += 1
        return None


def _mismatch(cursor: Cursor[Any], position: int, state: bytes, sealed_digest: bytes) -> Finding:
    """Why the event at ``position`` does not match its seal."""
    digest = hashlib.sha256(state).digest()
    if digest == sealed_digest:
        return Finding(position, "changed", (
            f"the event at position {position} has the payload that was sealed, but its id, version "
            "or type differ (or its seal was edited)"))
    cursor.execute(
        "SELECT position FROM audit_chain WHERE state_digest = %s AND position <> %s ORDER BY position LIMIT 1",
        (digest, position),
    )
    elsewhere = cursor.fetchone()
    if elsewhere:
        return Finding(position, "reordered", (
            f"the event at position {position} holds the payload sealed at position {elsewhere[0]}"))
    return Finding(position, "changed", f"the stored bytes at position {position} differ from what was sealed")


# ---- the history, for export --------------------------------------------------------------


def history_select(events_table: str) -> str:
    """Events with their seals: add ``WHERE``/``ORDER BY``/``LIMIT`` in your driver's style.

    Columns (types in :data:`HISTORY_TYPES`): position, originator id as text, version, the
    event's type (its topic's qualified name), the stored state, hash and previous hash as hex.
    """
    events = '"' + events_table.replace('"', '""') + '"'
    return (
        "SELECT e.notification_id, e.originator_id::text, e.originator_version, "
        "split_part(e.topic, ':', 2), e.state, encode(s.hash, 'hex'), encode(s.previous_hash, 'hex') "
        f"FROM {LIVE_SCHEMA}.{events} e LEFT JOIN audit_chain s ON s.position = e.notification_id"
    )


HISTORY_FIELDS = ("position", "originatorId", "version", "type", "occurredAt", "recordedAt",
                  "actor", "reason", "payload", "hash", "previousHash")
HISTORY_TYPES = ("int8", "text", "int8", "text", "bytea", "text", "text")
"""The PostgreSQL types of :func:`history_select`'s columns, for a binary COPY."""

_TRANSCODED: dict[str, Callable[[str], str]] = {
    # What the event store's JSON transcoder writes for values JSON has no type for, as the
    # text the tracker shows everywhere else (the same as ``projections.base.jsonable``).
    "datetime_iso": str,
    "decimal_str": str,
    "uuid_hex": lambda data: str(UUID(data)),
}


def _plain(value: dict[str, Any]) -> Any:
    kind = value.get("_type_")
    if kind is None:
        return {k: _plain(v) if type(v) is dict else v for k, v in value.items()}
    try:
        return _TRANSCODED[kind](value["_data_"])
    except KeyError:
        raise ValueError(f"cannot export a stored value of type {kind!r}") from None


def history_record(row: Sequence[Any]) -> dict[str, Any]:
    """One exported event (a row of :func:`history_select`), JSON-ready.

    Read from the stored JSON directly rather than through the application's mapper: the
    same facts (``event_data`` of the decoded event), several times faster, which is what
    lets an export keep up with a raw COPY of the table. So it needs the store's default
    transcoding: a state that is encrypted or compressed is refused with a clear error.
    """
    position, originator_id, version, kind, state, sealed, previous = row
    try:
        payload = orjson.loads(state)
    except orjson.JSONDecodeError:
        raise ValueError(f"the event at position {position} is not stored as plain JSON "
                         "(is the event store encrypted or compressed?); it cannot be exported") from None
    recorded = payload.pop("timestamp")["_data_"]
    for key, value in payload.items():
        if type(value) is dict:
            payload[key] = _plain(value)
    return {
        "position": position,
        "originatorId": originator_id,
        "version": version,
        "type": kind,
        "occurredAt": payload.get("occurred_at"),
        "recordedAt": recorded,
        "actor": payload.get("actor"),
        "reason": payload.get("reason"),
        "payload": payload,
        "hash": sealed,
        "previousHash": previous,
    }


def history(
    connection: Connection[Any],
    events_table: str,
    *,
    after: int = 0,
    until_position: int | None = None,
    until_time: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event after ``after`` in position order, with its seal; streamed.

    ``until_position`` stops at that position; ``until_time`` keeps only events recorded at
    or before that time. Rows stream by COPY, so memory stays constant and the server
    produces rows while this side turns them into records.
    """
    query = sql.SQL("COPY ({} WHERE e.notification_id > {} AND e.notification_id <= {} "
                    "ORDER BY e.notification_id) TO STDOUT (FORMAT BINARY)").format(
        sql.SQL(history_select(events_table)),  # type: ignore[arg-type]
        sql.Literal(after),
        sql.Literal(until_position if until_position is not None else 2**62),
    )
    with connection.transaction(), connection.cursor().copy(query) as copy:
        copy.set_types(list(HISTORY_TYPES))
        for row in copy.rows():
            record = history_record(row)
            if until_time is None or datetime.fromisoformat(record["recordedAt"]) <= until_time:
                yield record
