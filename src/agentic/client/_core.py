"""What the sync and async clients share, free of I/O: paths, bodies, retry decisions, answers, SSE cursor.

Each client is then a thin loop around its own httpx transport, so both behave the same by construction.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

import agentic
from agentic.client.errors import AgenticError, ApiError, error_from_response
from agentic.client.models import Completed, Event, JobHandle, Preview
from agentic.eventstream import SSEDecoder

DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=120.0)
#: Longest silence on an event stream; the server sends a heartbeat every SSE_HEARTBEAT_SECONDS (15 s).
STREAM_READ_SECONDS = 90.0
DEFAULT_MAX_RETRIES = 3
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
#: A Retry-After longer than this is not waited out: the error is raised instead.
MAX_RETRY_AFTER_SECONDS = 60.0
#: Pause before reconnecting when a stream ended having sent nothing (avoids a tight reconnect loop).
EMPTY_STREAM_PAUSE_SECONDS = 0.1
POLL_FIRST_SECONDS = 0.5
POLL_MAX_SECONDS = 5.0
RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENCY_HEADER = "Idempotency-Key"
GENERATE_PATH = "/api/llm/generate"
PREVIEWS_PATH = "/api/previews"
JOBS_PATH = "/api/jobs"


class StreamUnavailable(AgenticError):
    """The events route answered something other than an event stream (a proxy in the way)."""


def base_headers(api_key: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Accept": "application/json",
            "User-Agent": f"agentic-python/{agentic.__version__}", **(extra or {})}


def job_path(job_id: str, suffix: str = "") -> str:
    return f"{JOBS_PATH}/{quote(job_id, safe='')}{suffix}"


def new_idempotency_key() -> str:
    return f"agentic-py-{uuid.uuid4().hex}"


def messages_of(messages: str | Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """A bare string is one user message."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(message) for message in messages]


def generate_body(model: str, messages: str | Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages_of(messages)}
    body.update({name: value for name, value in params.items() if value is not None})
    return body


def body_of(response: httpx.Response) -> Any:
    """A success's JSON; a proxy's HTML page or an empty answer is an error, not a crash in json."""
    try:
        return response.json()
    except ValueError:
        raise AgenticError(f"expected JSON from {response.request.method} {response.request.url.path}, got "
                           f"{response.status_code} {response.headers.get('content-type', '(no type)')}") from None


def generate_outcome(response: httpx.Response) -> Completed | JobHandle:
    body = body_of(response)
    if response.status_code == 202:
        return JobHandle.of(body, replayed=response.headers.get("Idempotent-Replayed") == "true")
    return Completed.of(body)


def preview_outcome(response: httpx.Response) -> Preview | JobHandle:
    body = body_of(response)
    if response.status_code == 202:
        return JobHandle.of(body, replayed=response.headers.get("Idempotent-Replayed") == "true")
    return Preview(preview=str(body.get("preview") or ""), used_ai=bool(body.get("used_ai")), data=body)


def page_params(status: str | None, limit: int | None, cursor: str | None) -> dict[str, str]:
    params = {"status": status, "limit": str(limit) if limit is not None else None, "cursor": cursor}
    return {name: value for name, value in params.items() if value is not None}


def backoff(attempt: int) -> float:
    """Capped exponential backoff with a little jitter: 0.5, 1, 2, 4, 8, 8 ... seconds."""
    delay: float = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return delay * (1 + random.random() * 0.2)


def retry_delay(attempt: int, max_retries: int, error: BaseException) -> float | None:
    """Seconds to wait before retry number ``attempt``, or None when the error should be raised.

    Connection failures are retried with backoff (generate and preview carry an Idempotency-Key, so a
    retried submit can never make a second job); 429 and 503 after their Retry-After."""
    if attempt > max_retries:
        return None
    if isinstance(error, httpx.TransportError):
        return backoff(attempt)
    if isinstance(error, ApiError) and error.status in RETRY_STATUSES:
        if error.retry_after is None:
            return backoff(attempt)
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER_SECONDS else None
    return None


def check_response(response: httpx.Response) -> ApiError | None:
    """The error of an answer whose body has been read, or None for a success."""
    return error_from_response(response) if response.status_code >= 400 else None


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def stream_timeout(base: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    read = STREAM_READ_SECONDS
    left = remaining(deadline)
    if left is not None:
        read = max(0.01, min(read, left))
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


def ensure_event_stream(response: httpx.Response) -> None:
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        raise StreamUnavailable(f"expected an event stream, got {response.status_code} "
                                f"{response.headers.get('content-type', 'without a content type')}")


class StreamCursor:
    """Where a job's stream stands: the last complete event's id (sent back as Last-Event-ID on reconnect).

    Each connection gets a fresh decoder, and an event cut off by a dropped connection is never dispatched,
    so what a reconnect resends starts exactly where the complete events stopped."""

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self._decoder = SSEDecoder()
        self.received = 0

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def connect(self) -> None:
        self._decoder = SSEDecoder()
        self.received = 0

    def feed(self, chunk: bytes) -> list[Event]:
        events = []
        for raw in self._decoder.feed(chunk):
            if raw.id is not None:
                self.last_event_id = raw.id
            try:
                data = json.loads(raw.data) if raw.data else {}
            except ValueError:
                continue
            if isinstance(data, dict):
                events.append(Event(type=raw.event, data=data, id=raw.id))
        self.received += len(events)
        return events


def next_poll(interval: float) -> float:
    return min(POLL_MAX_SECONDS, interval * 1.5)


__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "IDEMPOTENCY_HEADER",
    "StreamCursor",
    "StreamUnavailable",
    "base_headers",
    "generate_body",
    "generate_outcome",
    "job_path",
    "new_idempotency_key",
    "page_params",
    "preview_outcome",
    "retry_delay",
]
