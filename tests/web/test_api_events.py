"""GET /api/jobs/<id>/events: Server-Sent Events from pending to done, resumable, capped per key."""

from __future__ import annotations

import json
import queue as queues
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.test import TestResponse

from agentic.domain.llm import Usage
from agentic.service.kinds import GENERATE
from agentic.web.state import STATE_KEY, ApiState
from tests.web.support import SLOW_MODEL, Api, auth, chat


@dataclass
class Event:
    name: str | None = None
    id: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class Stream:
    """Reads an SSE response block by block, as a browser would.

    Each stream lives on a thread of its own, which makes the request, reads and closes it: Flask's
    stream_with_context keeps the request context pushed on that thread while the stream is open, exactly
    as a server's worker thread does, so two open streams must not share a thread.
    """

    def __init__(self, api: Api, path: str, headers: dict[str, str], *, read: bool = True) -> None:
        self._queue: queues.Queue[bytes | BaseException | None] = queues.Queue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.response: TestResponse | None = None
        self._buffer = ""
        self.comments: list[str] = []
        self.ended = False
        self._thread = threading.Thread(target=self._run, args=(api, path, headers, read), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "no response"

    def _run(self, api: Api, path: str, headers: dict[str, str], read: bool) -> None:
        try:
            self.response = api.client.get(path, headers=headers, buffered=False)
            self._ready.set()
            if read and self.response.status_code == 200:
                for chunk in self.response.response:
                    self._queue.put(chunk)  # type: ignore[arg-type]
                    if self._stop.is_set():
                        break
        except BaseException as exc:
            self._queue.put(exc)
        finally:
            self._ready.set()
            if self.response is not None:
                self.response.close()
            self._queue.put(None)

    @property
    def status_code(self) -> int:
        assert self.response is not None
        return self.response.status_code

    def _block(self) -> str | None:
        while "\n\n" not in self._buffer:
            if self.ended:
                return None
            chunk = self._queue.get(timeout=10)
            if isinstance(chunk, BaseException):
                raise chunk
            if chunk is None:
                self.ended = True
                return None
            self._buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        block, self._buffer = self._buffer.split("\n\n", 1)
        return block

    def next(self) -> Event | None:
        """The next real event (comments and retry-only blocks are collected, not returned)."""
        while (block := self._block()) is not None:
            event = Event()
            for line in block.split("\n"):
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    event.comments.append(value)
                elif name == "event":
                    event.name = value
                elif name == "id":
                    event.id = value
                elif name == "data":
                    event.data = value if event.data is None else event.data + "\n" + value
            self.comments.extend(event.comments)
            if event.data is not None:
                return event
        return None

    def rest(self) -> list[Event]:
        events = []
        while (event := self.next()) is not None:
            events.append(event)
        return events

    def close(self) -> None:
        """Go away mid-stream, as a client does; returns once the server side has closed."""
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


def open_stream(api: Api, job_id: str, secret: str, *, read: bool = True, last_event_id: str | None = None) -> Stream:
    headers = auth(secret) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    stream = Stream(api, f"/api/jobs/{job_id}/events", headers, read=read)
    assert stream.status_code == 200
    return stream


def queue(api: Api, secret: str, **extra: Any) -> str:
    response = api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL, **extra), headers=auth(secret))
    assert response.status_code == 202, response.json
    return str(response.json["job_id"])


def text_of(events: list[Event]) -> str:
    return "".join(e.json()["text"] for e in events if e.name == "delta")


COMPLETED = {"id": "r1", "model": SLOW_MODEL, "content": "Hello world", "provider": "mock"}


def test_a_job_observed_live_from_pending_to_done(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True, mock_tokens_per_second=150)
    secret = api.key()
    job_id = queue(api, secret, max_tokens=20)
    stream = open_stream(api, job_id, secret)
    assert stream.response is not None
    assert stream.response.mimetype == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-cache"
    assert stream.response.headers["X-Accel-Buffering"] == "no"
    first = stream.next()
    assert first is not None and first.name == "status" and first.json()["status"] == "pending"

    runner = api.container.runner
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            assert runner.begin(job_id)["started"]
            runner.call(GENERATE, job_id)
            runner.finish(job_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=drive)
    worker.start()
    events = stream.rest()
    worker.join(10)
    assert not errors
    assert stream.ended

    statuses = [e.json()["status"] for e in [first, *events] if e.name == "status"]
    assert statuses == ["pending", "processing", "completed"]
    deltas = [e for e in events if e.name == "delta"]
    assert len(deltas) >= 2, "the text should arrive in pieces while the job runs"
    done = events[-1]
    assert done.name == "done"
    view = done.json()
    assert view["status"] == "completed"
    assert text_of(events) == view["response"]["content"]
    assert len(view["response"]["content"].split()) == 20
    offsets = [int(e.id.split(".")[2]) for e in events if e.id]
    assert offsets == sorted(offsets)
    assert done.id is not None and done.id.startswith("done.")
    assert [e.name for e in events].index("status") < [e.name for e in events].index("delta")


