"""preview-generate: a tile preview, summarised by PREVIEW_MODEL when the content is long."""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions._steps import make_job_function
from agentic.functions.deps import FunctionDeps
from agentic.queue import EVENT_PREVIEW

FUNCTION_ID = "preview-generate"
RETRIES = 2


def make_preview(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    settings, runner = deps.settings, deps.runner
    return make_job_function(
        client, runner, fn_id=FUNCTION_ID, name="Generate tile preview", event=EVENT_PREVIEW, retries=RETRIES,
        throttle_limit=settings.preview_throttle_limit,
        throttle_period_seconds=settings.preview_throttle_period_seconds,
        concurrency_per_user=settings.concurrency_per_user,
        call_step="generate-preview", call=runner.call_preview)
