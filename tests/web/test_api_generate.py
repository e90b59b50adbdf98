"""POST /api/llm/generate: direct answers, queued jobs, idempotency, and every way a request is refused."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from agentic.domain.jobs import JobStatus
from agentic.domain.llm import MAX_PREVIEW_CONTENT_CHARS
from agentic.inngest.events import EVENT_GENERATE
from agentic.web.bodies import MAX_JSON_DEPTH
from tests.web.support import OPENROUTER, SLOW_MODEL, Api, EventLog, auth, chat


def test_a_quick_model_answers_directly(api: Api) -> None:
    response = api.client.post("/api/llm/generate", json=chat(max_tokens=5), headers=auth(api.key()))
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "completed"
    assert body["response"]["provider"] == "mock"
    assert body["response"]["finish_reason"] == "length"
    assert len(body["response"]["content"].split()) == 5
    assert set(body["response"]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert api.jobs_count() == 0


def test_a_quick_model_answers_directly_even_with_the_queue_on(queued_api: Api, events: EventLog) -> None:
    response = queued_api.client.post("/api/llm/generate", json=chat(), headers=auth(queued_api.key()))
    assert response.status_code == 200
    assert queued_api.jobs_count() == 0
    assert events.events == []


def test_a_slow_model_is_queued(queued_api: Api, events: EventLog) -> None:
    response = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL),
                                      headers=auth(queued_api.key("alice")))
    assert response.status_code == 202
    body = response.json
    job_id = body["job_id"]
    assert body["status"] == "pending"
    assert body["kind"] == "generate"
    assert body["links"] == {"self": f"/api/jobs/{job_id}", "events": f"/api/jobs/{job_id}/events",
                             "cancel": f"/api/jobs/{job_id}/cancel"}
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    assert "Idempotent-Replayed" not in response.headers
    sent = events.named(EVENT_GENERATE)
    assert len(sent) == 1
    assert sent[0]["data"] == {"job_id": job_id, "user_id": "alice"}
    assert sent[0]["id"] == job_id
    job = queued_api.container.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.PENDING and job.user_id == "alice"


def test_context_documents_reach_the_stored_request(queued_api: Api) -> None:
    body = chat(model=SLOW_MODEL, context=[{"title": "Notes", "content": "the sky is green"}])
    response = queued_api.client.post("/api/llm/generate", json=body, headers=auth(queued_api.key()))
    assert response.status_code == 202
    job = queued_api.container.jobs.get(response.json["job_id"])
    assert job is not None
    system = job.request["messages"][0]
    assert system["role"] == "system" and "the sky is green" in system["content"]
    assert "context" not in job.request


def test_an_idempotent_retry_returns_the_same_job(queued_api: Api, events: EventLog) -> None:
    headers = {**auth(queued_api.key()), "Idempotency-Key": "order-42"}
    first = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=headers)
    second = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json["job_id"] == second.json["job_id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert queued_api.jobs_count() == 1
    assert {e["id"] for e in events.named(EVENT_GENERATE)} == {first.json["job_id"]}  # dedupe by event id


def test_the_same_key_is_independent_per_user(queued_api: Api) -> None:
    body = chat(model=SLOW_MODEL)
    a = queued_api.client.post("/api/llm/generate", json=body,
                               headers={**auth(queued_api.key("alice")), "Idempotency-Key": "k"})
    b = queued_api.client.post("/api/llm/generate", json=body,
                               headers={**auth(queued_api.key("bob")), "Idempotency-Key": "k"})
    assert a.json["job_id"] != b.json["job_id"]


def test_an_idempotency_key_reused_for_another_request_is_409(queued_api: Api) -> None:
    headers = {**auth(queued_api.key()), "Idempotency-Key": "order-42"}
    first = queued_api.client.post("/api/llm/generate", json=chat("one", model=SLOW_MODEL), headers=headers)
    response = queued_api.client.post("/api/llm/generate", json=chat("two", model=SLOW_MODEL), headers=headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "idempotency_conflict"
    assert response.json["job_id"] == first.json["job_id"]
    assert queued_api.jobs_count() == 1


@pytest.mark.parametrize("value", ["x" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_idempotency_key_is_refused(queued_api: Api, value: str) -> None:
    headers = {**auth(queued_api.key()), "Idempotency-Key": value}
    response = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=headers)
    assert response.status_code == 400
    assert response.json["code"] == "invalid_idempotency_key"
    assert response.json["field"] == "Idempotency-Key"
    assert queued_api.jobs_count() == 0


def test_an_empty_idempotency_key_is_refused(queued_api: Api) -> None:
    environ = {"HTTP_IDEMPOTENCY_KEY": ""}
    response = queued_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL),
                                      headers=auth(queued_api.key()), environ_overrides=environ)
    assert response.status_code == 400
    assert queued_api.jobs_count() == 0


# ---- refused input: problem+json, nothing stored --------------------------------------------------------

BAD_BODIES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("missing model", {"messages": [{"role": "user", "content": "hi"}]}, 422, "validation_error", "model"),
    ("missing messages", {"model": SLOW_MODEL}, 422, "validation_error", "messages"),
    ("empty messages", {"model": SLOW_MODEL, "messages": []}, 422, "validation_error", "messages"),
    ("empty content", chat("", model=SLOW_MODEL), 422, "validation_error", "messages.0.content"),
    ("nul in content", chat("a\x00b", model=SLOW_MODEL), 422, "validation_error", "messages.0.content"),
    ("lone surrogate in content", chat("a\ud800b", model=SLOW_MODEL), 422, "validation_error",
     "messages.0.content"),
    ("lone surrogate, direct path", chat("\udfff", model="mock-quick"), 422, "validation_error",
     "messages.0.content"),
    ("lone surrogate in context", chat(model=SLOW_MODEL, context=[{"title": "t\udc80", "content": "c"}]), 422,
     "validation_error", "context.0.title"),
    ("bad role", {"model": SLOW_MODEL, "messages": [{"role": "robot", "content": "x"}]}, 422,
     "validation_error", "messages.0.role"),
    ("only system", {"model": SLOW_MODEL, "messages": [{"role": "system", "content": "x"}]}, 422,
     "validation_error", "messages"),
    ("temperature too high", chat(model=SLOW_MODEL, temperature=2.5), 422, "validation_error", "temperature"),
    ("mistyped max_tokens", chat(model=SLOW_MODEL, max_tokens="many"), 422, "validation_error", "max_tokens"),
    ("max_tokens zero", chat(model=SLOW_MODEL, max_tokens=0), 422, "validation_error", "max_tokens"),
    ("unknown field", chat(model=SLOW_MODEL, temprature=1), 422, "validation_error", "temprature"),
    ("bad context", chat(model=SLOW_MODEL, context=[{"title": "t"}]), 422, "validation_error",
     "context.0.content"),
]


@pytest.mark.parametrize(("case", "body", "status", "code", "field"), BAD_BODIES,
                         ids=[case[0] for case in BAD_BODIES])
def test_invalid_bodies_are_problems_and_store_nothing(
    queued_api: Api, events: EventLog, case: str, body: dict[str, Any], status: int, code: str,
    field: str | None,
) -> None:
    response = queued_api.client.post("/api/llm/generate", json=body, headers=auth(queued_api.key()))
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["code"] == code
    assert problem["field"] == field
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= set(problem)
    assert field in {e["field"] for e in problem["errors"]}
    assert queued_api.jobs_count() == 0
    assert events.events == []


def test_a_top_level_array_is_a_validation_error(queued_api: Api) -> None:
    response = queued_api.client.post("/api/llm/generate", json=[1, 2], headers=auth(queued_api.key()))
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"


@pytest.mark.parametrize("raw", [b"{", b"", b"{\"model\": NaN}", b"\xff\xfe\x00"])
def test_malformed_json_is_400(queued_api: Api, raw: bytes) -> None:
    response = queued_api.client.post("/api/llm/generate", data=raw, content_type="application/json",
                                      headers=auth(queued_api.key()))
    assert response.status_code == 400
    assert response.json["code"] == "invalid_json"
    assert queued_api.jobs_count() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_wrong_content_type_is_415(queued_api: Api, content_type: str | None) -> None:
    response = queued_api.client.post("/api/llm/generate", data=json.dumps(chat(model=SLOW_MODEL)),
                                      content_type=content_type, headers=auth(queued_api.key()))
    assert response.status_code == 415
    assert response.json["code"] == "unsupported_media_type"
    assert queued_api.jobs_count() == 0


def test_json_with_a_charset_is_fine(queued_api: Api) -> None:
    response = queued_api.client.post("/api/llm/generate", data=json.dumps(chat(model=SLOW_MODEL)),
                                      content_type="application/json; charset=utf-8",
                                      headers=auth(queued_api.key()))
    assert response.status_code == 202


def test_an_oversized_body_is_413_before_parsing(queued_api: Api) -> None:
    # Not even valid JSON: a parser would say 400; the size check answers first.
    raw = b"{" + b"x" * 5000
    response = queued_api.client.post("/api/llm/generate", data=raw, content_type="application/json",
                                      headers=auth(queued_api.key()))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "request_too_large"
    assert queued_api.jobs_count() == 0


def test_an_oversized_chunked_body_is_413(queued_api: Api) -> None:
    raw = json.dumps(chat("y" * 6000, model=SLOW_MODEL)).encode()
    response = queued_api.client.post(
        "/api/llm/generate", input_stream=io.BytesIO(raw), content_type="application/json",
        headers={**auth(queued_api.key()), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert response.json["code"] == "request_too_large"
    assert queued_api.jobs_count() == 0


# ---- failures on the way ------------------------------------------------------------------------------


def test_an_unreachable_event_api_is_503_and_the_job_is_failed(
    make_api: Callable[..., Api], router: respx.MockRouter,
) -> None:
    api = make_api(use_queue=True, event_send_timeout=0.3)
    router.routes.clear()
    router.post("http://127.0.0.1:8288/e/NO_EVENT_KEY_SET").mock(side_effect=httpx.ConnectError("refused"))
    headers = {**auth(api.key()), "Idempotency-Key": "retry-me"}
    response = api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=headers)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["code"] == "queue_unavailable"
    job = api.container.jobs.get(problem["job_id"])
    assert job is not None
    assert job.status is JobStatus.FAILED and job.error_code == "queue_unavailable"
    assert api.container.jobs.list_for_owner("alice", status=JobStatus.PENDING).items == []
    assert "NO_EVENT_KEY_SET" not in response.get_data(as_text=True)
    # the key was released: once the queue is back, the same retry creates a fresh job
    router.routes.clear()
    router.post("http://127.0.0.1:8288/e/NO_EVENT_KEY_SET").mock(
        return_value=httpx.Response(200, json={"ids": ["x"], "status": 200}))
    retry = api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=headers)
    assert retry.status_code == 202
    assert retry.json["job_id"] != problem["job_id"]


def test_an_unconfigured_provider_is_503_naming_the_variable(make_api: Callable[..., Api]) -> None:
    api = make_api(llm_provider="openrouter")
    response = api.client.post("/api/llm/generate", json=chat(), headers=auth(api.key()))
    assert response.status_code == 503
    assert response.json["code"] == "provider_not_configured"
    assert "OPENROUTER_API_KEY" in response.json["detail"]
    assert response.json["missing"] == "OPENROUTER_API_KEY"


def test_a_provider_refusal_keeps_the_taxonomy_code(api: Api) -> None:
    response = api.client.post("/api/llm/generate", json=chat("please [mock:fail]"), headers=auth(api.key()))
    assert response.status_code == 502
    assert response.json["code"] == "bad_request"
    assert "400" in response.json["detail"]


def _openrouter_or_skip() -> None:
    try:
        import agentic.providers.openrouter  # noqa: F401
    except ImportError:
        pytest.skip("agentic.providers.openrouter is not available yet")


OPENROUTER_KEY = "sk-or-v1-0123456789abcdefSECRET"


def test_openrouter_rate_limit_is_429_with_retry_after(
    make_api: Callable[..., Api], router: respx.MockRouter,
) -> None:
    _openrouter_or_skip()
    api = make_api(llm_provider="openrouter", openrouter_api_key=OPENROUTER_KEY)
    router.post(OPENROUTER).mock(return_value=httpx.Response(
        429, headers={"retry-after": "2.2"}, json={"error": {"code": 429, "message": "slow down"}}))
    response = api.client.post("/api/llm/generate", json=chat(model="openai/gpt-4o-mini"),
                               headers=auth(api.key()))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json["code"] == "rate_limited"
    assert OPENROUTER_KEY not in response.get_data(as_text=True)


def test_openrouter_server_error_is_502_with_its_status(
    make_api: Callable[..., Api], router: respx.MockRouter,
) -> None:
    _openrouter_or_skip()
    api = make_api(llm_provider="openrouter", openrouter_api_key=OPENROUTER_KEY)
    router.post(OPENROUTER).mock(return_value=httpx.Response(500, json={"error": {"message": "boom"}}))
    response = api.client.post("/api/llm/generate", json=chat(model="openai/gpt-4o-mini"),
                               headers=auth(api.key()))
    assert response.status_code == 502
    assert response.json["code"] == "upstream_error"
    assert "500" in response.json["detail"]
    assert response.json["upstream_status"] == 500
    assert api.jobs_count() == 0


def test_openrouter_rate_limit_without_a_hint_still_says_when_to_retry(
    make_api: Callable[..., Api], router: respx.MockRouter,
) -> None:
    _openrouter_or_skip()
    api = make_api(llm_provider="openrouter", openrouter_api_key=OPENROUTER_KEY)
    router.post(OPENROUTER).mock(return_value=httpx.Response(429, json={"error": {"message": "slow down"}}))
    response = api.client.post("/api/llm/generate", json=chat(model="openai/gpt-4o-mini"),
                               headers=auth(api.key()))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("upstream", "code"), [
    (400, "bad_request"), (401, "authentication"), (402, "insufficient_credits"), (404, "model_not_found"),
    (413, "context_too_long"), (408, "timeout"), (503, "upstream_error"), (529, "overloaded"),
])
def test_other_upstream_failures_are_502_keeping_their_code(
    make_api: Callable[..., Api], router: respx.MockRouter, upstream: int, code: str,
) -> None:
    api = make_api(llm_provider="openrouter", openrouter_api_key=OPENROUTER_KEY)
    router.post(OPENROUTER).mock(return_value=httpx.Response(upstream, json={"error": {"message": "no"}}))
    response = api.client.post("/api/llm/generate", json=chat(model="openai/gpt-4o-mini"),
                               headers=auth(api.key()))
    assert response.status_code == 502
    assert response.json["code"] == code
    assert response.json["upstream_status"] == upstream
    assert response.headers["Content-Type"] == "application/problem+json"
    assert api.jobs_count() == 0


@pytest.mark.parametrize("path", ["/api/llm/generate", "/api/previews"])
@pytest.mark.parametrize("depth", [1_000, 2_000])
def test_a_small_body_nested_deeply_is_400_invalid_json(queued_api: Api, path: str, depth: int) -> None:
    """A 2 KB body of brackets exhausts the JSON parser's stack (RecursionError): refused, not a 500."""
    raw = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"

    response = queued_api.client.post(path, data=raw, content_type="application/json",
                                      headers=auth(queued_api.key()))

    assert response.status_code == 400
    assert response.json["code"] == "invalid_json"
    assert queued_api.jobs_count() == 0


