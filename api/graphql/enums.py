"""GraphQL enums, generated from the domain's so the two never drift."""

from __future__ import annotations

from enum import Enum

import strawberry

from domain import incident, regulation, values


def _mirror(domain_enum: type[Enum], description: str) -> type[Enum]:
    mirrored = Enum(domain_enum.__name__, {m.name: m.value for m in domain_enum})  # type: ignore[misc]
    return strawberry.enum(mirrored, description=description)


Status = _mirror(values.Status, "What users experience, in public status-page vocabulary.")
Phase = _mirror(values.Phase, "Where the restoration work stands.")
Confidence = _mirror(values.Confidence, "How sure an ETA is.")
Audience = _mirror(values.Audience, "Who an update is for.")
Severity = _mirror(values.Severity, "How serious an incident is.")
IncidentKind = _mirror(incident.IncidentKind, "What caused the incident.")
IncidentPhase = _mirror(incident.IncidentPhase, "The incident's lifecycle.")
ObligationState = _mirror(regulation.ObligationState, "Where a regulatory clock stands.")
