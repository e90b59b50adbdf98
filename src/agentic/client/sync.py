"""``AgenticClient``: the API from Python, blocking (httpx.Client)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from agentic.client import _core
from agentic.client._core import IDEMPOTENCY_HEADER, StreamCursor, StreamUnavailable
from agentic.client.errors import ConnectionFailed, RateLimitError, WaitTimeout, error_from_response
from agentic.client.models import Completed, Event, Job, JobHandle, Preview


class AgenticClient:
    """A client of one agentic server, authenticated by an API key.

    Safe to retry by default: generate and preview send an Idempotency-Key (their own, or yours), so a
    submit retried after a lost answer returns the same job; connection failures are retried with capped
    backoff, and 429/503 after their Retry-After, up to ``max_retries`` times. ``transport`` is handed to
    httpx (e.g. ``httpx.WSGITransport(app=...)`` to talk to an app in the same process).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float | httpx.Timeout = _core.DEFAULT_TIMEOUT,
                 max_retries: int = _core.DEFAULT_MAX_RETRIES, transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.max_retries = max_retries
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=_core.base_headers(api_key, headers),
                                  timeout=self._timeout, transport=transport)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgenticClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # ---- the API ------------------------------------------------------------------------------------------

    def generate(self, model: str, messages: str | Sequence[Mapping[str, str]], *,
                 idempotency_key: str | None = None, **params: Any) -> Completed | JobHandle:
        """Generate: a quick model's answer (Completed) or a queued job (JobHandle).

        ``messages`` is a list of ``{role, content}`` or a string (one user message); ``params`` are the
        API's optional fields (temperature, max_tokens, top_p, stop, ..., context)."""
        body = _core.generate_body(model, messages, params)
        key = idempotency_key or _core.new_idempotency_key()
        response = self._request("POST", _core.GENERATE_PATH, json=body, headers={IDEMPOTENCY_HEADER: key})
        return _core.generate_outcome(response)

    def preview(self, title: str, content: str, *, idempotency_key: str | None = None) -> Preview | JobHandle:
        key = idempotency_key or _core.new_idempotency_key()
        response = self._request("POST", _core.PREVIEWS_PATH, json={"title": title, "content": content},
                                 headers={IDEMPOTENCY_HEADER: key})
        return _core.preview_outcome(response)

    def job(self, job_id: str) -> Job:
        return Job.of(_core.body_of(self._request("GET", _core.job_path(job_id))))

    def jobs(self, *, status: str | None = None, limit: int | None = None) -> Iterator[Job]:
        """Every job of the caller, newest first, fetching page after page (``limit`` jobs per page)."""
        cursor: str | None = None
        while True:
            page = _core.body_of(self._request("GET", _core.JOBS_PATH, params=_core.page_params(status, limit, cursor)))
            for item in page.get("items") or []:
                yield Job.of(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> Job:
        """Request cancellation; the job as it is now (JobFinishedError when it had already ended)."""
        return Job.of(_core.body_of(self._request("POST", _core.job_path(job_id, "/cancel"))))

    def stream(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events until ``done``, reconnecting with Last-Event-ID after a dropped connection or
        the server's SSE_MAX_SECONDS; apply each event to your text (``text = event.apply(text)``)."""
        return self._events(job_id, last_event_id, deadline=None)

    def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Block until the job ends and return it: streams, and polls with backoff if streaming is refused.

        Raises WaitTimeout after ``timeout`` seconds (the job goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for event in self._events(job_id, None, deadline=deadline):
                if event.type == "done":
                    return Job.of(event.data)
        except (StreamUnavailable, RateLimitError):
            pass  # no stream for us (a proxy, too many open streams): polling still works
        return self._poll(job_id, deadline)

    # ---- plumbing -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                delay = _core.retry_delay(attempt, self.max_retries, exc)
                if delay is None:
                    raise ConnectionFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                time.sleep(delay)
                continue
            error = _core.check_response(response)
            if error is None:
                return response
            delay = _core.retry_delay(attempt, self.max_retries, error)
            if delay is None:
                raise error
            time.sleep(delay)

    def _events(self, job_id: str, last_event_id: str | None, *, deadline: float | None) -> Iterator[Event]:
        cursor = StreamCursor(last_event_id)
        failures = 0
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} did not finish in time")
            try:
                with self._http.stream("GET", _core.job_path(job_id, "/events"), headers=cursor.headers(),
                                       timeout=_core.stream_timeout(self._timeout, deadline)) as response:
                    if response.status_code == 204:  # the stream had already ended with `done`
                        return
                    if response.status_code >= 400:
                        response.read()
                        error = error_from_response(response)
                        failures += 1
                        delay = _core.retry_delay(failures, self.max_retries, error)
                        if delay is None:
                            raise error
                        time.sleep(delay)
                        continue
                    _core.ensure_event_stream(response)
                    cursor.connect()
                    for chunk in response.iter_bytes():
                        for event in cursor.feed(chunk):
                            failures = 0
                            yield event
                            if event.type == "done":
                                return
            except httpx.TransportError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(f"job {job_id} did not finish in time") from exc
                failures += 1
                delay = _core.retry_delay(failures, self.max_retries, exc)
                if delay is None:
                    raise ConnectionFailed(f"the event stream of {job_id} kept failing: {exc}") from exc
                time.sleep(delay)
                continue
            # Ended without `done`: the server's SSE_MAX_SECONDS (or a proxy). Resume where we are.
            if cursor.received == 0:
                time.sleep(_core.EMPTY_STREAM_PAUSE_SECONDS)

    def _poll(self, job_id: str, deadline: float | None) -> Job:
        interval = _core.POLL_FIRST_SECONDS
        while True:
            job = self.job(job_id)
            if job.is_terminal:
                return job
            left = _core.remaining(deadline)
            if left is not None and left <= 0:
                raise WaitTimeout(f"job {job_id} did not finish in time (status {job.status})")
            time.sleep(interval if left is None else min(interval, left))
            interval = _core.next_poll(interval)


__all__ = ["AgenticClient"]
