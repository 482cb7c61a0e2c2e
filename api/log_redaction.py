"""Keeps tokens and secrets out of the web server's log, at every level.

The tracker's own code never logs a token or a secret. The web server does, at DEBUG: its
websocket implementation logs each frame (cut to its first 48 and last 24 characters, so a
``connection_init`` frame shows the end of its bearer token, and a ``createWebhook`` answered
over a websocket the end of its secret) and the headers of each upgrade request (a client may
send ``Authorization`` there). Those lines are logged on
uvicorn's ``uvicorn.error`` logger, so a filter there rewrites them before any handler, ours or
a deployment's, sees them.
"""

from __future__ import annotations

import logging
import re

SERVER_LOGGER = "uvicorn.error"

REDACTIONS = [
    # A frame, either way: its content can hold a token or a secret, in any shape, cut anywhere.
    (re.compile(r"^([<>] (?:TEXT|BINARY|CONT)) .*?( \[\d+ bytes\])?$", re.DOTALL), r"\1 [content not logged]\2"),
    (re.compile(r"^([<>] (?:authorization|proxy-authorization|cookie|set-cookie)): .*$", re.IGNORECASE | re.DOTALL),
     r"\1: [not logged]"),
    # Anywhere else: the tracker's tokens and webhook secrets by their prefixes (api.tokens, api.webhooks).
    (re.compile(r"\b(rt|whsec)_[A-Za-z0-9_\-+/=]+"), r"\1_[not logged]"),
]


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = redacted = record.getMessage()
        for pattern, replacement in REDACTIONS:
            redacted = pattern.sub(replacement, redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_server_log() -> None:
    """Install the filter on the server's logger (once, however many apps are created)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(existing, RedactSecrets) for existing in logger.filters):
        logger.addFilter(RedactSecrets())
