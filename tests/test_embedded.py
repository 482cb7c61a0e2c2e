"""The embedded default: with no DATABASE_URL the tracker runs its own PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.composition import open_tracker
from api.config import Settings
from api.smoke import embedded_server_running, serve_and_stop
from domain.values import Phase, Provenance

pytestmark = pytest.mark.slow


def embedded(data_dir: Path) -> Settings:
    return Settings(database_url=None, data_dir=data_dir, environment="test", pool_size=2)


def test_data_survives_a_restart_and_the_server_stops_each_time(tmp_path: Path) -> None:
    with open_tracker(embedded(tmp_path)) as tracker:
        assert "host=" in tracker.database_url  # a local socket, no port opened
        email = tracker.app.register_service(
            slug="email", name="Email", category="Systems", provenance=Provenance("ops")
        )
        tracker.app.report_status(email.id, phase="ISOLATED", provenance=Provenance("ops"))
        assert embedded_server_running(tmp_path)
    assert not embedded_server_running(tmp_path)

    with open_tracker(embedded(tmp_path)) as tracker:
        assert tracker.app.service_by_slug("email").phase is Phase.ISOLATED
    assert not embedded_server_running(tmp_path)


def test_serve_answers_health_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    health, exit_code = serve_and_stop(tmp_path, demo=True)
    assert health["status"] == "ok"
    assert health["headPosition"] > 50  # the demo was loaded
    assert exit_code == 0
    assert not embedded_server_running(tmp_path)
