"""The generate function with the real Claude repository, end to end on both databases: Inngest calls our
signed endpoint (the fake executor), the SDK 2.x talks to the loopback Anthropic stand-in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentic.domain.jobs import JobStatus
from agentic.store.jobs import JobStore
from tests.functions.conftest import MODEL, AppHarness, create_generate_job
from tests.functions.executor import RunStatus
from tests.providers.anthropic_server import (
    AnthropicStandIn,
    api_error,
    error_event,
    message,
    message_start,
    stream,
    text_delta,
)

ANT_KEY = "sk-ant-api03-functionsSECRETkey"
MakeApp = Callable[..., AppHarness]


@pytest.fixture
def claude_settings(anthropic_server: AnthropicStandIn) -> dict[str, Any]:
    return {"llm_provider": "anthropic", "anthropic_api_key": ANT_KEY, "anthropic_base_url": anthropic_server.base_url,
            "provider_read_timeout": 5.0}


def test_overloaded_then_completed(make_app: MakeApp, store: JobStore, anthropic_server: AnthropicStandIn,
                                   claude_settings: dict[str, Any]) -> None:
    anthropic_server.reply(api_error(529, "overloaded_error", "Overloaded", {"retry-after": "30"}),
                           message("Hello", " there.", input_tokens=11, cache_read=0, output_tokens=4))
    harness = make_app(**claude_settings)
    job = create_generate_job(store, "Say hello", provider="anthropic")

    run = harness.generate(job).finish()

    overloaded = run.calls[0]  # the first request: the job started, the provider was overloaded
    assert overloaded.status == 500 and overloaded.body["name"] == "RetryAfterError"
    retry_at = datetime.fromisoformat(overloaded.headers["retry-after"].replace("Z", "+00:00"))
    assert timedelta(seconds=25) <= retry_at - datetime.now(UTC) <= timedelta(seconds=31)
    assert run.status is RunStatus.COMPLETED
    done = harness.job(job)
    assert (done.status, done.partial_output, done.attempts) == (JobStatus.COMPLETED, "Hello there.", 2)
    assert (done.prompt_tokens, done.completion_tokens, done.total_tokens) == (11, 4, 15)
    assert done.response is not None and done.response["finish_reason"] == "stop"
    assert len(anthropic_server.requests) == 2  # one per attempt: the SDK never retries on its own
    assert anthropic_server.last.json == {"model": MODEL, "stream": True, "max_tokens": 4096,
                                          "messages": [{"role": "user", "content": "Say hello"}]}
    assert ANT_KEY not in str(harness.job(job).model_dump())


def test_error_event_in_the_stream_fails_the_job(make_app: MakeApp, store: JobStore,
                                                 anthropic_server: AnthropicStandIn,
                                                 claude_settings: dict[str, Any]) -> None:
    anthropic_server.reply(stream(message_start(), text_delta("partial"),
                                  error_event("invalid_request_error", "messages: roles must alternate")))
    harness = make_app(**claude_settings)
    job = create_generate_job(store, provider="anthropic")

    run = harness.generate(job).finish()

    assert [(call.status, call.op_names) for call in run.calls] == [(500, [])]
    assert run.calls[-1].headers.get("x-inngest-no-retry") == "true"
    failed = harness.job(job)
    assert (failed.status, failed.error_code, failed.error_message) == (
        JobStatus.FAILED, "bad_request", "messages: roles must alternate")
