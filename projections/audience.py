"""What an event is about and who may see it: the rules every projection that shows or sends
events shares (the timeline, the webhook outbox, the broker relay), so they never disagree
about what is public."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from domain.incident import Incident
from domain.service import Service
from projections.base import Envelope

Subject = tuple[str, bool]
"""A service's or incident's name, and whether residents may see facts about it."""

PRIVATE_KINDS = frozenset({
    "ImpactRecorded", "AwarenessRecorded", "RegulatorNotified", "NotificationDecisionRecorded",
    "DependencyAdded", "DependencyRemoved", "Started",
})


def as_uuid(key: Any) -> UUID:
    return key if isinstance(key, UUID) else UUID(str(key))


def subject_set(envelope: Envelope, known: Mapping[UUID, Subject]) -> Subject | None:
    """The name and audience of the event's originator, when this event sets or corrects them."""
    event = envelope.event
    if isinstance(event, Service.Registered):
        return event.name, event.resident_facing
    if isinstance(event, Incident.Declared):
        return event.title, True
    if envelope.kind == "Corrected" and event.corrects_version == 1:  # the registration itself
        name, resident_facing = known.get(envelope.originator_id, ("?", False))
        changes = event.changes
        if isinstance(event, Service.Corrected):
            return changes.get("name", name), changes.get("resident_facing", resident_facing)
        return changes.get("title", name), resident_facing
    return None


def about(envelope: Envelope) -> tuple[UUID | None, UUID | None]:
    """(service id, incident id) the event is about."""
    event = envelope.event
    service_id = getattr(event, "service_id", None)
    if isinstance(event, Service.Event):
        return envelope.originator_id, getattr(event, "incident_id", None)
    if isinstance(event, Incident.Event):
        return (as_uuid(service_id) if service_id else None), envelope.originator_id
    return (as_uuid(service_id) if service_id else None), None


def services_named(envelope: Envelope) -> frozenset[UUID]:
    """Every service the event is about: its own, and those a public update names."""
    service_id, _ = about(envelope)
    named = {as_uuid(s) for s in getattr(envelope.event, "service_ids", None) or ()}
    if service_id is not None:
        named.add(service_id)
    return frozenset(named)


def is_public(
    envelope: Envelope, service_id: UUID | None, resident_facing: Callable[[UUID], bool]
) -> bool:
    """Whether residents may see the event. A correction is as public as the fact it
    corrects, which only the caller's records can tell: it is not decided here."""
    event = envelope.event
    if envelope.kind in PRIVATE_KINDS:
        return False
    if envelope.kind == "UpdatePosted":
        return event.audience == "PUBLIC"
    if service_id is not None:
        return resident_facing(service_id)
    return True  # incident declared or closed
