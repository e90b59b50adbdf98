"""The fake executor performs ``AIGateway`` ops (``ctx.step.ai.infer``) as the Inngest server does.

A tiny function served by a minimal Flask app calls ``step.ai.infer``; the provider is a respx route. What
is checked is what the real server does: the request it sends (body, content type, the format's auth
header, the adapter's headers), ``{"data": …}`` on success, retries on any failure, and after the last
attempt the ``AIGatewayError`` the SDK raises at the call site.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import inngest
import inngest.flask
import pytest
import respx
from flask import Flask
from inngest.experimental import ai

from agentic.domain.errors import ErrorCode
from agentic.providers.offload import gateway_error
from tests.functions.executor import APP_ID, FakeExecutor, Op, RunStatus, make_event

SIGNING_KEY = "signkey-test-00112233445566778899aabb"
PROVIDER_KEY = "sk-or-v1-gateway-test-key"
BASE = "https://provider.test/v1"
EVENT = "test/infer"
COMPLETION = {"id": "gen-1", "model": "m-1", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def build_app(fmt: str) -> Flask:
    client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY)

    @client.create_function(fn_id="infer", trigger=inngest.TriggerEvent(event=EVENT), retries=2)
    def infer(ctx: inngest.ContextSync) -> dict[str, Any]:
        adapter: ai.BaseAdapter
        if fmt == "anthropic":
            adapter = ai.anthropic.Adapter(auth_key=PROVIDER_KEY, base_url=BASE, model="claude-x")
        else:
            adapter = ai.openai.Adapter(auth_key=PROVIDER_KEY, base_url=BASE, headers={"X-Title": "tests"},
                                        model="m-1")
        try:
            data = ctx.step.ai.infer("ask", adapter=adapter,
                                     body={"messages": [{"role": "user", "content": "hello"}]})
        except inngest.StepError as error:
            classified = gateway_error(error, provider="openrouter", secrets=(PROVIDER_KEY,))
            return {"error": {"name": error.name, "message": error.message, "stack": error.stack},
                    "code": classified.code.value, "classified": classified.message}
        return {"data": data}

    app = Flask("gateway-test")
    inngest.flask.serve(app, client, [infer])
    return app


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def drive(fmt: str = "openai-chat") -> Any:
    app = build_app(fmt)
    executor = FakeExecutor(app.test_client(), SIGNING_KEY)
    return executor.drive("infer", make_event(EVENT, {}), retries=2)


def test_success_memoises_the_provider_json_and_infer_returns_it(router: respx.MockRouter) -> None:
    route = router.post(f"{BASE}/chat/completions").respond(200, json=COMPLETION)
    run = drive()

    assert run.status is RunStatus.COMPLETED and run.output == {"data": COMPLETION}
    assert [op for call in run.calls for op, _ in call.op_names] == [Op.AI_GATEWAY]
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert sent.headers["x-title"] == "tests"
    assert json.loads(sent.content) == {"messages": [{"role": "user", "content": "hello"}], "model": "m-1"}
    assert [c.status for c in run.gateway_calls] == [200]


def test_anthropic_format_sends_the_key_as_x_api_key_with_the_version_header(router: respx.MockRouter) -> None:
    message = {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "hi"}]}
    route = router.post(f"{BASE}/messages").respond(200, json=message)
    run = drive("anthropic")

    assert run.output == {"data": message}
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == PROVIDER_KEY and "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"


def test_401_is_retried_then_raised_as_the_servers_ai_gateway_error(router: respx.MockRouter) -> None:
    body = {"error": {"code": 401, "message": "No auth credentials found"}}
    route = router.post(f"{BASE}/chat/completions").respond(401, json=body)
    run = drive()

    assert route.call_count == 3  # retries=2: every attempt calls the provider again, a 401 too
    assert [c.attempt for c in run.gateway_calls] == [0, 1, 2]
    assert run.status is RunStatus.COMPLETED  # the function caught the StepError
    error = run.output["error"]
    assert error["name"] == "AIGatewayError"
    assert "unsuccessful status code: 401" in error["message"]
    assert json.loads(error["stack"]) == body
    assert run.output["code"] == ErrorCode.AUTHENTICATION.value
    assert "No auth credentials found" in run.output["classified"]


def test_429_then_success_completes_on_the_retry(router: respx.MockRouter) -> None:
    route = router.post(f"{BASE}/chat/completions")
    route.side_effect = [httpx.Response(429, json={"error": {"code": 429, "message": "slow down"}}),
                         httpx.Response(200, json=COMPLETION)]
    run = drive()

    assert run.output == {"data": COMPLETION}
    assert [(c.attempt, c.status) for c in run.gateway_calls] == [(0, 429), (1, 200)]


def test_429_on_every_attempt_is_classified_rate_limited(router: respx.MockRouter) -> None:
    router.post(f"{BASE}/chat/completions").respond(429, json={"error": {"code": 429, "message": "slow down"}})
    run = drive()
    assert run.output["code"] == ErrorCode.RATE_LIMITED.value


def test_network_error_ends_as_a_gateway_error_without_status(router: respx.MockRouter) -> None:
    router.post(f"{BASE}/chat/completions").mock(side_effect=httpx.ConnectError("connection refused"))
    run = drive()

    assert [c.status for c in run.gateway_calls] == [None, None, None]
    error = run.output["error"]
    assert error["name"] == "AIGatewayError" and "status code" not in error["message"]
    assert json.loads(error["stack"]) == {"error": "Error making AI request"}
    assert run.output["code"] == ErrorCode.NETWORK_ERROR.value


def test_an_uncaught_gateway_error_fails_the_run_without_retrying_the_function(router: respx.MockRouter) -> None:
    router.post(f"{BASE}/chat/completions").respond(500, text="boom")
    client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY)

    @client.create_function(fn_id="bare", trigger=inngest.TriggerEvent(event=EVENT), retries=1)
    def bare(ctx: inngest.ContextSync) -> object:
        adapter = ai.openai.Adapter(auth_key=PROVIDER_KEY, base_url=BASE, model="m-1")
        return ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})

    app = Flask("gateway-bare")
    inngest.flask.serve(app, client, [bare])
    run = FakeExecutor(app.test_client(), SIGNING_KEY).drive("bare", make_event(EVENT, {}), retries=1)

    assert run.status is RunStatus.FAILED and len(run.gateway_calls) == 2
    assert run.error is not None and run.error["name"] == "AIGatewayError"
    assert run.error["code"] == "step_errored" and run.error["stack"] == "boom"
    assert "unsuccessful status code: 500" in run.error["message"]
    assert [call.status for call in run.calls].count(500) == 1  # x-inngest-no-retry: not run again
