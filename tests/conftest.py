"""Shared fixtures: a real PostgreSQL for every test that needs one.

``TEST_DATABASE_URL`` names a server to use (CI sets it to the machine's); without it the
suite starts an embedded server of its own. Each test that asks for ``database_url`` gets a
database of its own, dropped afterwards, so tests never see each other's events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from api.database import (
    create_database,
    drop_database,
    embedded_postgres,
    eventsourcing_env,
    with_database,
)
from domain.application import RestorationApp


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_postgres(tmp_path_factory.mktemp("embedded")) as url:
        yield url


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        drop_database(server_url, name)


@pytest.fixture
def app(database_url: str) -> Iterator[RestorationApp]:
    application = RestorationApp(env=eventsourcing_env(database_url, pool_size=10))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def memory_app() -> RestorationApp:
    """The same application on in-memory persistence, for rules that need no database."""
    return RestorationApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
