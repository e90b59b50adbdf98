"""preview-generate: a tile preview, summarised by PREVIEW_MODEL when the content is long."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import inngest

from agentic.queue import EVENT_CANCEL, EVENT_PREVIEW
from functions._steps import on_failure, run_job
from functions.deps import FunctionDeps

FUNCTION_ID = "preview-generate"
RETRIES = 2


def make_preview(client: inngest.Inngest, deps: FunctionDeps) -> inngest.Function[Any]:
    settings, runner = deps.settings, deps.runner

    @client.create_function(
        fn_id=FUNCTION_ID,
        name="Generate tile preview",
        trigger=inngest.TriggerEvent(event=EVENT_PREVIEW),
        retries=RETRIES,
        throttle=inngest.Throttle(limit=settings.preview_throttle_limit,
                                  period=timedelta(seconds=settings.preview_throttle_period_seconds),
                                  key="event.data.user_id"),
        cancel=[inngest.Cancel(event=EVENT_CANCEL, if_exp="async.data.job_id == event.data.job_id")],
        idempotency="event.data.job_id",
        on_failure=on_failure(runner),
    )
    def preview(ctx: inngest.ContextSync) -> dict[str, Any]:
        return run_job(ctx, runner, "generate-preview", runner.call_preview)

    return preview
