"""The mock provider's OpenAI-compatible completion route: only in mock mode, only with the derived token,
answers like an OpenAI-compatible provider; and a whole offloaded call through it, driven by the fake
executor performing the ``AIGateway`` op against the app in-process."""

from __future__ import annotations

from typing import Any

import httpx
import inngest
import inngest.flask
from flask import Flask

from agentic.config import Settings, load_settings
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.mock import MockLLMRepository
from agentic.providers.offload import mock_gateway_key, offload_call
from agentic.web.app import create_app
from tests.functions.executor import APP_ID, FakeExecutor, RunStatus, make_event

URL = "/mock/v1/chat/completions"
SIGNING_KEY = "signkey-test-0123456789abcdef"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": "sqlite://", "llm_provider": "mock", "inngest_dev": "1",
                              "inngest_signing_key": SIGNING_KEY, "openrouter_api_key": None}
    return load_settings(**(values | overrides))


def body(prompt: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"model": "mock-offload-1", "messages": [{"role": "user", "content": prompt}], **fields}


def auth(s: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mock_gateway_key(s)}"}


def test_the_route_exists_only_in_mock_mode() -> None:
    real = settings(llm_provider="openrouter", openrouter_api_key="sk-or-v1-x")
    assert create_app(real).test_client().post(URL, json=body(), headers=auth(real)).status_code == 404


def test_it_wants_the_derived_token() -> None:
    s = settings()
    client = create_app(s).test_client()
    for headers in ({}, {"Authorization": "Bearer mock"}, {"Authorization": f"Bearer {SIGNING_KEY}"}):
        answer = client.post(URL, json=body(), headers=headers)
        assert answer.status_code == 401 and answer.get_json()["error"]["code"] == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="agentic-mock"'



def test_it_answers_an_openai_chat_completion_from_the_mock() -> None:
    s = settings()
    answer = create_app(s).test_client().post(URL, json=body(max_tokens=7, stream=False, n=1), headers=auth(s))
    assert answer.status_code == 200
    data = answer.get_json()
    expected = MockLLMRepository().generate(LLMRequest(
        messages=[Message(role="user", content="Hello")], model="mock-offload-1", max_tokens=7))
    assert data["object"] == "chat.completion" and data["model"] == "mock-offload-1"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": expected.content}
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"] == expected.usage.model_dump()


def test_bad_requests_get_openai_shaped_errors() -> None:
    s = settings()
    client = create_app(s).test_client()
    cases = [
        (client.post(URL, data="nope", headers=auth(s), content_type="application/json"), 400, "JSON object"),
        (client.post(URL, json=body(stream=True), headers=auth(s)), 400, "stream"),
        (client.post(URL, json=body(max_tokens=0), headers=auth(s)), 400, "max_tokens"),
        (client.post(URL, json=body("please [mock:fail]"), headers=auth(s)), 400, "asked to fail"),
    ]
    for answer, status, text in cases:
        assert answer.status_code == status
        assert text in answer.get_json()["error"]["message"]


def test_an_offloaded_mock_call_runs_through_the_gateway_to_the_apps_route() -> None:
    """What llm-generate will do for an offloaded model, in miniature: infer, then parse in a step."""
    s = settings(inngest_dev="0")
    agentic_app = create_app(s)
    request = LLMRequest(messages=[Message(role="user", content="Think hard")], model="mock-offload-1")
    client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY)

    @client.create_function(fn_id="offloaded", trigger=inngest.TriggerEvent(event="test/offload"), retries=1)
    def offloaded(ctx: inngest.ContextSync) -> dict[str, Any]:
        call = offload_call(request, s, app_origin="http://agentic.local")
        try:
            data = ctx.step.ai.infer("call-llm", adapter=call.adapter, body=call.body)
        except inngest.StepError as error:
            raise call.error(error) from None
        return ctx.step.run("store-result", lambda: call.parse(data, request).model_dump())

    host = Flask("host")
    inngest.flask.serve(host, client, [offloaded])
    executor = FakeExecutor(host.test_client(), SIGNING_KEY,
                            gateway_transport=httpx.WSGITransport(app=agentic_app))
    run = executor.drive("offloaded", make_event("test/offload", {}), retries=1)

    assert run.status is RunStatus.COMPLETED
    expected = MockLLMRepository().generate(request)
    assert run.output["content"] == expected.content and run.output["provider"] == "mock"
    assert run.output["usage"] == expected.usage.model_dump() and run.output["finish_reason"] == "stop"
    assert [c.url for c in run.gateway_calls] == ["http://agentic.local/mock/v1/chat/completions"]
