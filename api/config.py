"""Configuration, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    """With no URL, the tracker runs its own embedded PostgreSQL in ``data_dir``."""
    data_dir: Path
    environment: str
    pool_size: int
    site_name: str = "Service status"
    """The public status page's name, e.g. 'Clarion Housing: service status'."""
    public_url: str = "http://127.0.0.1:8000/"
    """Where the public status page is published (its feed and status.json link to it)."""
    cors_origins: tuple[str, ...] = ()
    """Origins whose pages may call the API from a browser (CORS, and websockets from those
    pages); none by default, so only pages the tracker serves itself can."""
    auth_failures_per_minute: int = 10
    """Failed authentications one client address may make a minute (in this process) before
    requests carrying a token from it are refused for a while (429)."""

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=Path(env.get("RESTORATION_DATA_DIR", ".restoration")),
            environment=env.get("RESTORATION_ENV", "development"),
            pool_size=int(env.get("RESTORATION_POOL_SIZE", "5")),
            site_name=env.get("RESTORATION_SITE_NAME", cls.site_name),
            public_url=env.get("RESTORATION_PUBLIC_URL", cls.public_url),
            cors_origins=tuple(
                origin.strip() for origin in env.get("RESTORATION_CORS_ORIGINS", "").split(",") if origin.strip()
            ),
            auth_failures_per_minute=int(
                env.get("RESTORATION_AUTH_FAILURES_PER_MINUTE", str(cls.auth_failures_per_minute))
            ),
        )
