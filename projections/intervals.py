"""Bitemporal intervals: every service's name, status, phase, ETA and workarounds over time.

Two times on every row (PRODUCT.md §2):

- effective time, ``[valid_from, valid_to)``: when the value was true in the world, from the
  facts' ``occurred_at``;
- recorded time, ``[recorded_from, recorded_to)``: when the tracker believed it, from the
  events' own timestamps (kept from running backwards along the log, see _recorded_times).

NULL is an open end. A row is never changed except to close its recorded interval, so "as of A,
known at K" is exactly the rows whose effective interval contains A and whose recorded interval
contains K (:func:`state_at`). ``recorded_by`` / ``superseded_by`` name the positions of the
events that made the tracker start and stop believing a row, for auditors.

When a fact arrives (back-dated, or a ``Corrected`` event), the affected attributes' effective
timelines are worked out again from every fact known so far, from the earliest time the event can
change onwards; rows that no longer hold are closed at this event's recorded time and the new
ones are recorded from it. Consecutive equal values are one row, so a row's ``valid_from`` is
"since when". Rules follow the Service aggregate: the latest fact by ``(occurred_at, version)``
is in force; a cleared ETA or a withdrawn workaround leaves nothing in force; the ETA is hidden
while the service is RESTORED and an unreported status reads OPERATIONAL (both in the reader,
as ``Service.eta`` and ``Service.status`` do).
"""

from __future__ import annotations

import json
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from domain.service import Service
from domain.values import Status
from projections.base import Envelope, Projection, jsonable
from projections.bulk import copy_rows, jsonb

IDENTITY, STATUS, PHASE, ETA, WORKAROUND = "identity", "status", "phase", "eta", "workaround"

Value = tuple[tuple[str, Any], ...]
"""An attribute's value as sorted (field, JSON value) pairs: hashable, so rows compare cheaply."""

Key = tuple[str, str]
"""(attribute, key): key is the workaround id for workarounds and '' for the others."""

TRACKED_FIELDS: dict[str, tuple[str, ...]] = {
    "Registered": ("slug", "name"),
    "StatusReported": ("status", "phase"),
    "EtaSet": ("expected_at", "confidence", "reason"),
    "EtaCleared": (),
    "WorkaroundPublished": ("workaround_id", "channel", "instructions", "contact", "audience"),
    "WorkaroundWithdrawn": ("workaround_id",),
}
"""The event fields each kind of fact contributes (corrections may change them)."""

REPORT = "report"
SUBJECTS: dict[str, str] = {
    "Registered": IDENTITY,
    "StatusReported": REPORT,
    "EtaSet": ETA,
    "EtaCleared": ETA,
    "WorkaroundPublished": WORKAROUND,
    "WorkaroundWithdrawn": WORKAROUND,
}
"""What a kind of fact is about. Facts about one subject (and key) only ever change the
timelines of that subject's attributes, so a batch reads back only those."""

ATTRIBUTES = {IDENTITY: (IDENTITY,), REPORT: (STATUS, PHASE), ETA: (ETA,), WORKAROUND: (WORKAROUND,)}

OPEN_END = "1e12"
"""An open end in the index's boxes, in seconds since 1970: after any time Python can hold."""


def _seconds(moment: str) -> str:
    """SQL for ``moment`` (a timestamptz) in seconds since 1970, as the index's boxes hold it.

    Rounding to float8 never reverses an order, so a box contains every moment its intervals
    do; it may contain a moment just outside them, which the exact test after it excludes.
    """
    return f"date_part('epoch', ({moment}) AT TIME ZONE 'UTC')"


BITEMPORAL_BOX = (
    f"box(point({_seconds('valid_from')}, {_seconds('recorded_from')}), "
    f"point(coalesce({_seconds('valid_to')}, {OPEN_END}), coalesce({_seconds('recorded_to')}, {OPEN_END})))"
)
"""A row's effective and recorded intervals as one box: x is effective time, y recorded time."""


def _value(**fields: Any) -> Value:
    return tuple(sorted(fields.items()))


