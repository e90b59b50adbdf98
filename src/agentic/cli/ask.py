"""agentic ask: a generation through the API, followed live."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from agentic.cli.base import DEFAULT_MODEL, DEFAULT_URL, EXIT_FAILED, EXIT_INTERRUPTED, TERMINAL, _fail, main
from agentic.cli.progress import _Progress

if TYPE_CHECKING:
    import httpx


class ApiError(Exception):
    """An error answer from the API, carrying its problem details."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self.describe())

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"title": response.reason_phrase or "error", "detail": response.text[:300].strip() or None}
        return cls(response.status_code, body)

    def describe(self) -> str:
        title = self.problem.get("title") or "error"
        detail = self.problem.get("detail")
        code = self.problem.get("code")
        field = self.problem.get("field")
        text = f"{title} ({self.status})"
        if detail and detail != title:
            text += f": {detail}"
        extras = [f"code={code}"] if code else []
        extras += [f"field={field}"] if field else []
        return text + (f" [{', '.join(extras)}]" if extras else "")


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True, envvar="AGENTIC_MODEL",
              help="Model id (env AGENTIC_MODEL).")
@click.option("--system", "system_prompt", help="A system prompt to send first.")
@click.option("--max-tokens", type=click.IntRange(1, 200_000))
@click.option("--temperature", type=click.FloatRange(0.0, 2.0))
@click.option("--url", default=DEFAULT_URL, show_default=True, envvar="AGENTIC_URL",
              help="The service's base URL (env AGENTIC_URL).")
@click.option("--key", envvar="AGENTIC_API_KEY", help="API key (env AGENTIC_API_KEY).")
def ask(*, prompt: str, model: str, system_prompt: str | None, max_tokens: int | None,
        temperature: float | None, url: str, key: str | None) -> None:
    """Ask a model through the API and follow the answer live.

    PROMPT is the user message (- reads it from stdin). Quick models answer at once; queued ones
    show their status and stream text as it is generated. Ctrl-C offers to cancel the job.

    Exit status: 0 completed; 1 failed, refused or unreachable; 130 cancelled or interrupted by you.
    """
    import httpx

    if not key:
        raise click.UsageError("no API key: pass --key or set AGENTIC_API_KEY "
                               "(an operator creates one with `agentic keys create <user>`)")
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.BadParameter("must not be empty", param_hint="PROMPT")
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"messages": messages, "model": model}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature

    out = sys.stdout
    progress = _Progress(out, tty=out.isatty())
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json",
               "User-Agent": "agentic-cli"}
    timeout = httpx.Timeout(30.0, read=120.0)
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as client:
            code = _ask(client, body, progress)
    except ApiError as exc:
        progress.pause()
        _fail(exc.describe())
    except httpx.HTTPError as exc:
        progress.pause()
        _fail(f"cannot reach {url}: {type(exc).__name__}: {exc}")
    sys.exit(code)


def _ask(client: httpx.Client, body: dict[str, Any], progress: _Progress) -> int:
    progress.waiting("sending")  # a quick model answers within this request, which can take seconds
    try:
        response = client.post("/api/llm/generate", json=body)
    except KeyboardInterrupt:
        progress.pause()
        click.echo("interrupted before the API answered; nothing to cancel", err=True)
        return EXIT_INTERRUPTED
    progress.pause()
    if response.status_code >= 400:
        raise ApiError.from_response(response)
    answer = response.json()
    if response.status_code == 200:
        result = answer.get("response") or {}
        progress.add_text(str(result.get("content") or ""))
        provider = result.get("provider")
        progress.set_status(str(answer.get("status", "completed")))
        how = f"answered directly by {provider}" if provider else "answered directly"
        progress.note(progress.done_prefix() + _usage_line(result.get("usage"), progress.elapsed, how))
        return 0

    job_id = str(answer["job_id"])
    links = answer.get("links") or {}
    progress.note(f"job {job_id} queued (model {body['model']})")
    progress.set_status(str(answer.get("status", "pending")))
    follower = _JobFollower(client, job_id, links, progress)
    cancelled_by_user = False
    while True:
        try:
            view = follower.follow()
            break
        except KeyboardInterrupt:
            progress.pause()
            click.echo("", file=progress.out)
            if cancelled_by_user:
                return EXIT_INTERRUPTED  # a second Ctrl-C while waiting for the cancellation: stop waiting
            if not click.confirm(f"Cancel job {job_id}?", default=True):
                progress.note("still following; Ctrl-C again to cancel")
                continue
            view = follower.cancel()
            cancelled_by_user = True
            if view.get("status") in TERMINAL:
                break
            progress.note(f"cancel requested; waiting for the job to stop (status {view.get('status')})")
    return _finish(view, progress, cancelled_by_user)