def test_nesting_is_refused_past_the_stated_depth_on_every_python(queued_api: Api) -> None:
    """MAX_JSON_DEPTH levels parse and reach validation (422: not messages); one more is 400 invalid_json."""
    def body(levels: int) -> bytes:  # the outer object is level 1
        return b'{"messages": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    at_limit = queued_api.client.post("/api/llm/generate", data=body(MAX_JSON_DEPTH),
                                      content_type="application/json", headers=auth(queued_api.key()))
    past = queued_api.client.post("/api/llm/generate", data=body(MAX_JSON_DEPTH + 1),
                                  content_type="application/json", headers=auth(queued_api.key()))

    assert at_limit.status_code == 422 and at_limit.json["field"].startswith("messages")
    assert past.status_code == 400 and past.json["code"] == "invalid_json"
    assert str(MAX_JSON_DEPTH) in past.json["detail"]
    assert queued_api.jobs_count() == 0


@pytest.mark.parametrize("content", ["a\ud800b", "x" * 300 + "\ud800"])  # a short preview and an AI one
def test_a_preview_with_a_lone_surrogate_is_422(queued_api: Api, content: str) -> None:
    response = queued_api.client.post("/api/previews", json={"title": "t", "content": content},
                                      headers=auth(queued_api.key()))
    assert response.status_code == 422 and response.json["field"] == "content"
    assert queued_api.jobs_count() == 0


def test_a_preview_near_the_content_limit_is_refused_up_front_and_one_at_the_limit_fits(
        make_api: Callable[..., Api]) -> None:
    """The prompt wraps the content in instructions and the title: content of 999,800 characters (under the
    body limit) used to become a message over MAX_MESSAGE_CHARS, a 500 on the direct path."""
    api = make_api(max_request_bytes=2_000_000)
    secret = api.key()

    near = api.client.post("/api/previews", json={"title": "t", "content": "word " * 199_960},
                           headers=auth(secret))
    fits = api.client.post("/api/previews", json={"title": "T" * 500, "content": "w" * MAX_PREVIEW_CONTENT_CHARS},
                           headers=auth(secret))

    assert near.status_code == 422 and near.json["field"] == "content"
    assert fits.status_code == 200, fits.json
    assert fits.json["used_ai"] is True
