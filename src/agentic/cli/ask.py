"""agentic ask: a generation through the API, followed live, on ``agentic.client`` (no HTTP code of its own)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from agentic.cli.base import DEFAULT_MODEL, DEFAULT_URL, EXIT_FAILED, EXIT_INTERRUPTED, _fail, main
from agentic.cli.progress import _Progress

if TYPE_CHECKING:
    from agentic.client import AgenticClient, ApiError, Event, Job, Usage

#: Connection failures retried before giving up (the client backs off 0.5 s, then 1 s).
ASK_MAX_RETRIES = 2


def describe(error: ApiError) -> str:
    """``Title (status): detail [code=..., field=...]``: the problem as a person reads it."""
    title = str(error.problem.get("title") or "error")
    text = f"{title} ({error.status})"
    if error.detail and error.detail != title:
        text += f": {error.detail}"
    extras = [f"code={error.code}"] if error.problem.get("code") else []
    extras += [f"field={error.field}"] if error.field else []
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
    from agentic.client import AgenticClient, ApiError, ConnectionFailed

    if not key:
        raise click.UsageError("no API key: pass --key or set AGENTIC_API_KEY "
                               "(an operator creates one with `agentic keys create <user>`)")
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.BadParameter("must not be empty", param_hint="PROMPT")
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": prompt}]
    params = {"max_tokens": max_tokens, "temperature": temperature}

    out = sys.stdout
    progress = _Progress(out, tty=out.isatty())
    try:
        with AgenticClient(url, key, max_retries=ASK_MAX_RETRIES, headers={"User-Agent": "agentic-cli"}) as client:
            code = _ask(client, model, messages, params, progress)
    except ApiError as exc:
        progress.pause()
        _fail(describe(exc))
    except ConnectionFailed as exc:
        progress.pause()
        _fail(f"cannot reach {url}: {exc}")
    sys.exit(code)


def _ask(client: AgenticClient, model: str, messages: list[dict[str, str]], params: dict[str, Any],
         progress: _Progress) -> int:
    from agentic.client import Completed

    progress.waiting("sending")  # a quick model answers within this request, which can take seconds
    try:
        outcome = client.generate(model, messages, **params)
    except KeyboardInterrupt:
        progress.pause()
        click.echo("interrupted before the API answered; nothing to cancel", err=True)
        return EXIT_INTERRUPTED
    progress.pause()
    if isinstance(outcome, Completed):
        progress.add_text(outcome.content)
        progress.set_status("completed")
        how = f"answered directly by {outcome.provider}" if outcome.provider else "answered directly"
        progress.note(progress.done_prefix() + _usage_line(outcome.usage, progress.elapsed, how))
        return 0

    job_id = outcome.job_id
    progress.note(f"job {job_id} queued (model {model})")
    progress.set_status(outcome.status)
    follower = _JobFollower(client, job_id, progress)
    cancelled_by_user = False
    while True:
        try:
            job = follower.follow()
            break
        except KeyboardInterrupt:
            progress.pause()
            click.echo("", file=progress.out)
            if cancelled_by_user:
                return EXIT_INTERRUPTED  # a second Ctrl-C while waiting for the cancellation: stop waiting
            if not click.confirm(f"Cancel job {job_id}?", default=True):
                progress.note("still following; Ctrl-C again to cancel")
                continue
            job = follower.cancel()
            cancelled_by_user = True
            if job.is_terminal:
                break
            progress.note(f"cancel requested; waiting for the job to stop (status {job.status})")
    return _finish(job, progress, cancelled_by_user)


def _finish(job: Job, progress: _Progress, cancelled_by_user: bool) -> int:
    """Print what the streamed text may have missed, the final status and the usage; return the exit code."""
    content = job.text
    if content.startswith(progress.text):
        progress.add_text(content[len(progress.text):])
    progress.pause()
    progress.set_status(job.status)
    if job.status == "completed":
        from agentic.client import Usage

        usage = job.usage or Usage.of((job.response or {}).get("usage"))
        progress.note(progress.done_prefix() + _usage_line(usage, progress.elapsed, None))
        return 0
    if job.status == "failed":
        progress.pause()
        code, text = (job.error.code, job.error.message) if job.error else ("error", "")
        message = f"{code or 'error'}: {text}".rstrip(": ")
        click.echo(f"error: job failed: {message}", err=True)
        return EXIT_FAILED
    progress.note(f"job {job.status} after {progress.elapsed:.1f}s")
    return EXIT_INTERRUPTED if cancelled_by_user else EXIT_FAILED


def _usage_line(usage: Usage | None, elapsed: float, how: str | None) -> str:
    parts = []
    if usage is not None:
        parts.append(f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
                     f"= {usage.total_tokens} total")
    else:
        parts.append("tokens: unknown")
    parts.append(f"{elapsed:.1f}s")
    if how:
        parts.append(how)
    return " · ".join(parts)


class _JobFollower:
    """Follows a job through the client's event stream (which reconnects by itself), resuming after the last
    event it showed when interrupted (Ctrl-C), and polling when streaming is refused."""

    POLL_SECONDS = 0.5

    def __init__(self, client: AgenticClient, job_id: str, progress: _Progress) -> None:
        self.client, self.job_id, self.progress = client, job_id, progress
        self.last_event_id: str | None = None

    def follow(self) -> Job:
        """Block until the job is finished; returns it."""
        from agentic.client import RateLimitError, StreamUnavailable

        try:
            for event in self.client.stream(self.job_id, last_event_id=self.last_event_id):
                self.last_event_id = event.id or self.last_event_id
                done = self._show(event)
                if done is not None:
                    return done
        except (StreamUnavailable, RateLimitError):
            pass  # streaming refused (too many streams, a proxy): poll instead
        return self._poll()

    def cancel(self) -> Job:
        from agentic.client import JobFinishedError

        try:
            return self.client.cancel(self.job_id)
        except JobFinishedError:  # finished meanwhile: show how it ended
            self.progress.note("the job had already finished")
            return self.client.job(self.job_id)

    def _show(self, event: Event) -> Job | None:
        if event.type == "status" and event.data.get("status"):
            self.progress.set_status(str(event.data["status"]))
        elif event.type == "delta":
            self.progress.add_text(str(event.data.get("text") or ""))
        elif event.type == "reset":
            offset = event.data.get("offset")
            self.progress.reset_text(int(event.data.get("attempts") or 0),
                                     offset if isinstance(offset, int) else 0)
        return event.job

    def _poll(self) -> Job:
        while True:
            job = self.client.job(self.job_id)
            if job.is_terminal:
                return job
            self.progress.set_status(job.status)
            partial = job.partial_output or ""
            if partial.startswith(self.progress.text):
                self.progress.add_text(partial[len(self.progress.text):])
            time.sleep(self.POLL_SECONDS)