def test_a_resumed_stream_sends_only_what_was_not_seen(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "Hello ")
    stream = open_stream(queued_api, job_id, secret)
    status, delta = stream.next(), stream.next()
    assert status is not None and status.json()["status"] == "processing" and status.id == "processing.1.0"
    assert delta is not None and delta.json() == {"text": "Hello "} and delta.id == "processing.1.6"
    stream.close()

    store.append_progress(job_id, "wor")
    resumed = open_stream(queued_api, job_id, secret, last_event_id=delta.id)
    first = resumed.next()
    assert first is not None and first.name == "delta" and first.json() == {"text": "wor"}  # no status again
    store.append_progress(job_id, "ld")
    store.complete(job_id, COMPLETED, Usage.of(2, 2))
    rest = resumed.rest()
    assert [e.name for e in rest] == ["delta", "status", "done"]
    assert rest[0].json() == {"text": "ld"}
    assert rest[1].json()["status"] == "completed"
    assert "Hello" not in text_of([first, *rest])
    assert rest[2].json()["response"]["content"] == "Hello world"


def test_last_event_id_also_works_as_a_query_parameter(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "abcdef")
    store.complete(job_id, COMPLETED)
    events = Stream(queued_api, f"/api/jobs/{job_id}/events?last_event_id=processing.1.4", auth(secret)).rest()
    assert [e.name for e in events] == ["delta", "status", "done"]
    assert events[0].json() == {"text": "ef"}


def test_a_retried_attempt_resets_the_text(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "first try")
    stream = open_stream(queued_api, job_id, secret)
    assert [stream.next().name, stream.next().name] == ["status", "delta"]  # type: ignore[union-attr]
    store.record_attempt(job_id)
    store.reset_progress(job_id)
    store.append_progress(job_id, "second")
    reset = stream.next()
    assert reset is not None and reset.name == "reset" and reset.json() == {"offset": 0, "attempts": 2}
    delta = stream.next()
    assert delta is not None and delta.json() == {"text": "second"} and delta.id == "processing.2.6"
    stream.close()
    # a client that reconnects holding text of the first attempt is told to drop it too
    resumed = open_stream(queued_api, job_id, secret, last_event_id="processing.1.9")
    reset, delta = resumed.next(), resumed.next()
    assert reset is not None and reset.name == "reset"
    assert delta is not None and delta.json() == {"text": "second"}
    resumed.close()


def test_a_retried_segment_keeps_the_committed_text(queued_api: Api) -> None:
    """A long answer's retried segment restarts from its committed text: the reset keeps that much."""
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "Committed. Half a seg")
    stream = open_stream(queued_api, job_id, secret)
    assert [stream.next().name, stream.next().name] == ["status", "delta"]  # type: ignore[union-attr]
    store.record_attempt(job_id)
    store.truncate_progress(job_id, len("Committed. "))
    store.append_progress(job_id, "Whole segment.")
    reset = stream.next()
    assert reset is not None and reset.json() == {"offset": len("Committed. "), "attempts": 2}
    delta = stream.next()
    assert delta is not None and delta.json() == {"text": "Whole segment."}
    assert delta.id == f"processing.2.{len('Committed. Whole segment.')}"
    stream.close()


def test_a_finished_job_streams_its_end_at_once(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret))
    events = open_stream(queued_api, job_id, secret).rest()
    assert [e.name for e in events] == ["status", "done"]
    assert events[1].json()["status"] == "cancelled"
    assert queued_api.app.extensions[STATE_KEY]._watcher is None  # nothing to wait for: no watcher built