@dataclass(frozen=True)
class Fact:
    """One service event's tracked fields, with any corrections applied."""

    kind: str
    occurred_at: datetime
    data: dict[str, Any]
    claims: dict[Key, Value | None] = field(init=False, compare=False, repr=False)
    """What this fact says each attribute is from ``occurred_at`` on (None: nothing). Made
    with the fact: every fact is remembered, and folded too if it is new."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", self._claims())  # frozen: set once, here

    @classmethod
    def of(cls, envelope: Envelope) -> Fact:
        event = envelope.event
        fields = TRACKED_FIELDS[envelope.kind]
        return cls(envelope.kind, envelope.occurred_at, {f: jsonable(getattr(event, f)) for f in fields})

    def corrected(self, changes: dict[str, Any]) -> Fact:
        return Fact(
            self.kind,
            changes.get("occurred_at", self.occurred_at),
            {**self.data, **{f: jsonable(v) for f, v in changes.items() if f in self.data}},
        )

    @property
    def subject(self) -> Key:
        """(subject, key): key is the workaround id for workarounds and '' for the others."""
        return SUBJECTS[self.kind], self.data.get("workaround_id", "")

    def _claims(self) -> dict[Key, Value | None]:
        d = self.data
        if self.kind == "Registered":
            return {(IDENTITY, ""): _value(slug=d["slug"], name=d["name"])}
        if self.kind == "StatusReported":
            return {(a, ""): _value(**{a: d[a]}) for a in (STATUS, PHASE) if d[a] is not None}
        if self.kind == "EtaSet":
            return {(ETA, ""): _value(**d)}
        if self.kind == "EtaCleared":
            return {(ETA, ""): None}
        workaround = (WORKAROUND, d["workaround_id"])
        if self.kind == "WorkaroundPublished":
            return {workaround: _value(**{k: v for k, v in d.items() if k != "workaround_id"})}
        return {workaround: None}  # WorkaroundWithdrawn


Segment = tuple[datetime, datetime | None, Value]
Claim = tuple[datetime, int, Value | None]
"""(occurred_at, version, value): sorted, the last one at or before a moment is in force."""


def segments(start: datetime | None, value: Value | None, claims: Iterable[Claim]) -> list[Segment]:
    """The effective timeline: ``value`` from ``start``, then each claim in order.

    Equal neighbours merge; a value overridden at the instant it began (two facts at the same
    ``occurred_at``) lasted no time and leaves no segment; None leaves a gap.
    """
    out: list[Segment] = []
    since = start
    for at, _version, new in claims:
        if new == value:
            continue
        if value is not None and since is not None and since < at:
            out.append((since, at, value))
        if out and out[-1][1] == at and out[-1][2] == new:
            since = out.pop()[0]
        else:
            since = at
        value = new
    if value is not None and since is not None:
        out.append((since, None, value))
    return out


@dataclass(slots=True)
class Row:
    service_id: UUID
    attribute: str
    key: str
    valid_from: datetime
    valid_to: datetime | None
    value: Value
    recorded_from: datetime
    recorded_by: int
    recorded_to: datetime | None = None
    superseded_by: int | None = None
    stored: bool = False


@dataclass
class Track:
    """One attribute of one service in memory: its claims and its currently believed rows.

    Both hold only what lies at or after the start of the batch's window on its subject, which
    is all that the batch's events can change.
    """

    claims: list[Claim] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    """Believed now (recorded_to NULL), by valid_from; they never overlap."""


@dataclass
class Changes:
    new_facts: dict[tuple[UUID, int], Fact] = field(default_factory=dict)
    corrected_facts: dict[tuple[UUID, int], Fact] = field(default_factory=dict)
    """Facts stored before this batch that the batch corrected."""
    inserted: list[Row] = field(default_factory=list)
    closed: list[Row] = field(default_factory=list)
    """Stored rows the batch stopped believing (rows inserted by the batch are closed in place)."""


@dataclass
class ServiceFacts:
    facts: dict[int, Fact] = field(default_factory=dict)
    tracks: dict[Key, Track] = field(default_factory=lambda: defaultdict(Track))

    def remember(self, version: int, fact: Fact) -> None:
        self.facts[version] = fact
        for key, value in fact.claims.items():
            insort(self.tracks[key].claims, (fact.occurred_at, version, value))

    def forget(self, version: int) -> Fact:
        fact = self.facts.pop(version)
        for key in fact.claims:
            claims = self.tracks[key].claims
            del claims[bisect_left(claims, (fact.occurred_at, version))]
        return fact

    def rethink(
        self, key: Key, since: datetime, service_id: UUID, at: datetime, position: int, changes: Changes
    ) -> None:
        """Work ``key``'s timeline out again from ``since``; record what changed at ``at``."""
        track = self.tracks[key]
        rows = track.rows
        first = bisect_left(rows, since, key=attrgetter("valid_from"))
        # The row in force just before `since` may be extended, cut short or merged with.
        if first and (rows[first - 1].valid_to is None or rows[first - 1].valid_to >= since):
            first -= 1
        before = rows[first] if first < len(rows) and rows[first].valid_from < since else None
        fresh = segments(
            before.valid_from if before else None,
            before.value if before else None,
            track.claims[bisect_left(track.claims, (since,)):],
        )
        old = {(r.valid_from, r.valid_to, r.value): r for r in rows[first:]}
        believed = []
        for segment in fresh:
            row = old.pop(segment, None)
            if row is None:
                row = Row(service_id, key[0], key[1], *segment, recorded_from=at, recorded_by=position)
                changes.inserted.append(row)
            believed.append(row)
        for row in old.values():
            row.recorded_to, row.superseded_by = at, position
            if row.stored:
                changes.closed.append(row)
        rows[first:] = believed


