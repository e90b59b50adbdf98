"""The job list's keyset cursor: ``<created_at in microseconds since 1970>.<job id>`` of a page's last job.

The form is documented (``CURSOR_PATTERN``, stated in the OpenAPI document) and every string of that form is a
position the list can start from, so a client or a schema-driven tool never meets a cursor that looks right and
is refused; anything else raises :class:`InvalidCursor` (the API answers 422 naming ``cursor``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from agentic.domain.jobs import Job

ID_PATTERN = r"[A-Za-z0-9_-]{1,100}"
#: 1-17 digits (any such count of microseconds is a valid instant, up to the year 5138) and a job id.
CURSOR_PATTERN = rf"^[0-9]{{1,17}}\.{ID_PATTERN}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidCursor(ValueError):
    pass


def encode_cursor(job: Job) -> str:
    created_at = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC)
    return f"{(created_at - _EPOCH) // _MICROSECOND}.{job.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    # fullmatch: in Python `$` would let a trailing newline through.
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor("cursor is not one this API returned (expected <digits>.<job id>)")
    micros, job_id = cursor.split(".", 1)
    return _EPOCH + int(micros) * _MICROSECOND, job_id
