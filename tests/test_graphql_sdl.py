"""api/schema.graphql is the published contract: it must match the code."""

from __future__ import annotations

from api.graphql.schema import SDL_PATH, sdl


def test_the_exported_sdl_matches_the_schema() -> None:
    assert SDL_PATH.read_text() == sdl(), "The GraphQL schema changed: run `make schema` and commit api/schema.graphql."


def test_the_contracts_names_are_there() -> None:
    text = SDL_PATH.read_text()
    for name in (
        "services(", "service(", "incidents:", "incident(", "timeline(", "events(", "auditReport:",
        "declareIncident(", "registerService(", "addDependency(", "removeDependency(", "reportStatus(",
        "setEta(", "clearEta(", "publishWorkaround(", "withdrawWorkaround(", "postUpdate(", "recordImpact(",
        "recordAwareness(", "recordRegulatorNotification(", "recordNotificationDecision(", "correctEvent(",
        "closeIncident(", "createWebhook(", "deleteWebhook(", "restorationEvents(", "serviceChanged(", "etaSlipSeconds", "blockedBy", "percentRestored",
    ):
        assert name in text, name