class Intervals(Projection):
    name = "intervals"
    rebuild_cost = 65
    tables = ("service_intervals", "service_interval_facts", "service_interval_clock")

    def create_statements(self) -> list[str]:
        return [
            """CREATE TABLE IF NOT EXISTS service_intervals (
                service_id uuid NOT NULL,
                attribute text NOT NULL,
                key text NOT NULL,
                valid_from timestamptz NOT NULL,
                valid_to timestamptz CHECK (valid_to > valid_from),
                value jsonb NOT NULL,
                recorded_from timestamptz NOT NULL,
                recorded_to timestamptz CHECK (recorded_to >= recorded_from),
                recorded_by bigint NOT NULL,
                superseded_by bigint,
                PRIMARY KEY (service_id, attribute, key, valid_from, recorded_by))""",
            # The projection itself only reads rows still believed that end at or after a batch's
            # window start; this partial btree keeps that cheap however long the history grows.
            """CREATE INDEX IF NOT EXISTS service_intervals_believed ON service_intervals
                (service_id, attribute, key, (coalesce(valid_to, 'infinity'::timestamptz)))
                WHERE recorded_to IS NULL""",
            # The facts each timeline is worked out from, corrections applied.
            """CREATE TABLE IF NOT EXISTS service_interval_facts (
                service_id uuid NOT NULL,
                version bigint NOT NULL,
                kind text NOT NULL,
                subject text NOT NULL,
                key text NOT NULL,
                occurred_at timestamptz NOT NULL,
                data jsonb NOT NULL,
                PRIMARY KEY (service_id, version))""",
            """CREATE INDEX IF NOT EXISTS service_interval_facts_by_time
                ON service_interval_facts (service_id, subject, key, occurred_at)""",
            # The latest event timestamp applied (see _recorded_times).
            """CREATE TABLE IF NOT EXISTS service_interval_clock (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                recorded_at timestamptz NOT NULL)""",
        ]

    def reader_index_statements(self) -> list[str]:
        return [
            # "What held at A as known at K" is a stabbing query on two intervals at once: a GiST
            # index finds the few rows containing (A, K) among millions, where a btree on either
            # bound would scan every row that began before A (or before K). Each row is a box in
            # the plane of the two times: GiST splits boxes well, and builds such an index three
            # to four times faster than one over the pair of ranges (measured), which is most of
            # what a rebuild of this view waits for after loading its rows.
            f"CREATE INDEX IF NOT EXISTS service_intervals_bitemporal_box ON service_intervals "
            f"USING gist (({BITEMPORAL_BOX}))",
            # Replaced by the index above; dropped where an earlier version made it.
            "DROP INDEX IF EXISTS service_intervals_bitemporal",
        ]

    def apply(self, cursor: Cursor[Any], batch: Sequence[Envelope]) -> None:
        cursor.execute("SELECT recorded_at FROM service_interval_clock")
        row = cursor.fetchone()
        recorded = _recorded_times(row[0] if row else None, batch)
        events = [e for e in batch if isinstance(e.event, Service.Event)]
        # Each new fact made once: loading its window and folding it both need it.
        facts = {e.position: Fact.of(e) for e in events if e.kind != "Corrected"}
        services = _load(cursor, events, facts) if events else {}
        changes = Changes()
        for envelope in events:
            _fold(services[envelope.originator_id], envelope, facts.get(envelope.position),
                  recorded[envelope.position], changes)
        _write(cursor, changes, recorded[batch[-1].position])


