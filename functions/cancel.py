"""llm-cancel: record a cancellation and cancel a pending or processing job (never a finished one)."""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions._steps import job_id_of
from agentic.functions.deps import FunctionDeps
from agentic.queue import EVENT_CANCEL

FUNCTION_ID = "llm-cancel"


def make_cancel(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    runner = deps.runner

    @client.create_function(fn_id=FUNCTION_ID, name="Cancel LLM job",
                            trigger=inngest.TriggerEvent(event=EVENT_CANCEL), retries=3)
    def cancel(ctx: inngest.ContextSync) -> dict[str, Any]:
        job_id = job_id_of(ctx.event, EVENT_CANCEL)
        result: dict[str, Any] = ctx.step.run("mark-cancelled", runner.cancel, job_id)
        return {"job_id": job_id, **result}

    return cancel
