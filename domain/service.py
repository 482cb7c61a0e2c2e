"""The Service aggregate: something people rely on, and every fact about its restoration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.corrections import FieldRule, checked_changes
from domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from domain.values import (
    Immutable,
    LONG_TEXT_LIMIT,
    Confidence,
    Phase,
    Provenance,
    Status,
    any_moment,
    choice,
    moment,
    optional_choice,
    optional_text,
    required_text,
    utc_now,
)

SERVICE_NAMESPACE = uuid5(NAMESPACE_URL, "https://restoration-tracker/services/")
SLUG_LIMIT = 64
TIER_RANGE = range(1, 5)


@dataclass(frozen=True)
class StatusReport(Immutable):
    """One report of status and/or phase; either may be absent (unchanged)."""

    version: int
    occurred_at: datetime
    status: Status | None
    phase: Phase | None
    note: str | None
    public_note: str | None


@dataclass(frozen=True)
class EtaRevision(Immutable):
    """An ETA given (or cleared, when ``expected_at`` is None) at ``occurred_at``."""

    version: int
    occurred_at: datetime
    expected_at: datetime | None
    confidence: Confidence | None
    reason: str | None


@dataclass(frozen=True)
class Workaround(Immutable):
    id: str
    channel: str
    instructions: str
    contact: str | None
    audience: str
    published_version: int
    published_at: datetime
    withdrawn: bool = False


def eta_in_force(revisions: Iterable[EtaRevision], phase: Phase | None) -> EtaRevision | None:
    """The ETA in force: the latest given, unless cleared or the service is restored.

    A function of the facts, so the read models that keep the same facts apply the same rule.
    """
    latest = max(revisions, key=lambda e: (e.occurred_at, e.version), default=None)
    if latest is None or latest.expected_at is None or phase is Phase.RESTORED:
        return None
    return latest


def check_phase_transition(previous: Phase | None, new: Phase, reason: str | None) -> None:
    """The documented recovery-phase rules.

    - A service that was never affected starts at ISOLATED, ASSESSING or RESTORING; it cannot
      be validated or restored before anything went wrong.
    - Moving forward (skipping phases is allowed) or repeating the phase is always allowed.
    - Moving backward is a regression (including a RESTORED service going down again) and
      must carry a reason.
    """
    if previous is None:
        if new.rank > Phase.RESTORING.rank:
            raise InvalidTransition(
                f"The service has no recovery phase yet, so it cannot be {new.value}; "
                "report ISOLATED, ASSESSING or RESTORING first."
            )
        return
    if new.rank < previous.rank and reason is None:
        raise InvalidTransition(
            f"Moving from {previous.value} back to {new.value} is a regression; "
            "give a reason saying why."
        )


def _slug(value: str) -> str:
    slug = required_text("slug", value, SLUG_LIMIT)
    if not all(c.islower() or c.isdigit() or c == "-" for c in slug) or not slug[0].isalnum():
        raise ValidationError(
            f"slug {slug!r} may contain only lower-case letters, digits and hyphens, "
            "and must start with a letter or digit."
        )
    return slug


def _tier(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or value not in TIER_RANGE):
        raise ValidationError(
            f"tier must be {TIER_RANGE.start} (most critical) to {TIER_RANGE.stop - 1}; got {value!r}."
        )
    return value


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be true or false.")
    return value


def _text(field: str, limit: int = 200) -> FieldRule:
    return lambda value, _now: optional_text(field, value, limit)


def _required(field: str, limit: int = 200) -> FieldRule:
    return lambda value, _now: required_text(field, value, limit)


CORRECTABLE: dict[str, dict[str, FieldRule]] = {
    "Registered": {
        "name": _required("name"),
        "category": _required("category"),
        "description": _text("description", LONG_TEXT_LIMIT),
        "owner": _text("owner"),
        "tier": lambda value, _now: _tier(value),
        "resident_facing": lambda value, _now: _flag("residentFacing", value),
    },
    "StatusReported": {
        "status": lambda value, _now: optional_choice(Status, "status", value),
        "phase": lambda value, _now: optional_choice(Phase, "phase", value),
        "occurred_at": lambda value, now: moment("occurredAt", value, now),
        "note": _text("note", LONG_TEXT_LIMIT),
        "public_note": _text("publicNote", LONG_TEXT_LIMIT),
    },
    "EtaSet": {
        "expected_at": lambda value, _now: any_moment("expectedAt", value),
        "confidence": lambda value, _now: choice(Confidence, "confidence", value),
        "occurred_at": lambda value, now: moment("occurredAt", value, now),
    },
    "WorkaroundPublished": {
        "channel": _required("channel"),
        "instructions": _required("instructions", LONG_TEXT_LIMIT),
        "contact": _text("contact"),
        "audience": _required("audience"),
    },
}


class Service(Aggregate):
    """A system or business process whose status, recovery phase and ETA are tracked.

    Facts may be back-dated, so "current" means latest by when it was true in the world
    (``occurred_at``), with the recording order breaking ties.
    """

    @staticmethod
    def create_id(slug: str) -> UUID:
        """Ids derive from slugs, so the event store itself refuses a second service per slug."""
        return uuid5(SERVICE_NAMESPACE, slug)

    @classmethod
    def register(
        cls,
        *,
        slug: str,
        name: str,
        category: str,
        provenance: Provenance,
        description: str | None = None,
        resident_facing: bool = False,
        tier: int | None = None,
        owner: str | None = None,
    ) -> Service:
        by = provenance.checked(utc_now())
        return cls(
            slug=_slug(slug),
            name=required_text("name", name),
            category=required_text("category", category),
            description=optional_text("description", description, LONG_TEXT_LIMIT),
            resident_facing=_flag("residentFacing", resident_facing),
            tier=_tier(tier),
            owner=optional_text("owner", owner),
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("Registered")
    def __init__(
        self,
        *,
        slug: str,
        name: str,
        category: str,
        description: str | None,
        resident_facing: bool,
        tier: int | None,
        owner: str | None,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.slug = slug
        self.name = name
        self.category = category
        self.description = description
        self.resident_facing = resident_facing
        self.tier = tier
        self.owner = owner
        self.registered_at = occurred_at
        self.reports: list[StatusReport] = []
        self.eta_revisions: list[EtaRevision] = []
        self.workarounds: dict[str, Workaround] = {}

    # ---- what the facts add up to -------------------------------------------------------

    def _reports_until(self, moment: datetime | None) -> list[StatusReport]:
        ordered = sorted(self.reports, key=lambda r: (r.occurred_at, r.version))
        return [r for r in ordered if moment is None or r.occurred_at <= moment]

    def status_at(self, moment: datetime | None = None) -> Status | None:
        statuses = [r.status for r in self._reports_until(moment) if r.status is not None]
        return statuses[-1] if statuses else None

    def phase_at(self, moment: datetime | None = None) -> Phase | None:
        phases = [r.phase for r in self._reports_until(moment) if r.phase is not None]
        return phases[-1] if phases else None

    @property
    def status(self) -> Status:
        """A service nobody has reported on is taken to be working."""
        return self.status_at() or Status.OPERATIONAL

    @property
    def phase(self) -> Phase | None:
        return self.phase_at()

    def eta_at(self, moment: datetime | None = None) -> EtaRevision | None:
        revisions = [e for e in self.eta_revisions if moment is None or e.occurred_at <= moment]
        return eta_in_force(revisions, self.phase_at(moment))

    @property
    def eta(self) -> EtaRevision | None:
        return self.eta_at()

    @property
    def active_workarounds(self) -> list[Workaround]:
        return [w for w in self.workarounds.values() if not w.withdrawn]

    # ---- commands -----------------------------------------------------------------------

    def report_status(
        self,
        *,
        provenance: Provenance,
        status: Status | str | None = None,
        phase: Phase | str | None = None,
        note: str | None = None,
        public_note: str | None = None,
        incident_id: UUID | None = None,
    ) -> None:
        by = provenance.checked(utc_now())
        new_status = optional_choice(Status, "status", status)
        new_phase = optional_choice(Phase, "phase", phase)
        if new_status is None and new_phase is None:
            raise ValidationError("Report a status, a recovery phase, or both.")
        if new_phase is not None:
            check_phase_transition(self.phase_at(by.occurred_at), new_phase, by.reason)
        self._status_reported(
            status=new_status,
            phase=new_phase,
            note=optional_text("note", note, LONG_TEXT_LIMIT),
            public_note=optional_text("publicNote", public_note, LONG_TEXT_LIMIT),
            incident_id=incident_id,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("StatusReported")
    def _status_reported(
        self,
        status: str | None,
        phase: str | None,
        note: str | None,
        public_note: str | None,
        incident_id: UUID | None,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.reports.append(
            StatusReport(
                version=self.version + 1,
                occurred_at=occurred_at,
                status=Status(status) if status else None,
                phase=Phase(phase) if phase else None,
                note=note,
                public_note=public_note,
            )
        )

    def set_eta(
        self, *, expected_at: datetime, confidence: Confidence | str, provenance: Provenance
    ) -> None:
        """An ETA is a revision, never an overwrite; its reason is required."""
        by = provenance.checked(utc_now())
        by.require_reason("for an ETA, so people know what it rests on")
        given_at = by.occurred_at
        expected = any_moment("expectedAt", expected_at)
        if expected is None:
            raise ValidationError("expectedAt is required; use clearEta to remove an ETA.")
        if expected <= given_at:
            raise ValidationError(
                f"An ETA must be after the time it was given: expected {expected.isoformat()} "
                f"is not after {given_at.isoformat()}."
            )
        if self.phase_at(given_at) is Phase.RESTORED:
            raise InvalidTransition(
                f"{self.name} was already restored at {given_at.isoformat()}; an ETA makes no sense."
            )
        self._eta_set(
            expected_at=expected,
            confidence=choice(Confidence, "confidence", confidence),
            actor=by.actor,
            reason=by.reason,
            occurred_at=given_at,
        )

    @event("EtaSet")
    def _eta_set(
        self,
        expected_at: datetime,
        confidence: str,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.eta_revisions.append(
            EtaRevision(
                version=self.version + 1,
                occurred_at=occurred_at,
                expected_at=expected_at,
                confidence=Confidence(confidence),
                reason=reason,
            )
        )

    def clear_eta(self, *, provenance: Provenance) -> None:
        by = provenance.checked(utc_now())
        # Judged when the clearing happened: clearing back-dated to before an ETA was given
        # would be recorded and yet leave that ETA in force.
        if self.eta_at(by.occurred_at) is None:
            raise InvalidTransition(f"{self.name} has no ETA to clear at {by.occurred_at.isoformat()}.")
        self._eta_cleared(actor=by.actor, reason=by.reason, occurred_at=by.occurred_at)

    @event("EtaCleared")
    def _eta_cleared(self, actor: str, reason: str | None, occurred_at: datetime) -> None:
        self.eta_revisions.append(
            EtaRevision(
                version=self.version + 1,
                occurred_at=occurred_at,
                expected_at=None,
                confidence=None,
                reason=reason,
            )
        )

    def publish_workaround(
        self,
        *,
        workaround_id: str,
        channel: str,
        instructions: str,
        provenance: Provenance,
        contact: str | None = None,
        audience: str | None = None,
    ) -> None:
        by = provenance.checked(utc_now())
        workaround_id = required_text("workaroundId", workaround_id, 64)
        if workaround_id in self.workarounds:
            raise Conflict(f"Workaround {workaround_id!r} was already published on {self.name}.")
        self._workaround_published(
            workaround_id=workaround_id,
            channel=required_text("channel", channel),
            instructions=required_text("instructions", instructions, LONG_TEXT_LIMIT),
            contact=optional_text("contact", contact),
            audience=optional_text("audience", audience) or "Everyone",
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("WorkaroundPublished")
    def _workaround_published(
        self,
        workaround_id: str,
        channel: str,
        instructions: str,
        contact: str | None,
        audience: str,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.workarounds[workaround_id] = Workaround(
            id=workaround_id,
            channel=channel,
            instructions=instructions,
            contact=contact,
            audience=audience,
            published_version=self.version + 1,
            published_at=occurred_at,
        )

    def withdraw_workaround(self, *, workaround_id: str, provenance: Provenance) -> None:
        by = provenance.checked(utc_now())
        workaround = self.workarounds.get(workaround_id)
        if workaround is None:
            raise NotFound(f"{self.name} has no workaround {workaround_id!r}.")
        if workaround.withdrawn:
            raise InvalidTransition(f"Workaround {workaround_id!r} was already withdrawn.")
        self._workaround_withdrawn(
            workaround_id=workaround_id,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("WorkaroundWithdrawn")
    def _workaround_withdrawn(
        self, workaround_id: str, actor: str, reason: str | None, occurred_at: datetime
    ) -> None:
        self.workarounds[workaround_id] = replace(self.workarounds[workaround_id], withdrawn=True)

    # ---- corrections --------------------------------------------------------------------

    def kind_of_fact(self, version: int) -> str:
        """The kind of the fact recorded at ``version``, or NotFound."""
        if version == 1:
            return "Registered"
        if any(r.version == version for r in self.reports):
            return "StatusReported"
        if any(e.version == version and e.expected_at for e in self.eta_revisions):
            return "EtaSet"
        if any(w.published_version == version for w in self.workarounds.values()):
            return "WorkaroundPublished"
        if 1 <= version <= self.version:
            raise InvalidTransition(
                f"Version {version} of {self.name} is not a fact that can be corrected."
            )
        raise NotFound(f"{self.name} has no version {version}.")

    def correct(self, *, version: int, changes: dict[str, Any], provenance: Provenance) -> None:
        """Correct the fact recorded at ``version``: views show the new values, history both."""
        now = utc_now()
        by = provenance.checked(now)
        by.require_reason("for a correction")
        kind = self.kind_of_fact(version)
        self._corrected(
            corrects_version=version,
            changes=checked_changes(kind, changes, CORRECTABLE, now),
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("Corrected")
    def _corrected(
        self,
        corrects_version: int,
        changes: dict[str, Any],
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        kind = self.kind_of_fact(corrects_version)
        if kind == "Registered":
            for field, value in changes.items():
                setattr(self, field, value)
        elif kind == "StatusReported":
            self.reports = [corrected_fact(r, corrects_version, changes) for r in self.reports]
        elif kind == "EtaSet":
            self.eta_revisions = [
                corrected_fact(e, corrects_version, changes) for e in self.eta_revisions
            ]
        else:
            self.workarounds = {
                key: corrected_fact(w, corrects_version, changes, version_field="published_version")
                for key, w in self.workarounds.items()
            }


_ENUM_FIELDS = {"status": Status, "phase": Phase, "confidence": Confidence}


def corrected_fact(
    fact: Any, version: int, changes: dict[str, Any], version_field: str = "version"
) -> Any:
    """``fact`` with ``changes`` applied if it is the one recorded at ``version``.

    Also used by the read models, so a correction means the same there as on the aggregate.
    """
    if getattr(fact, version_field) != version:
        return fact
    typed = {
        field: _ENUM_FIELDS[field](value) if field in _ENUM_FIELDS and value else value
        for field, value in changes.items()
    }
    return replace(fact, **typed)