def _finish(view: dict[str, Any], progress: _Progress, cancelled_by_user: bool) -> int:
    """Print what the streamed text may have missed, the final status and the usage; return the exit code."""
    status = str(view.get("status"))
    content = _view_text(view)
    if content.startswith(progress.text):
        progress.add_text(content[len(progress.text):])
    progress.pause()
    progress.set_status(status)
    if status == "completed":
        usage = view.get("usage") or (view.get("response") or {}).get("usage")
        progress.note(progress.done_prefix() + _usage_line(usage, progress.elapsed, None))
        return 0
    if status == "failed":
        error = view.get("error") or {}
        progress.pause()
        message = f"{error.get('code', 'error')}: {error.get('message', '')}".rstrip(": ")
        click.echo(f"error: job failed: {message}", err=True)
        return EXIT_FAILED
    progress.note(f"job {status} after {progress.elapsed:.1f}s")
    return EXIT_INTERRUPTED if cancelled_by_user else EXIT_FAILED


def _view_text(view: dict[str, Any]) -> str:
    response = view.get("response")
    if isinstance(response, dict):
        for key in ("content", "preview"):
            if isinstance(response.get(key), str):
                return str(response[key])
    return str(view.get("partial_output") or "")


def _usage_line(usage: Any, elapsed: float, how: str | None) -> str:
    parts = []
    if isinstance(usage, dict) and usage.get("total_tokens") is not None:
        parts.append(f"tokens: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
                     f"completion = {usage['total_tokens']} total")
    else:
        parts.append("tokens: unknown")
    parts.append(f"{elapsed:.1f}s")
    if how:
        parts.append(how)
    return " · ".join(parts)


class _JobFollower:
    """Follows a job through its SSE stream, reconnecting with Last-Event-ID when the server ends a
    stream early (it caps stream duration), and falling back to polling when streaming is refused."""

    MAX_RETRIES = 6
    POLL_SECONDS = 0.5

    def __init__(self, client: httpx.Client, job_id: str, links: dict[str, Any], progress: _Progress) -> None:
        self.client, self.job_id, self.progress = client, job_id, progress
        self.self_url = str(links.get("self") or f"/api/jobs/{job_id}")
        self.events_url = str(links.get("events") or f"/api/jobs/{job_id}/events")
        self.cancel_url = str(links.get("cancel") or f"/api/jobs/{job_id}/cancel")
        self.last_event_id: str | None = None
        self.polling = False

    def follow(self) -> dict[str, Any]:
        """Block until the job is finished; returns its final view."""
        import httpx

        failures = 0
        while True:
            if self.polling:
                return self._poll()
            try:
                view = self._stream_once()
            except (httpx.TransportError, httpx.StreamError):
                failures += 1
                if failures > self.MAX_RETRIES:
                    raise
                time.sleep(min(0.25 * 2 ** failures, 5.0))
                continue
            if view is not None:
                return view
            # The stream ended without `done` (duration cap, proxy): make sure the job is not finished, go on.
            current = self.get()
            if current.get("status") in TERMINAL:
                return current
            failures = 0

    def get(self) -> dict[str, Any]:
        response = self.client.get(self.self_url)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        view: dict[str, Any] = response.json()
        return view

    def cancel(self) -> dict[str, Any]:
        response = self.client.post(self.cancel_url)
        if response.status_code == 409:  # finished meanwhile: show how it ended
            self.progress.note("the job had already finished")
            return self.get()
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        view: dict[str, Any] = response.json()
        return view

    def _stream_once(self) -> dict[str, Any] | None:
        import httpx

        from agentic.eventstream import SSEDecoder

        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(10.0, read=90.0)  # the server sends heartbeats well within this
        with self.client.stream("GET", self.events_url, headers=headers, timeout=timeout) as response:
            content_type = response.headers.get("content-type", "")
            if response.status_code >= 400 or not content_type.startswith("text/event-stream"):
                if response.status_code in (401, 403):
                    response.read()
                    raise ApiError.from_response(response)
                self.polling = True  # streaming refused (too many streams, no route, a proxy): poll instead
                return None
            decoder = SSEDecoder()
            for chunk in response.iter_bytes():
                for event in decoder.feed(chunk):
                    done = self._handle(event.event, event.data, event.id)
                    if done is not None:
                        return done
            for event in decoder.flush():
                done = self._handle(event.event, event.data, event.id)
                if done is not None:
                    return done
        return None

    def _handle(self, name: str, data: str, event_id: str | None) -> dict[str, Any] | None:
        if event_id is not None:
            self.last_event_id = event_id
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        if name == "status" and payload.get("status"):
            self.progress.set_status(str(payload["status"]))
        elif name == "delta":
            self.progress.add_text(str(payload.get("text") or ""))
        elif name == "reset":
            self.progress.reset_text(int(payload.get("attempts") or 0))
        elif name == "done":
            return payload
        return None

    def _poll(self) -> dict[str, Any]:
        while True:
            view = self.get()
            status = str(view.get("status"))
            if status in TERMINAL:
                return view
            self.progress.set_status(status)
            partial = str(view.get("partial_output") or "")
            if partial.startswith(self.progress.text):
                self.progress.add_text(partial[len(self.progress.text):])
            time.sleep(self.POLL_SECONDS)
