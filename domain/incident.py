"""The Incident aggregate: the cause, its lifecycle, public updates, impact and regulators."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.corrections import FieldRule, checked_changes
from domain.errors import InvalidTransition, NotFound, ValidationError
from domain.regulation import Obligation, regime
from domain.values import (
    Immutable,
    LONG_TEXT_LIMIT,
    Audience,
    Provenance,
    Severity,
    any_moment,
    choice,
    count,
    moment,
    optional_text,
    required_text,
    utc_now,
)


class IncidentKind(StrEnum):
    CYBER_ATTACK = "CYBER_ATTACK"
    SYSTEM_OUTAGE = "SYSTEM_OUTAGE"
    SUPPLIER_FAILURE = "SUPPLIER_FAILURE"
    FACILITIES = "FACILITIES"
    OTHER = "OTHER"


class IncidentPhase(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class Update(Immutable):
    version: int
    occurred_at: datetime
    audience: Audience
    message: str
    service_ids: tuple[str, ...]
    next_update_by: datetime | None


@dataclass(frozen=True)
class ImpactRecord(Immutable):
    version: int
    occurred_at: datetime
    residents_affected: int | None
    properties_affected: int | None
    service_id: str | None


@dataclass(frozen=True)
class AwarenessRecord(Immutable):
    version: int
    aware_at: datetime


def latest_impact(records: Iterable[ImpactRecord], service_id: str | None = None) -> ImpactRecord | None:
    """The latest impact figures (by ``occurred_at``, then recording order) for the whole
    incident (``service_id`` None) or for one service; shared with the read models."""
    return max(
        (r for r in records if r.service_id == service_id),
        key=lambda r: (r.occurred_at, r.version),
        default=None,
    )


def _text(field: str, limit: int = 200, *, required: bool = False) -> FieldRule:
    check = required_text if required else optional_text
    return lambda value, _now: check(field, value, limit)


CORRECTABLE: dict[str, dict[str, FieldRule]] = {
    "Declared": {
        "title": _text("title", required=True),
        "summary": _text("summary", LONG_TEXT_LIMIT),
        "kind": lambda value, _now: choice(IncidentKind, "kind", value),
        "severity": lambda value, _now: choice(Severity, "severity", value),
        "detected_at": lambda value, now: moment("detectedAt", value, now),
    },
    "UpdatePosted": {
        "message": _text("message", LONG_TEXT_LIMIT, required=True),
        "next_update_by": lambda value, _now: any_moment("nextUpdateBy", value),
    },
    "ImpactRecorded": {
        "residents_affected": lambda value, _now: count("residentsAffected", value),
        "properties_affected": lambda value, _now: count("propertiesAffected", value),
    },
    "AwarenessRecorded": {
        "aware_at": lambda value, now: moment("awareAt", value, now),
    },
    "RegulatorNotified": {
        "reference": _text("reference"),
    },
}


class Incident(Aggregate):
    """The cause of a recovery, e.g. "Cyber attack, June 2022".

    Once closed, only corrections may be recorded against it.
    """

    @classmethod
    def declare(
        cls,
        *,
        title: str,
        kind: IncidentKind | str,
        severity: Severity | str,
        provenance: Provenance,
        summary: str | None = None,
        detected_at: datetime | None = None,
        incident_id: UUID | None = None,
    ) -> Incident:
        now = utc_now()
        by = provenance.checked(now)
        detected = by.occurred_at if detected_at is None else moment("detectedAt", detected_at, now)
        if detected > by.occurred_at:
            raise ValidationError("detectedAt cannot be after the incident was declared (occurredAt).")
        fields = dict(
            title=required_text("title", title),
            kind=choice(IncidentKind, "kind", kind),
            severity=choice(Severity, "severity", severity),
            summary=optional_text("summary", summary, LONG_TEXT_LIMIT),
            detected_at=detected,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )
        return cls._create(cls.Declared, id=incident_id, **fields)

    @event("Declared")
    def __init__(
        self,
        *,
        title: str,
        kind: str,
        severity: str,
        summary: str | None,
        detected_at: datetime,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.title = title
        self.kind = IncidentKind(kind)
        self.severity = Severity(severity)
        self.summary = summary
        self.detected_at = detected_at
        self.declared_at = occurred_at
        self.closed_at: datetime | None = None
        self.affected_service_ids: list[str] = []
        self.updates: list[Update] = []
        self.impacts: list[ImpactRecord] = []
        self.awareness: list[AwarenessRecord] = []
        self.obligations: dict[str, Obligation] = {}
        self.notification_versions: dict[int, str] = {}

    # ---- what the facts add up to -------------------------------------------------------

    @property
    def phase(self) -> IncidentPhase:
        return IncidentPhase.CLOSED if self.closed_at is not None else IncidentPhase.OPEN

    @property
    def aware_at(self) -> datetime | None:
        return self.awareness[-1].aware_at if self.awareness else None

    def impact(self, service_id: str | None = None) -> ImpactRecord | None:
        return latest_impact(self.impacts, service_id)

    def check_open(self) -> None:
        if self.closed_at is not None:
            raise InvalidTransition(
                f"Incident {self.title!r} is closed; only corrections can be recorded against it."
            )

    # ---- commands -----------------------------------------------------------------------

    def affects(self, service_id: UUID) -> bool:
        return str(service_id) in self.affected_service_ids

    def affect_service(self, *, service_id: UUID, provenance: Provenance) -> None:
        self.check_open()
        by = provenance.checked(utc_now())
        if self.affects(service_id):
            raise InvalidTransition("That service is already recorded as affected by this incident.")
        self._service_affected(
            service_id=service_id, actor=by.actor, reason=by.reason, occurred_at=by.occurred_at
        )

    @event("ServiceAffected")
    def _service_affected(
        self, service_id: UUID, actor: str, reason: str | None, occurred_at: datetime
    ) -> None:
        self.affected_service_ids.append(str(service_id))

    def post_update(
        self,
        *,
        audience: Audience | str,
        message: str,
        provenance: Provenance,
        service_ids: list[UUID] | None = None,
        next_update_by: datetime | None = None,
    ) -> None:
        self.check_open()
        by = provenance.checked(utc_now())
        promised = any_moment("nextUpdateBy", next_update_by)
        if promised is not None and promised <= by.occurred_at:
            raise ValidationError("nextUpdateBy must be after the update is posted.")
        self._update_posted(
            audience=choice(Audience, "audience", audience),
            message=required_text("message", message, LONG_TEXT_LIMIT),
            service_ids=[str(s) for s in service_ids or []],
            next_update_by=promised,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("UpdatePosted")
    def _update_posted(
        self,
        audience: str,
        message: str,
        service_ids: list[str],
        next_update_by: datetime | None,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.updates.append(
            Update(
                version=self.version + 1,
                occurred_at=occurred_at,
                audience=Audience(audience),
                message=message,
                service_ids=tuple(service_ids),
                next_update_by=next_update_by,
            )
        )

    def record_impact(
        self,
        *,
        provenance: Provenance,
        residents_affected: int | None = None,
        properties_affected: int | None = None,
        service_id: UUID | None = None,
    ) -> None:
        self.check_open()
        by = provenance.checked(utc_now())
        residents = count("residentsAffected", residents_affected)
        properties = count("propertiesAffected", properties_affected)
        if residents is None and properties is None:
            raise ValidationError("Record residentsAffected, propertiesAffected, or both.")
        self._impact_recorded(
            residents_affected=residents,
            properties_affected=properties,
            service_id=service_id,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("ImpactRecorded")
    def _impact_recorded(
        self,
        residents_affected: int | None,
        properties_affected: int | None,
        service_id: UUID | None,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.impacts.append(
            ImpactRecord(
                version=self.version + 1,
                occurred_at=occurred_at,
                residents_affected=residents_affected,
                properties_affected=properties_affected,
                service_id=str(service_id) if service_id else None,
            )
        )

    def record_awareness(
        self, *, aware_at: datetime, regimes: list[str], provenance: Provenance
    ) -> None:
        """When the organisation became aware (e.g. of a personal-data breach): starts the
        clocks of ``regimes``, and moves the anchor of every clock already running."""
        self.check_open()
        now = utc_now()
        by = provenance.checked(now)
        codes = [regime(code).code for code in dict.fromkeys(regimes)]
        self._awareness_recorded(
            aware_at=moment("awareAt", aware_at, now),
            regimes=codes,
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("AwarenessRecorded")
    def _awareness_recorded(
        self,
        aware_at: datetime,
        regimes: list[str],
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        self.awareness.append(AwarenessRecord(version=self.version + 1, aware_at=aware_at))
        for code in regimes:
            self.obligations.setdefault(code, Obligation(regime=code))
        self._anchor_obligations()

    def _anchor_obligations(self) -> None:
        self.obligations = {
            code: replace(obligation, anchor_at=self.aware_at)
            for code, obligation in self.obligations.items()
        }

    def record_regulator_notification(
        self,
        *,
        regime_code: str,
        provenance: Provenance,
        reference: str | None = None,
    ) -> None:
        """The regulator was notified at ``occurred_at`` (the filing time)."""
        self.check_open()
        by = provenance.checked(utc_now())
        self._regulator_notified(
            regime=regime(regime_code).code,
            reference=optional_text("reference", reference),
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("RegulatorNotified")
    def _regulator_notified(
        self,
        regime: str,
        reference: str | None,
        actor: str,
        reason: str | None,
        occurred_at: datetime,
    ) -> None:
        obligation = self.obligations.get(regime) or Obligation(regime=regime, anchor_at=self.aware_at)
        self.obligations[regime] = obligation.filed(occurred_at, reference)
        self.notification_versions[self.version + 1] = regime

    def record_notification_decision(
        self, *, regime_code: str, required: bool, provenance: Provenance
    ) -> None:
        """A decision, with who and why, that a regime does (or does not) apply."""
        self.check_open()
        by = provenance.checked(utc_now())
        by.require_reason("for a notification decision")
        if not isinstance(required, bool):
            raise ValidationError("required must be true or false.")
        code = regime(regime_code).code
        existing = self.obligations.get(code)
        if not required and existing is not None and existing.filed_at is not None:
            raise InvalidTransition(
                f"{existing.regulator} was already notified; it cannot now be marked not required."
            )
        self._notification_decision_recorded(
            regime=code, required=required, actor=by.actor, reason=by.reason, occurred_at=by.occurred_at
        )

    @event("NotificationDecisionRecorded")
    def _notification_decision_recorded(
        self, regime: str, required: bool, actor: str, reason: str | None, occurred_at: datetime
    ) -> None:
        obligation = self.obligations.get(regime) or Obligation(regime=regime, anchor_at=self.aware_at)
        self.obligations[regime] = replace(
            obligation, not_required=not required, decided_by=actor, decision_reason=reason
        )

    def close(self, *, provenance: Provenance, summary: str | None = None) -> None:
        self.check_open()
        by = provenance.checked(utc_now())
        if by.occurred_at < self.declared_at:
            raise ValidationError("An incident cannot close before it was declared.")
        self._closed(
            summary=optional_text("summary", summary, LONG_TEXT_LIMIT),
            actor=by.actor,
            reason=by.reason,
            occurred_at=by.occurred_at,
        )

    @event("Closed")
    def _closed(
        self, summary: str | None, actor: str, reason: str | None, occurred_at: datetime
    ) -> None:
        self.closed_at = occurred_at
        if summary:
            self.summary = summary

    # ---- corrections --------------------------------------------------------------------

    def kind_of_fact(self, version: int) -> str:
        if version == 1:
            return "Declared"
        found = (
            ("UpdatePosted", self.updates),
            ("ImpactRecorded", self.impacts),
            ("AwarenessRecorded", self.awareness),
        )
        for kind, facts in found:
            if any(f.version == version for f in facts):
                return kind
        if version in self.notification_versions:
            return "RegulatorNotified"
        if 1 <= version <= self.version:
            raise InvalidTransition(
                f"Version {version} of incident {self.title!r} is not a fact that can be corrected."
            )
        raise NotFound(f"Incident {self.title!r} has no version {version}.")

    def correct(self, *, version: int, changes: dict[str, Any], provenance: Provenance) -> None:
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
        if kind == "Declared":
            for field, value in changes.items():
                setattr(self, field, value)
            self.kind = IncidentKind(self.kind)
            self.severity = Severity(self.severity)
        elif kind == "RegulatorNotified":
            code = self.notification_versions[corrects_version]
            self.obligations[code] = replace(self.obligations[code], **changes)
        else:
            collection = {
                "UpdatePosted": "updates",
                "ImpactRecorded": "impacts",
                "AwarenessRecorded": "awareness",
            }[kind]
            setattr(
                self,
                collection,
                [
                    replace(f, **changes) if f.version == corrects_version else f
                    for f in getattr(self, collection)
                ],
            )
            if kind == "AwarenessRecorded":
                self._anchor_obligations()
