"""agentic cleanup: the daily cleanup, by hand."""

from __future__ import annotations

from datetime import datetime

import click

from agentic.cli.base import _engine, _settings, _when, main


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
        stuck = [job.id for job in store.fail_stuck(stuck_before)]
        lost = [job.id for job in store.fail_lost_pending(pending_before)]
    finally:
        engine.dispose()
    click.echo(f"deleted {deleted} finished job(s) older than {settings.job_retention_days} day(s) "
               f"(finished before {_when(delete_before)}, {batches} batch(es))")
    click.echo(f"failed {len(stuck)} stuck job(s) (processing, unchanged since {_when(stuck_before)})"
               + (": " + ", ".join(stuck) if stuck else ""))
    click.echo(f"failed {len(lost)} job(s) never started (pending since before {_when(pending_before)})"
               + (": " + ", ".join(lost) if lost else ""))