def _recorded_times(clock: datetime | None, batch: Sequence[Envelope]) -> dict[int, datetime]:
    """Each event's recorded time: the latest event timestamp at or before its position.

    Timestamps are taken before a writer waits for the insert lock, so concurrent writers can
    commit them slightly out of order; clamping keeps recorded time rising with position, so
    "known at K" is always a prefix of the log and recorded intervals are never inverted.
    """
    times = {}
    for envelope in batch:
        clock = envelope.recorded_at if clock is None else max(clock, envelope.recorded_at)
        times[envelope.position] = clock
    return times


def _window(envelope: Envelope, fact: Fact) -> tuple[Key, datetime]:
    """The subject the event is about, and the earliest effective time it can change there.

    ``fact`` is the event's own; for a correction, the fact it names, as first recorded or as it
    stood before this batch: a lower bound for its time whatever other corrections in the batch did.
    """
    if envelope.kind == "Corrected":
        changed = envelope.event.changes.get("occurred_at", fact.occurred_at)
        return fact.subject, min(fact.occurred_at, changed)
    return fact.subject, envelope.occurred_at


FACT_COLUMNS = [
    ("service_id", "uuid"), ("version", "bigint"), ("kind", "text"), ("subject", "text"), ("key", "text"),
    ("occurred_at", "timestamptz"), ("data", "jsonb"),
]
ROW_COLUMNS = [
    ("service_id", "uuid"), ("attribute", "text"), ("key", "text"), ("valid_from", "timestamptz"),
    ("valid_to", "timestamptz"), ("value", "jsonb"), ("recorded_from", "timestamptz"),
    ("recorded_to", "timestamptz"), ("recorded_by", "bigint"), ("superseded_by", "bigint"),
]

PER_WINDOW = "OFFSET 0"
"""Keeps a LATERAL subquery from being flattened into a hash join: the planner cannot tell how
little of a history a window selects and would scan whole tables every batch."""


def _load(cursor: Cursor[Any], events: Sequence[Envelope], facts: dict[int, Fact]) -> dict[UUID, ServiceFacts]:
    """The facts and believed rows the batch's events can change, per service (``facts``: the
    batch's new facts, by position).

    Only the facts and rows of the subjects the batch touches, at or after each one's window
    start, are read, so a fact added at the end of a long history costs as little as one added
    to a short one.
    """
    in_batch = {(e.originator_id, e.version): e for e in events}
    wanted = {
        (e.originator_id, e.event.corrects_version) for e in events if e.kind == "Corrected"
    } - in_batch.keys()
    loaded: dict[tuple[UUID, int], Fact] = {}
    if wanted:
        cursor.execute(
            "SELECT f.service_id, f.version, f.kind, f.occurred_at, f.data FROM service_interval_facts f "
            "JOIN unnest(%b::uuid[], %b::bigint[]) AS w(service_id, version) USING (service_id, version)",
            ([s for s, _ in wanted], [v for _, v in wanted]),
        )
        loaded = {(s, v): Fact(kind, at, data) for s, v, kind, at, data in cursor.fetchall()}
    windows: dict[tuple[UUID, str, str], datetime] = {}
    for e in events:
        if e.kind == "Corrected":
            target = (e.originator_id, e.event.corrects_version)
            fact = facts[in_batch[target].position] if target in in_batch else loaded[target]
        else:
            fact = facts[e.position]
        (subject, key), start = _window(e, fact)
        window = (e.originator_id, subject, key)
        windows[window] = min(windows.get(window, start), start)
    cursor.execute(
        "SELECT f.service_id, f.version, f.kind, f.occurred_at, f.data "
        "FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::timestamptz[]) AS w(service_id, subject, key, since) "
        "CROSS JOIN LATERAL (SELECT * FROM service_interval_facts f WHERE f.service_id = w.service_id "
        f"AND f.subject = w.subject AND f.key = w.key AND f.occurred_at >= w.since {PER_WINDOW}) f",
        [list(column) for column in zip(*((*window, since) for window, since in windows.items()))],
    )
    loaded.update({(s, v): Fact(kind, at, data) for s, v, kind, at, data in cursor.fetchall()})
    services = {service_id: ServiceFacts() for service_id, _, _ in windows}
    for (service_id, version), fact in loaded.items():
        services[service_id].remember(version, fact)
    by_attribute = [
        (service_id, attribute, key, since)
        for (service_id, subject, key), since in windows.items()
        for attribute in ATTRIBUTES[subject]
    ]
    cursor.execute(
        "SELECT i.service_id, i.attribute, i.key, i.valid_from, i.valid_to, i.value, i.recorded_from, "
        "i.recorded_by FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::timestamptz[]) "
        "AS w(service_id, attribute, key, since) CROSS JOIN LATERAL (SELECT * FROM service_intervals i "
        "WHERE i.service_id = w.service_id AND i.attribute = w.attribute AND i.key = w.key "
        "AND i.recorded_to IS NULL AND coalesce(i.valid_to, 'infinity'::timestamptz) >= w.since "
        f"{PER_WINDOW}) i ORDER BY i.service_id, i.attribute, i.key, i.valid_from",
        [list(column) for column in zip(*by_attribute)],
    )
    for service_id, attribute, key, valid_from, valid_to, value, recorded_from, recorded_by in cursor.fetchall():
        services[service_id].tracks[(attribute, key)].rows.append(
            Row(service_id, attribute, key, valid_from, valid_to, _value(**value), recorded_from,
                recorded_by, stored=True)
        )
    return services


