"""The forms of the identifiers a client sends back in paths and queries, as the OpenAPI document states them.

- a job id is ``JOB_ID_PATTERN`` (what the store issues: ``job_`` and URL-safe base64); any other string is no
  job (404), answered without a query, so a byte PostgreSQL cannot hold (NUL) never reaches it;
- the job list's cursor is ``CURSOR_PATTERN``, kept with its encoder in ``agentic.store.cursor``.
"""

from __future__ import annotations

import re

from agentic.store.cursor import CURSOR_PATTERN, ID_PATTERN

JOB_ID_PATTERN = rf"^{ID_PATTERN}$"
_JOB_ID = re.compile(ID_PATTERN)


def is_job_id(value: str) -> bool:
    return _JOB_ID.fullmatch(value) is not None  # fullmatch: in Python `$` would let a trailing newline through


__all__ = ["CURSOR_PATTERN", "JOB_ID_PATTERN", "is_job_id"]