def test_reconnecting_after_done_is_204(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    queued_api.container.jobs.cancel(job_id)
    done = open_stream(queued_api, job_id, secret).rest()[-1]
    assert done.id is not None
    response = queued_api.client.get(f"/api/jobs/{job_id}/events", headers={**auth(secret),
                                                                             "Last-Event-ID": done.id})
    assert response.status_code == 204


def test_a_garbled_last_event_id_replays_everything(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "all of it")
    store.complete(job_id, COMPLETED)
    events = open_stream(queued_api, job_id, secret, last_event_id="garbage.x").rest()
    assert text_of(events) == "all of it"


def test_another_users_stream_is_404(queued_api: Api) -> None:
    job_id = queue(queued_api, queued_api.key("alice"))
    response = queued_api.client.get(f"/api/jobs/{job_id}/events", headers=auth(queued_api.key("bob")))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "job_not_found"


def test_a_stream_ends_cleanly_at_the_time_limit_with_heartbeats(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True, sse_max_seconds=0.4, sse_heartbeat_seconds=0.1)
    secret = api.key()
    job_id = queue(api, secret)
    started = time.monotonic()
    stream = open_stream(api, job_id, secret)
    events = stream.rest()
    elapsed = time.monotonic() - started
    assert [e.name for e in events] == ["status"]
    assert 0.35 <= elapsed < 3
    assert stream.comments.count("keep-alive") >= 2
    assert "reconnect with Last-Event-ID" in stream.comments[-1]
    state: ApiState = api.app.extensions[STATE_KEY]
    assert state.limiter.open_streams(api.container.keys.list("alice")[0].id) == 0


def test_a_stream_ends_soon_after_its_key_is_revoked(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True, sse_max_seconds=10.0, sse_heartbeat_seconds=0.1)
    issued = api.container.keys.create("alice")
    job_id = queue(api, issued.secret)
    stream = open_stream(api, job_id, issued.secret)
    assert stream.next() is not None  # the first status event: the stream is open
    started = time.monotonic()
    assert api.container.keys.revoke(issued.key.id)
    stream.rest()
    assert time.monotonic() - started < 3  # well before SSE_MAX_SECONDS
    assert "revoked" in stream.comments[-1]
    state: ApiState = api.app.extensions[STATE_KEY]
    assert state.limiter.open_streams(issued.key.id) == 0


def test_open_streams_are_capped_per_key_and_released_on_disconnect(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True, sse_max_streams_per_key=1, sse_heartbeat_seconds=0.05)
    state: ApiState = api.app.extensions[STATE_KEY]
    issued = api.container.keys.create("alice")
    other = api.container.keys.create("alice")
    job_id = queue(api, issued.secret)

    first = open_stream(api, job_id, issued.secret)
    assert first.next() is not None
    refused = api.client.get(f"/api/jobs/{job_id}/events", headers=auth(issued.secret))
    assert refused.status_code == 429
    assert refused.json["code"] == "too_many_streams"
    assert api.jobs_count() == 1
    second_key = open_stream(api, job_id, other.secret)  # the cap is per key
    assert second_key.next() is not None

    first.close()  # the client goes away mid-stream
    assert state.limiter.open_streams(issued.key.id) == 0
    never_read = open_stream(api, job_id, issued.secret, read=False)
    never_read.close()  # closed before the first byte: released all the same
    assert state.limiter.open_streams(issued.key.id) == 0
    again = open_stream(api, job_id, issued.secret)
    assert again.next() is not None
    again.close()
    second_key.close()
    assert state.limiter.open_streams(other.key.id) == 0


@pytest.mark.parametrize("header", [None, "Basic abc"])
def test_a_stream_needs_a_key(queued_api: Api, header: str | None) -> None:
    job_id = queue(queued_api, queued_api.key())
    headers = {"Authorization": header} if header else {}
    response = queued_api.client.get(f"/api/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 401


def test_a_cancel_ends_an_open_stream(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    stream = open_stream(queued_api, job_id, secret)
    first = stream.next()
    assert first is not None and first.json()["status"] == "pending"
    assert queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret)).status_code == 202
    events = stream.rest()
    assert [e.name for e in events] == ["status", "done"]
    assert events[0].json()["status"] == "cancelled"
    assert events[1].json()["cancel_requested_at"] is not None


def test_streams_beyond_the_process_cap_are_503_with_retry_after(make_api: Callable[..., Api]) -> None:
    """Each stream holds a server thread: past SSE_MAX_STREAMS (all keys together) a stream is refused, so
    threads stay free for the API and for Inngest's calls."""
    api = make_api(use_queue=True, sse_max_streams=1, sse_heartbeat_seconds=0.05)
    alice, bob = api.container.keys.create("alice"), api.container.keys.create("bob")
    first = open_stream(api, queue(api, alice.secret), alice.secret)
    assert first.next() is not None

    refused = api.client.get(f"/api/jobs/{queue(api, bob.secret)}/events", headers=auth(bob.secret))

    assert refused.status_code == 503
    assert refused.json["code"] == "server_busy" and refused.headers["Retry-After"]
    first.close()
    again = open_stream(api, queue(api, bob.secret), bob.secret)  # the slot came back
    assert again.next() is not None
    again.close()
