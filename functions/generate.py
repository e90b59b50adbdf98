"""llm-generate: run a queued chat generation to a terminal state."""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions._steps import make_job_function
from agentic.functions.deps import FunctionDeps
from agentic.queue import EVENT_GENERATE

FUNCTION_ID = "llm-generate"
RETRIES = 3


def make_generate(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    settings, runner = deps.settings, deps.runner
    return make_job_function(
        client, runner, fn_id=FUNCTION_ID, name="Generate LLM response", event=EVENT_GENERATE, retries=RETRIES,
        throttle_limit=settings.generate_throttle_limit,
        throttle_period_seconds=settings.generate_throttle_period_seconds,
        concurrency_per_user=settings.concurrency_per_user,
        call_step="call-llm", call=runner.call_llm)
