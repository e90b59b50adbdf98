"""llm-cleanup: daily, delete finished jobs past retention, fail jobs stuck in processing and jobs left pending.

Each batch is its own step, so a large backlog neither times out one request nor holds long locks.
"""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions.deps import FunctionDeps
from agentic.runner import Cutoffs, cleanup_cutoffs

FUNCTION_ID = "llm-cleanup"
CRON = "TZ=UTC 0 2 * * *"
#: The event name Inngest gives a cron-triggered run.
CRON_EVENT = "inngest/scheduled.timer"
#: Inngest allows 1000 steps a run; stay well under it (the next day's run continues).
MAX_BATCHES = 500


class CleanupResult(Cutoffs):
    deleted: int
    batches: int
    failed_stuck: int
    failed_lost: int


def make_cleanup(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    settings, runner = deps.settings, deps.runner
    batch_size = settings.cleanup_batch_size

    @client.create_function(fn_id=FUNCTION_ID, name="Clean up old LLM jobs",
                            trigger=inngest.TriggerCron(cron=CRON), retries=3)
    def cleanup(ctx: inngest.ContextSync) -> CleanupResult:
        if ctx.event.name != CRON_EVENT:  # a signed body of another function, replayed here
            raise inngest.NonRetriableError(f"this function runs on its cron ({CRON_EVENT}), not {ctx.event.name}")
        # now() is read inside a step, so every replay of this run uses the same cutoffs.
        cutoffs: Cutoffs = ctx.step.run(
            "compute-cutoffs", cleanup_cutoffs, settings.job_retention_days, settings.stuck_job_minutes,
            settings.pending_job_minutes)
        deleted, batches = 0, 0
        while batches < MAX_BATCHES:
            count: int = ctx.step.run("delete-batch", runner.delete_finished_batch,
                                      cutoffs["delete_before"], batch_size)
            deleted += count
            batches += 1
            if count < batch_size:
                break
        stuck: int = ctx.step.run("fail-stuck", runner.fail_stuck, cutoffs["stuck_before"])
        lost: int = ctx.step.run("fail-lost-pending", runner.fail_lost_pending, cutoffs["pending_before"])
        return {"deleted": deleted, "batches": batches, "failed_stuck": stuck, "failed_lost": lost,
                "delete_before": cutoffs["delete_before"], "stuck_before": cutoffs["stuck_before"],
                "pending_before": cutoffs["pending_before"]}

    return cleanup
