"""llm-cancel: record a cancellation and cancel a pending or processing job (never a finished one)."""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions.deps import FunctionDeps
from agentic.functions.jobs import job_id_of
from agentic.inngest.events import EVENT_CANCEL
from agentic.runner import Cancelled

FUNCTION_ID = "llm-cancel"


class CancelResult(Cancelled):
    job_id: str


def make_cancel(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    runner = deps.runner

    @client.create_function(fn_id=FUNCTION_ID, name="Cancel LLM job",
                            trigger=inngest.TriggerEvent(event=EVENT_CANCEL), retries=3)
    def cancel(ctx: inngest.ContextSync) -> CancelResult:
        job_id = job_id_of(ctx.event, EVENT_CANCEL)
        result: Cancelled = ctx.step.run("mark-cancelled", runner.cancel, job_id)
        return {"job_id": job_id, "cancelled": result["cancelled"], "status": result["status"]}

    return cancel
