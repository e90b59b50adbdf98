"""agentic jobs: list, show and cancel jobs, straight from the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agentic.cli.base import JOB_STATUSES, _engine, _fail, _settings, _table, _when, main

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from agentic.domain.jobs import Job


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
    from agentic.bootstrap import build_container
    from agentic.domain.jobs import JobAlreadyFinished, JobNotFound
    from agentic.store.jobs import JobStore

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
