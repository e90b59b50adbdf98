"""llm-generate: run a queued chat generation to a terminal state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import inngest

from agentic.queue import EVENT_CANCEL, EVENT_GENERATE
from functions._steps import on_failure, run_job
from functions.deps import FunctionDeps

FUNCTION_ID = "llm-generate"
RETRIES = 3


def make_generate(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    settings, runner = deps.settings, deps.runner

    @client.create_function(
        fn_id=FUNCTION_ID,
        name="Generate LLM response",
        trigger=inngest.TriggerEvent(event=EVENT_GENERATE),
        retries=RETRIES,
        throttle=inngest.Throttle(limit=settings.generate_throttle_limit,
                                  period=timedelta(seconds=settings.generate_throttle_period_seconds),
                                  key="event.data.user_id"),
        cancel=[inngest.Cancel(event=EVENT_CANCEL, if_exp="async.data.job_id == event.data.job_id")],
        idempotency="event.data.job_id",
        on_failure=on_failure(runner),
    )
    def generate(ctx: inngest.ContextSync) -> dict[str, Any]:
        return run_job(ctx, runner, "call-llm", runner.call_llm)

    return generate
