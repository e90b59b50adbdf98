"""The forms of the identifiers a client sends back: job ids (in paths) and the job list's page cursor.

Each form is one regex, stated in the OpenAPI document, and the API treats every string matching it as
meaningful, so a client or a schema-driven tool never meets a value that looks right and is refused:

- a job id is ``JOB_ID_PATTERN`` (what the store issues: ``job_`` and URL-safe base64); any other string
  is no job (404), answered without a query, so a byte PostgreSQL cannot hold (NUL) never reaches it;
- a cursor is ``<created_at in microseconds since 1970>.<job id>``: any such string is a position the list
  can start from; anything else is refused (422 naming ``cursor``). The store keeps its own cursor format;
  this module translates at the edge, through the store's own encoder and decoder.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from agentic.domain.jobs import Job, JobKind, JobStatus
from agentic.store.jobs import InvalidCursor, decode_cursor, encode_cursor

_ID = r"[A-Za-z0-9_-]{1,100}"
JOB_ID_PATTERN = rf"^{_ID}$"
#: 1-17 digits (any such count of microseconds is a valid instant, up to the year 5138) and a job id.
CURSOR_PATTERN = rf"^[0-9]{{1,17}}\.{_ID}$"
_JOB_ID = re.compile(_ID)
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def is_job_id(value: str) -> bool:
    return _JOB_ID.fullmatch(value) is not None  # fullmatch: in Python `$` would let a trailing newline through


def to_api(store_cursor: str | None) -> str | None:
    """The store's next-page cursor in the API's form."""
    if store_cursor is None:
        return None
    created_at, job_id = decode_cursor(store_cursor)
    return f"{(created_at - _EPOCH) // _MICROSECOND}.{job_id}"


def from_api(cursor: str | None) -> str | None:
    """The store's cursor for an API cursor (None: the first page); raises InvalidCursor for anything not of
    the documented form, the empty string included."""
    if cursor is None:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor("cursor is not one this API returned (expected <digits>.<job id>)")
    micros, job_id = cursor.split(".", 1)
    created_at = _EPOCH + int(micros) * _MICROSECOND
    # The store's encoder reads a job's (created_at, id) only: a stand-in job at that position.
    position = Job(id=job_id, created_at=created_at, updated_at=created_at, kind=JobKind.GENERATE, user_id="",
                   status=JobStatus.PENDING, request={})
    return encode_cursor(position)


__all__ = ["CURSOR_PATTERN", "JOB_ID_PATTERN", "from_api", "is_job_id", "to_api"]