def _fold(service: ServiceFacts, envelope: Envelope, new: Fact | None, at: datetime, changes: Changes) -> None:
    """Apply one event (``new``: its fact, None for a correction): remember its fact, then
    rethink every attribute it speaks to."""
    if envelope.kind == "Corrected":
        version = envelope.event.corrects_version
        old = service.forget(version)
        fact = old.corrected(envelope.event.changes)
        keys = old.claims.keys() | fact.claims.keys()
        since = min(old.occurred_at, fact.occurred_at)
    else:
        version = envelope.version
        assert new is not None
        fact = new
        if envelope.kind == "WorkaroundWithdrawn":
            fact = _not_before_publication(service, fact)
        keys = fact.claims.keys()
        since = fact.occurred_at
    service.remember(version, fact)
    stored_as = (envelope.originator_id, version)
    if envelope.kind == "Corrected" and stored_as not in changes.new_facts:
        changes.corrected_facts[stored_as] = fact
    else:
        changes.new_facts[stored_as] = fact
    for key in sorted(keys):
        service.rethink(key, since, envelope.originator_id, at, envelope.position, changes)


def _not_before_publication(service: ServiceFacts, withdrawal: Fact) -> Fact:
    """A withdrawal back-dated before its publication ends the workaround as it begins."""
    rows = service.tracks[(WORKAROUND, withdrawal.data["workaround_id"])].rows
    if rows and rows[0].valid_from > withdrawal.occurred_at:
        return replace(withdrawal, occurred_at=rows[0].valid_from)
    return withdrawal


def _write(cursor: Cursor[Any], changes: Changes, clock: datetime) -> None:
    """Write the batch back: COPY for new rows, one statement per kind of update."""
    if changes.new_facts:
        copy_rows(cursor, "service_interval_facts", FACT_COLUMNS, (
            (service_id, version, f.kind, *f.subject, f.occurred_at, jsonb(f.data))
            for (service_id, version), f in changes.new_facts.items()
        ))
    if changes.corrected_facts:
        cursor.executemany(
            "UPDATE service_interval_facts SET occurred_at = %s, data = %s WHERE service_id = %s AND version = %s",
            [(f.occurred_at, jsonb(f.data), s, v) for (s, v), f in changes.corrected_facts.items()],
        )
    if changes.closed:
        columns = zip(*[(r.service_id, r.attribute, r.key, r.valid_from, r.recorded_by, r.recorded_to,
                         r.superseded_by) for r in changes.closed])
        cursor.execute(
            "UPDATE service_intervals i SET recorded_to = c.recorded_to, superseded_by = c.superseded_by "
            "FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::timestamptz[], %b::bigint[], "
            "%b::timestamptz[], %b::bigint[]) AS c(service_id, attribute, key, valid_from, recorded_by, "
            "recorded_to, superseded_by) WHERE (i.service_id, i.attribute, i.key, i.valid_from, i.recorded_by) "
            "= (c.service_id, c.attribute, c.key, c.valid_from, c.recorded_by)",
            [list(column) for column in columns],
        )
    if changes.inserted:
        copy_rows(cursor, "service_intervals", ROW_COLUMNS, (
            (r.service_id, r.attribute, r.key, r.valid_from, r.valid_to, jsonb(dict(r.value)),
             r.recorded_from, r.recorded_to, r.recorded_by, r.superseded_by)
            for r in changes.inserted
        ))
    cursor.execute(
        "INSERT INTO service_interval_clock (recorded_at) VALUES (%s) "
        "ON CONFLICT (singleton) DO UPDATE SET recorded_at = excluded.recorded_at",
        (clock,),
    )


