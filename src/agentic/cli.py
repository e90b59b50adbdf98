"""The ``agentic`` command: run the service, administer keys and jobs, and ask the API from a terminal.

Commands that touch the database build only what they need from the settings (an engine, a store), so they
work on a box that cannot reach Inngest; only ``jobs cancel`` also sends Inngest's cancel event. ``ask`` is a
plain HTTP client of the API and needs no settings.
Heavy imports (SQLAlchemy, pydantic, Flask, waitress, httpx) happen inside the commands, so ``--help`` and
shell completion stay fast.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from agentic.config import Settings
    from agentic.domain.jobs import Job
    from agentic.store.keys import ApiKey

#: Kept in step with ``agentic.domain.jobs.JobStatus`` (a test checks); spelled out to keep start-up light.
JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DEFAULT_PORT = 8000
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_MODEL = "openai/gpt-4o-mini"
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


# ---- the command group ------------------------------------------------------------------------------------


class _Group(click.Group):
    """Turns the errors an operator can fix (configuration, an unreachable or empty database) into one
    clean message and an exit code, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            config = sys.modules.get("agentic.config")
            if config is not None and isinstance(exc, config.ConfigError):
                click.echo(f"error: {exc}", err=True)
                ctx.exit(EXIT_CONFIG)
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is not None and isinstance(exc, sa_exc.OperationalError | sa_exc.ProgrammingError):
                hint = "" if "connect" in str(exc.orig).lower() else " (has `agentic db init` been run?)"
                click.echo(f"error: database: {_first_line(str(exc.orig))}{hint}", err=True)
                ctx.exit(EXIT_FAILED)
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentic", prog_name="agentic")
def main() -> None:
    """agentic: LLM generations as durable Inngest jobs.

    Settings come from the environment (and a .env file): DATABASE_URL, LLM_PROVIDER, INNGEST_DEV, ...
    """


def _settings() -> Settings:
    from agentic.config import load_settings

    return load_settings()


def _engine(settings: Settings) -> Engine:
    from agentic.store.engine import create_db_engine

    return create_db_engine(settings.database_url, serverless=True, echo=settings.database_echo)


def _create_tables(settings: Settings) -> None:
    from agentic.store.engine import init_db

    engine = _engine(settings)
    try:
        init_db(engine)
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


# ---- serve ------------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, envvar="PORT", type=click.IntRange(1, 65535),
              help="Port to listen on (env PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes [default: 1 on SQLite, 2 on PostgreSQL].")
