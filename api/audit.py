"""Auditors' tools that deal in files: signing keys, and the history written out as JSONL or CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.audit_chain import HISTORY_FIELDS

EXPORT_FORMATS = ("jsonl", "csv")



def generate_signing_key(out: Path) -> Path:
    """Write a new Ed25519 private key to ``out`` (PEM, PKCS#8, mode 0600) and its public key
    to ``out`` + ``.pub``; return the public key's path. Never overwrites a file."""
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; choose another --out or move it away first.")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path


def parse_until(text: str) -> tuple[int | None, datetime | None]:
    """``--until``: a position (digits) or an ISO-8601 time with an offset."""
    if text.isdigit():
        return int(text), None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a position nor an ISO-8601 time (e.g. 2022-07-01T12:00:00+01:00).") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset; add one (e.g. +01:00 or Z) so the time is unambiguous.")
    return None, moment


def json_line(record: dict[str, Any]) -> bytes:
    """A history record as one line of JSON Lines / NDJSON (UTF-8)."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def history_writer(fmt: str, out: TextIO, *, header: bool) -> Callable[[dict[str, Any]], None]:
    """A function that writes one history record to ``out`` as a JSON line or a CSV row.

    CSV has the same columns as the JSON lines, the payload as JSON text; ``header`` writes
    the column names first (leave it off when appending to a file being resumed).
    """
    if fmt == "jsonl":
        def write_line(record: dict[str, Any]) -> None:
            out.write(json_line(record).decode())
        return write_line
    if fmt == "csv":
        rows = csv.writer(out, lineterminator="\n")
        if header:
            rows.writerow(HISTORY_FIELDS)

        def write_row(record: dict[str, Any]) -> None:
            rows.writerow([orjson.dumps(record[f]).decode() if f == "payload" else record[f] for f in HISTORY_FIELDS])
        return write_row
    raise ValueError(f"Unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}.")