# ---- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkaroundAt:
    id: str
    channel: str
    instructions: str
    contact: str | None
    audience: str
    published_at: datetime


@dataclass(frozen=True)
class ServiceStateAt:
    service_id: UUID
    slug: str
    name: str
    status: str
    status_since: datetime | None
    """When the status in force began (None while nobody has reported one)."""
    phase: str | None
    eta_expected_at: datetime | None
    eta_confidence: str | None
    eta_reason: str | None
    workarounds: tuple[WorkaroundAt, ...]


_MOMENT = (f"point({_seconds('%(as_of)s::timestamptz')}, "
           f"coalesce({_seconds('%(known_at)s::timestamptz')}, {OPEN_END}))")

STATE_AT_SQL = f"""
WITH in_force AS MATERIALIZED (
    SELECT service_id, attribute, key, valid_from, value FROM service_intervals
    WHERE {BITEMPORAL_BOX} @> box({_MOMENT}, {_MOMENT})
      AND tstzrange(valid_from, valid_to) @> %(as_of)s::timestamptz
      AND tstzrange(recorded_from, recorded_to) @> coalesce(%(known_at)s::timestamptz, 'infinity'))
SELECT who.service_id, who.value->>'slug', who.value->>'name',
       coalesce(status.value->>'status', %(unreported)s), status.valid_from, phase.value->>'phase',
       (eta.value->>'expected_at')::timestamptz, eta.value->>'confidence', eta.value->>'reason',
       coalesce(workarounds.list, '[]'::jsonb)
FROM in_force who
LEFT JOIN in_force status ON status.service_id = who.service_id AND status.attribute = 'status'
LEFT JOIN in_force phase ON phase.service_id = who.service_id AND phase.attribute = 'phase'
LEFT JOIN in_force eta ON eta.service_id = who.service_id AND eta.attribute = 'eta'
    AND phase.value->>'phase' IS DISTINCT FROM 'RESTORED'
LEFT JOIN (
    SELECT service_id, jsonb_agg(value || jsonb_build_object('id', key, 'published_at', valid_from)
                                 ORDER BY valid_from, key) AS list
    FROM in_force WHERE attribute = 'workaround' GROUP BY service_id
) workarounds ON workarounds.service_id = who.service_id
WHERE who.attribute = 'identity'
ORDER BY who.value->>'slug'
"""


def state_at_parameters(as_of: datetime, known_at: datetime | None) -> dict[str, Any]:
    if any(t is not None and t.utcoffset() is None for t in (as_of, known_at)):
        raise ValueError("as_of and known_at must carry a UTC offset")
    return {"as_of": as_of, "known_at": known_at, "unreported": Status.OPERATIONAL.value}


def state_at(
    connection: Connection[Any], as_of: datetime, known_at: datetime | None = None
) -> list[ServiceStateAt]:
    """Every service as it stood at effective time ``as_of``, as known at ``known_at``.

    ``known_at`` None means as known now (everything recorded). A service registered after
    ``as_of``, or recorded after ``known_at``, is absent. Ordered by slug.
    """
    parameters = state_at_parameters(as_of, known_at)
    with connection.transaction():
        # The planner overestimates how many rows contain a moment by an order of magnitude, which
        # on a large history tips the query over jit_above_cost: compiling then costs more than
        # the whole query (measured: +30 ms on ~60 ms with 1.8 million rows).
        connection.execute("SET LOCAL jit = off")
        rows = connection.execute(STATE_AT_SQL, parameters).fetchall()
    return states_from_rows(rows)


def states_from_rows(rows: Iterable[Sequence[Any]]) -> list[ServiceStateAt]:
    """Rows of ``STATE_AT_SQL`` (psycopg or asyncpg; workarounds as decoded JSON or text)."""
    return [
        ServiceStateAt(
            service_id, slug, name, status, since, phase, expected_at, confidence, reason,
            tuple(
                WorkaroundAt(w["id"], w["channel"], w["instructions"], w["contact"], w["audience"],
                             datetime.fromisoformat(w["published_at"]))
                for w in (json.loads(workarounds) if isinstance(workarounds, str) else workarounds)
            ),
        )
        for service_id, slug, name, status, since, phase, expected_at, confidence, reason, workarounds in rows
    ]