@click.option("--threads", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Threads per worker: each request being answered holds one (an Inngest step, an SSE stream).")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(*, host: str, port: int, workers: int | None, threads: int, access_log: bool) -> None:
    """Serve the API, playground and Inngest endpoint (waitress worker processes).

    A request reaches a thread only once it has fully arrived, so slow clients hold no thread; open event
    streams are capped (SSE_MAX_STREAMS, at most three quarters of the threads) so the API and Inngest's
    calls always find one. Creates missing tables first, so a fresh database works at once.
    """
    from agentic.server import ServerOptions, stream_cap
    from agentic.server import serve as run_server
    from agentic.web.app import container_of, create_app

    settings = _settings()
    _create_tables(settings)
    cap = min(settings.sse_max_streams or threads, stream_cap(threads))
    settings = settings.model_copy(update={"sse_max_streams": cap})
    app = create_app(settings)  # builds everything once, so a config error stops us here, not in a worker

    if workers is None:
        # SQLite serialises writers; one process (with threads) avoids lock contention between processes.
        workers = 2 if settings.is_postgres else 1
    base = f"http://{_display_host(host)}:{port}"
    for line in _serve_banner(base, settings, workers, threads):
        click.echo(line)
    _log_server_to_stderr()
    if access_log:
        from agentic.server import access_logged

        app.wsgi_app = access_logged(app.wsgi_app)  # type: ignore[method-assign]
    options = ServerOptions(host=host, port=port, workers=workers, threads=threads,
                            max_body_bytes=max(settings.max_request_bytes, settings.max_inngest_request_bytes))
    # Connections opened before the fork must not be shared by the workers: drop them in each child.
    sys.exit(run_server(app, options, after_fork=lambda: container_of(app).engine.dispose(close=False)))


def _log_server_to_stderr() -> None:
    """The server's own lines (start, workers, access log) at INFO; the app's loggers keep their levels."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(levelname)s %(name)s: %(message)s"))
    for name in ("agentic.server", "agentic.access", "waitress"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (display only: a wildcard bind is reachable locally)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _serve_banner(base: str, settings: Settings, workers: int, threads: int) -> list[str]:
    inngest_url = f"{base}/api/inngest"
    mode = "dev mode" if settings.inngest_is_dev else "production mode: signed requests only"
    lines = [
        f"agentic on {base}  (database {_safe_url(settings.database_url)}, "
        f"{workers} worker(s) x {threads} threads, at most {settings.sse_max_streams} event streams each)",
        f"  API:        {base}/api   (health {base}/api/health, spec {base}/api/openapi.json)",
        f"  Playground: {base}/",
        f"  Inngest:    {inngest_url}   ({mode})",
        "Start the Inngest dev server against it (in another terminal):",
        f"  npx --ignore-scripts=false inngest-cli@latest dev -u {inngest_url}",
    ]
    if not settings.inngest_is_dev:
        lines.append("  (the dev server only talks to an app started with INNGEST_DEV=1)")
    return lines


# ---- db ---------------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database administration."""


@db.command("init")
def db_init() -> None:
    """Create the tables and indexes that are missing (safe to run again)."""
    settings = _settings()
    _create_tables(settings)
    click.echo(f"database ready: {_safe_url(settings.database_url)}")


# ---- keys -------------------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys: create, list, revoke. A key is shown once, at creation."""


@keys.command("create")
@click.argument("user_id")
@click.option("--label", "-l", help="A note saying what the key is for.")
def keys_create(user_id: str, label: str | None) -> None:
    """Issue a key for USER_ID. The key is printed alone on the last line, for scripts."""
    from agentic.store.keys import ApiKeyStore

    if not user_id.strip():
        raise click.BadParameter("must not be empty", param_hint="USER_ID")
    engine = _engine(_settings())
    try:
        issued = ApiKeyStore(engine).create(user_id, label=label)
    finally:
        engine.dispose()
    labelled = f" ({issued.key.label})" if issued.key.label else ""
    click.echo(f"created key {issued.key.id} for user {issued.key.user_id}{labelled}")
    click.echo("store it now: it is not shown again")
    click.echo(issued.secret)


@keys.command("list")
@click.option("--user", "-u", "user_id", help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def keys_list(user_id: str | None, as_json: bool) -> None:
    """List keys (never the secrets, which are not stored)."""
    from agentic.store.keys import ApiKeyStore

    engine = _engine(_settings())
    try:
        found = ApiKeyStore(engine).list(user_id)
    finally:
        engine.dispose()
    if as_json:
        for key in found:
            click.echo(json.dumps(_key_dict(key)))
        return
    if not found:
        click.echo("no keys")
        return
    rows = [(k.id, k.user_id, k.label or "-", "active" if k.active else f"revoked {_when(k.revoked_at)}",
             _when(k.created_at), _when(k.last_used_at)) for k in found]
    click.echo(_table(("ID", "USER", "LABEL", "STATE", "CREATED", "LAST USED"), rows))


def _key_dict(key: ApiKey) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {"id": key.id, "user_id": key.user_id, "label": key.label, "active": key.active,
            "created_at": iso(key.created_at), "revoked_at": iso(key.revoked_at),
            "last_used_at": iso(key.last_used_at)}


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID (the key_... id from `keys list`); it stops working at once."""
    from agentic.store.keys import ApiKeyStore

    engine = _engine(_settings())
    try:
        revoked = ApiKeyStore(engine).revoke(key_id)
    finally:
        engine.dispose()
    if not revoked:
        _fail(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")


# ---- jobs -------------------------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """Inspect and cancel jobs, straight from the database."""


@jobs.command("list")
@click.option("--user", "-u", "user_id", help="Only this user's jobs.")
@click.option("--status", "-s", type=click.Choice(JOB_STATUSES), help="Only jobs in this status.")
@click.option("--limit", "-n", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON job per line.")
def jobs_list(user_id: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    engine = _engine(_settings())
    try:
        found = _query_jobs(engine, user_id=user_id, status=status, limit=limit)
    finally:
        engine.dispose()
    if as_json:
        for job in found:
            click.echo(job.model_dump_json())
        return
    if not found:
        click.echo("no jobs")
        return
    rows = [(j.id, j.user_id, j.kind.value, j.status.value, j.model or "-", _when(j.created_at),
             str(j.total_tokens) if j.total_tokens is not None else "-") for j in found]
    click.echo(_table(("ID", "USER", "KIND", "STATUS", "MODEL", "CREATED", "TOKENS"), rows))


def _query_jobs(engine: Engine, *, user_id: str | None, status: str | None, limit: int) -> list[Job]:
    """Jobs of every user (the store's listing is per owner, as the API needs), newest first."""
    from sqlalchemy import select

    from agentic.domain.jobs import Job
    from agentic.store.tables import JobRow

    table = JobRow.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(table.c.user_id == user_id)
    if status is not None:
        query = query.where(table.c.status == status)
    with engine.connect() as conn:
        return [Job.model_validate(dict(row._mapping)) for row in conn.execute(query)]


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="The whole job as JSON.")
def jobs_show(job_id: str, as_json: bool) -> None:
    """Show one job: status, timings, usage, error and output."""
    from agentic.store.jobs import JobStore

    engine = _engine(_settings())
    try:
        job = JobStore(engine).get(job_id)
    finally:
        engine.dispose()
    if job is None:
        _fail(f"no job with id {job_id!r}")
    if as_json:
        click.echo(job.model_dump_json(indent=2))
        return
    for line in _describe_job(job):
        click.echo(line)


def _describe_job(job: Job) -> list[str]:
    fields = [
        ("id", job.id), ("kind", job.kind.value), ("user", job.user_id), ("status", job.status.value),
        ("model", job.model or "-"), ("provider", job.provider or "-"), ("attempts", str(job.attempts)),
        ("created", _when(job.created_at)), ("started", _when(job.started_at)),
        ("finished", _when(job.finished_at)), ("updated", _when(job.updated_at)),
    ]
    if job.cancel_requested_at is not None:
        fields.append(("cancel requested", _when(job.cancel_requested_at)))
    if job.total_tokens is not None:
        fields.append(("tokens", f"{job.prompt_tokens} prompt + {job.completion_tokens} completion "
                                 f"= {job.total_tokens} total"))
    if job.error_code or job.error_message:
        fields.append(("error", f"{job.error_code or 'error'}: {job.error_message or ''}".rstrip(": ")))
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {value}" for name, value in fields]
    text = _job_text(job)
    if text:
        heading = "output" if job.status.value == "completed" else "partial output"
        lines += ["", f"{heading}:", text]
    return lines


def _job_text(job: Job) -> str:
    response = job.response or {}
    for key in ("content", "preview"):
        value = response.get(key)
        if isinstance(value, str) and value:
            return value
    return job.partial_output


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a pending or processing job (as its owner would through the API)."""
    from agentic.service import JobAlreadyFinished, JobNotFound
    from agentic.store.jobs import JobStore
    from agentic.web.container import build_container

    settings = _settings()
    engine = _engine(settings)
    try:
        job = JobStore(engine).get(job_id)
        if job is None:
            _fail(f"no job with id {job_id!r}")
        service = build_container(settings, engine=engine).service
        try:
            job = service.cancel(job_id, user_id=job.user_id)
        except JobNotFound:
            _fail(f"no job with id {job_id!r}")
        except JobAlreadyFinished as exc:
            _fail(f"job {job_id} is already {exc.job.status.value}")
    finally:
        engine.dispose()
    if job.is_terminal:
        click.echo(f"cancelled {job_id}")
    else:
        click.echo(f"cancel requested for {job_id}: it stops at its next step or streamed chunk "
                   f"(status now {job.status.value})")


# ---- cleanup ----------------------------------------------------------------------------------------------


@main.command()
def cleanup() -> None:
    """Run the daily cleanup now.

    Deletes finished jobs older than JOB_RETENTION_DAYS (in batches of CLEANUP_BATCH_SIZE), fails jobs
    stuck in processing for STUCK_JOB_MINUTES and jobs pending for PENDING_JOB_MINUTES (queue_lost), as the
    daily Inngest cron does.
    """
    from agentic.runner import cleanup_cutoffs
    from agentic.store.jobs import JobStore

    settings = _settings()
    engine = _engine(settings)
    store = JobStore(engine)
    cutoffs = cleanup_cutoffs(settings.job_retention_days, settings.stuck_job_minutes, settings.pending_job_minutes)
    delete_before = datetime.fromisoformat(cutoffs["delete_before"])
    stuck_before = datetime.fromisoformat(cutoffs["stuck_before"])
    pending_before = datetime.fromisoformat(cutoffs["pending_before"])
    deleted, batches = 0, 0
    try:
        while True:  # batches keep each transaction (and its locks) short, as the cron function does
            count = store.delete_finished_batch(delete_before, settings.cleanup_batch_size)
            deleted += count
            batches += 1 if count else 0
            if count < settings.cleanup_batch_size:
                break
        stuck = store.fail_stuck(stuck_before)
        lost = store.fail_lost_pending(pending_before)
    finally:
        engine.dispose()
    click.echo(f"deleted {deleted} finished job(s) older than {settings.job_retention_days} day(s) "
               f"(finished before {_when(delete_before)}, {batches} batch(es))")
    click.echo(f"failed {len(stuck)} stuck job(s) (processing, unchanged since {_when(stuck_before)})"
               + (": " + ", ".join(stuck) if stuck else ""))
    click.echo(f"failed {len(lost)} job(s) never started (pending since before {_when(pending_before)})"
               + (": " + ", ".join(lost) if lost else ""))


# ---- ask --------------------------------------------------------------------------------------------------


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


class _Progress:
    """How ``ask`` shows a job: a spinner redrawn in place on a terminal, plain lines otherwise.

    Text goes to stdout as it streams; the spinner and status share that stream (under a lock) so a
    terminal never shows them interleaved.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, out: IO[str], tty: bool) -> None:
        self.out, self.tty = out, tty
        self.started = time.monotonic()
        self.status: str | None = None
        self.text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner: threading.Thread | None = None
        self._drawn = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, message: str) -> None:
        """A line of information (dim on a terminal)."""
        with self._lock:
            self._clear()
            self._end_text_line()
            click.echo(click.style(message, dim=True), file=self.out, color=self.tty or None)

    def set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        if self.tty:
            if status not in TERMINAL and not self.text:
                self._start_spinner()
            return
        with self._lock:
            self._end_text_line()
            click.echo(f"status: {status}", file=self.out)

    def waiting(self, label: str) -> None:
        """Show the spinner with ``label`` on a terminal; print nothing otherwise."""
        if self.tty:
            self.status = label
            self._start_spinner()

    def add_text(self, delta: str) -> None:
        if not delta:
            return
        self.pause()
        with self._lock:
            self.text += delta
            self.out.write(delta)
            self.out.flush()

    def done_prefix(self) -> str:
        """On a terminal the final line carries the status (there were no status lines before it)."""
        return "✓ completed · " if self.tty else ""

    def reset_text(self, attempts: int) -> None:
        """A retried attempt starts its text over: say so, and forget the text shown so far."""
        if self.text:
            self.note(f"attempt {attempts or '?'} starts over; the text above is discarded")
        self.text = ""

    def pause(self) -> None:
        """Stop the spinner and clear its line (before a prompt, text, or the end)."""
        self._stop.set()
        if self._spinner is not None:
            self._spinner.join()
            self._spinner = None
        with self._lock:
            self._clear()

    def _start_spinner(self) -> None:
        if self._spinner is not None:
            return
        self._stop.clear()
        self._spinner = threading.Thread(target=self._spin, name="agentic-spinner", daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                label = f"{self.FRAMES[frame % len(self.FRAMES)]} {self.status} {self.elapsed:.1f}s"
                self.out.write("\r\x1b[K" + click.style(label, fg="cyan"))
                self.out.flush()
                self._drawn = True
            frame += 1
            self._stop.wait(0.1)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False

    def _end_text_line(self) -> None:
        if self.text and not self.text.endswith("\n"):
            self.out.write("\n")
            self.text += "\n"


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


if __name__ == "__main__":
    main()
