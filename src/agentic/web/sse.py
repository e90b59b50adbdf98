"""The job event stream (Server-Sent Events) and the per-key cap on open streams.

Events, in order of what happened to the job:

- ``status``  data ``{"status", "attempts", "updated_at", "live_text"}``: the job's status changed (the first
  event always says where it stands); ``live_text`` false: an offloaded job, whose text arrives with ``done``;
- ``delta``   data ``{"text"}``: partial output to append to what the client has;
- ``reset``   data ``{"offset", "attempts"}``: keep only the first ``offset`` characters of the partial text
  received so far (a retried attempt, or a retried segment of a long answer, starts over from there; 0 drops
  everything);
- ``done``    data: the whole job view (as GET /api/jobs/<id>); the last event, then the stream closes.

Comment lines (``: keep-alive``) go out every ``heartbeat`` seconds of silence, so proxies keep the
connection and a vanished client is noticed. A stream ends after ``max_seconds`` at the latest; the client
reconnects (EventSource does so by itself) and resumes.

Event ids, the resume scheme: every event's id is ``<status>.<attempts>.<offset>`` describing what the client
has seen once it processed that event: the last status it was told, the attempt number of the partial text
it holds, and how many characters (code points) of that text it has. On reconnect, ``Last-Event-ID`` lets
the server send only the difference: no status event unless the status changed, a delta starting at
``offset``, and a ``reset`` first if the text it holds belongs to an earlier attempt (or is longer than the
current text); a resumed client's text is unknown, so that reset drops everything (``offset`` 0). The
``done`` event's id starts with ``done``; reconnecting with it answers 204 No Content, which tells
EventSource to stop reconnecting. An id that does not parse is treated as no id (full replay).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from agentic.domain.jobs import Job, JobStatus
from agentic.store.watch import JobWatcher, Subscription
from agentic.web.schemas import DeltaEvent, JobView, ResetEvent, StatusEvent, dump

log = logging.getLogger(__name__)

DONE = "done"
#: Suggested reconnection delay sent to the client (the SSE ``retry:`` field).
RETRY_MILLISECONDS = 1000
_STATUSES = {s.value for s in JobStatus}
_NO_STATUS = "none"  # text was sent before any status (a stream opened on a finished job)
#: Every event id the stream sends (stated in the OpenAPI document).
EVENT_ID_PATTERN = r"^(" + "|".join(sorted(_STATUSES | {DONE, _NO_STATUS})) + r")\.[0-9]+\.[0-9]+$"
#: The events, in the order a stream can send them, and the model of each one's JSON data.
EVENT_DATA: dict[str, type[BaseModel]] = {"status": StatusEvent, "delta": DeltaEvent, "reset": ResetEvent,
                                          DONE: JobView}


@dataclass(frozen=True)
class StreamPosition:
    """What the client has seen; serialised as the SSE event id."""

    status: str | None = None
    attempts: int = 0
    offset: int = 0

    @property
    def finished(self) -> bool:
        return self.status == DONE

    def event_id(self) -> str:
        return f"{self.status or _NO_STATUS}.{self.attempts}.{self.offset}"

    @classmethod
    def parse(cls, value: str | None) -> StreamPosition | None:
        if not value:
            return None
        parts = value.strip().split(".")
        if len(parts) != 3 or parts[0] not in _STATUSES | {DONE, _NO_STATUS}:
            return None
        try:
            attempts, offset = int(parts[1]), int(parts[2])
        except ValueError:
            return None
        if attempts < 0 or offset < 0:
            return None
        return cls(status=None if parts[0] == _NO_STATUS else parts[0], attempts=attempts, offset=offset)


def format_event(event: str, data: str, event_id: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


class _Tracker:
    """Turns successive reads of the row into the events the client has not seen."""

    def __init__(self, resume: StreamPosition | None, live_text: bool = True) -> None:
        self.live_text = live_text
        self.status = resume.status if resume else None
        self.attempts = resume.attempts if resume else 0
        self.offset = resume.offset if resume else 0
        #: The text the client holds, once known. After a resume only its length is known, until the first read.
        self.delivered: str | None = None if resume and resume.offset else ""

    def position(self, status: str | None = None) -> str:
        return StreamPosition(status or self.status, self.attempts, self.offset).event_id()

    def events(self, job: Job) -> Iterator[str]:
        if not job.is_terminal:
            yield from self._status(job)
            yield from self._text(job)
        else:  # the last text belongs before the final status
            yield from self._text(job)
            yield from self._status(job)

    def done(self, job: Job) -> str:
        view = JobView.of(job, live_text=self.live_text)
        return format_event(DONE, view.model_dump_json(by_alias=True), self.position(DONE))

    def _status(self, job: Job) -> Iterator[str]:
        if self.status == job.status.value:
            return
        self.status = job.status.value
        if self.offset == 0:  # holding no text, the client is in step with the current attempt
            self.attempts = job.attempts
        data = StatusEvent(status=job.status, attempts=job.attempts, updated_at=job.updated_at,
                           live_text=self.live_text)
        yield format_event("status", json.dumps(dump(data)), self.position())

    def _text(self, job: Job) -> Iterator[str]:
        text = job.partial_output
        if self.delivered is None:  # first read after a resume: trust the offset if it can be the same text
            same = job.attempts == self.attempts and self.offset <= len(text)
            self.delivered = text[: self.offset] if same else None
        if self.delivered is None or not text.startswith(self.delivered):
            # Keep what the client holds that the current text still starts with (the committed segments of
            # a long answer survive a retried segment); with nothing known, drop everything (offset 0).
            keep = _common_prefix(self.delivered, text) if self.delivered is not None else 0
            self.attempts, self.offset, self.delivered = job.attempts, keep, text[:keep]
            reset = ResetEvent(offset=keep, attempts=job.attempts)
            yield format_event("reset", json.dumps(dump(reset)), self.position())
        self.attempts = job.attempts
        if len(text) > self.offset:
            delta = text[self.offset:]
            self.offset, self.delivered = len(text), text
            yield format_event("delta", json.dumps(dump(DeltaEvent(text=delta)), ensure_ascii=False),
                               self.position())


def _common_prefix(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    limit = min(len(a), len(b))
    if a[:limit] == b[:limit]:
        return limit
    low, high = 0, limit  # a[:low] == b[:low] and a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True)
class StreamSettings:
    max_seconds: float
    heartbeat_seconds: float


def job_events(
    job: Job,
    *,
    load: Callable[[], Job | None],
    watcher: Callable[[], JobWatcher],
    resume: StreamPosition | None,
    settings: StreamSettings,
    on_close: Callable[[], None] = lambda: None,
    still_authorized: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
    live_text: bool = True,
) -> Iterator[str]:
    """The stream for ``job`` (already loaded and owned by the caller), from ``resume`` on.

    ``live_text`` False (an offloaded job) says so in the status events: no delta comes before ``done``.

    ``on_close`` runs however the stream ends: finished, timed out, or the client went away (the server
    closes the generator, which raises GeneratorExit at the pending ``yield``). ``still_authorized`` is
    asked once per heartbeat interval, so a stream ends soon after its API key is revoked.
    """
    deadline = clock() + settings.max_seconds
    tracker = _Tracker(resume, live_text)
    subscription: Subscription | None = None
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        last_sent = last_auth = clock()
        if not job.is_terminal:
            subscription = watcher().subscribe(job.id)
            reloaded = load()  # after subscribing, so no change slips between this read and the first wait
            if reloaded is None:
                return
            job = reloaded
        while True:
            for chunk in tracker.events(job):
                yield chunk
                last_sent = clock()
            if job.is_terminal:
                yield tracker.done(job)
                return
            now = clock()
            if now - last_auth >= settings.heartbeat_seconds:
                if not still_authorized():
                    yield ": access ended (the API key was revoked or the job token expired); the stream ends\n\n"
                    return
                last_auth = now
            if now >= deadline:
                yield ": stream time limit reached; reconnect with Last-Event-ID to continue\n\n"
                return
            if now - last_sent >= settings.heartbeat_seconds:
                yield ": keep-alive\n\n"
                last_sent = now
            assert subscription is not None
            subscription.wait(min(deadline - now, settings.heartbeat_seconds - (now - last_sent)))
            reloaded = load()
            if reloaded is None:  # deleted meanwhile; a reconnect gets a 404
                return
            job = reloaded
    except SQLAlchemyError as exc:
        log.warning("job stream for %s ended: database error %s", job.id, type(exc).__name__)
        yield ": database unavailable; reconnect with Last-Event-ID to continue\n\n"
    finally:
        if subscription is not None:
            subscription.close()
        on_close()


class StreamsFull(Exception):
    """The process already holds its cap of open streams (``SSE_MAX_STREAMS``)."""

    def __init__(self, total: int) -> None:
        super().__init__(f"{total} event streams are open")
        self.total = total


class StreamSlot:
    """One open stream counted against a key; releasing twice is harmless."""

    def __init__(self, limiter: StreamLimiter, key: str) -> None:
        self._limiter = limiter
        self._key = key
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._limiter._release(self._key)


class StreamLimiter:
    """Caps concurrent streams per API key, and in all, in this process (each serverless instance counts its
    own). Each open stream holds a server thread: the process-wide cap keeps threads free for the API and
    for Inngest's calls to /api/inngest, which running jobs need."""

    def __init__(self, limit: int, total: int | None = None) -> None:
        self.limit = limit
        self.total = total
        self._counts: dict[str, int] = {}
        self._open = 0
        self._lock = threading.Lock()

    def acquire(self, key: str) -> StreamSlot | None:
        """A slot, or None when the key is at its limit ; raises StreamsFull at the process-wide cap."""
        with self._lock:
            count = self._counts.get(key, 0)
            if count >= self.limit:
                return None
            if self.total is not None and self._open >= self.total:
                raise StreamsFull(self.total)
            self._counts[key] = count + 1
            self._open += 1
        return StreamSlot(self, key)

    def open_streams(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def _release(self, key: str) -> None:
        with self._lock:
            self._open -= 1
            count = self._counts.get(key, 0) - 1
            if count > 0:
                self._counts[key] = count
            else:
                self._counts.pop(key, None)


__all__ = ["DONE", "EVENT_DATA", "EVENT_ID_PATTERN", "StreamLimiter", "StreamPosition", "StreamSettings",
           "StreamSlot", "StreamsFull", "job_events"]
