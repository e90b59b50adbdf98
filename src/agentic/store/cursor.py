"""The job list's keyset cursor: ``(created_at, id)`` of the last job on a page, opaque to clients."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from agentic.domain.jobs import Job


class InvalidCursor(ValueError):
    pass


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        moment = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc
    if moment.tzinfo is None or not job_id:
        raise InvalidCursor("cursor is not one this API returned")
    return moment, job_id
