"""Job read tokens: issued with a queued job, they read that job and its events, and nothing else.

Expired, tampered, foreign and wrong-route tokens fail like any other credential (401, or 404 for another
job, exactly as another user's job is not found); CORS answers only on the two routes a token opens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from agentic.domain.jobs import JobStatus
from agentic.service.kinds import GENERATE
from agentic.web.state import STATE_KEY, ApiState
from agentic.web.tokens import JobTokens, redact_tokens
from tests.web.support import SLOW_MODEL, Api, auth, chat

SECRET = "s" * 40
ORIGIN = "http://page.example:9000"


@pytest.fixture
def token_api(make_api: Callable[..., Api]) -> Api:
    return make_api(use_queue=True, job_token_secret=SECRET, job_token_ttl_seconds=60,
                    cors_allowed_origins=ORIGIN)


def queue_job(api: Api, key: str, content: str = "a slow one") -> dict[str, Any]:
    response = api.client.post("/api/llm/generate", json=chat(content, model=SLOW_MODEL), headers=auth(key))
    assert response.status_code == 202, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def run_to_completion(api: Api, job_id: str) -> None:
    runner = api.container.runner
    assert runner.begin(job_id)["started"]
    assert runner.call(GENERATE, job_id, 0)["outcome"] == "generated"
    runner.finish(job_id)


def tokens_of(api: Api) -> JobTokens:
    state: ApiState = api.app.extensions[STATE_KEY]
    assert state.tokens is not None
    return state.tokens


def test_without_a_secret_no_token_is_issued_and_none_is_accepted(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True)
    key = api.key()
    queued = queue_job(api, key)
    assert queued["token"] is None
    assert api.client.get(f"/api/jobs/{queued['job_id']}", headers=auth(key)).get_json()["token"] is None
    forged = JobTokens(SECRET, ttl_seconds=60).issue(queued["job_id"], "alice")
    answer = api.client.get(f"/api/jobs/{queued['job_id']}?token={forged}")
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "invalid_token"


def test_the_202_token_reads_the_job_by_query_and_by_bearer(token_api: Api) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key)
    token, job_id = queued["token"], queued["job_id"]
    assert token.startswith("agt_")
    by_query = token_api.client.get(f"/api/jobs/{job_id}?token={token}")
    assert by_query.status_code == 200
    view = by_query.get_json()
    assert view["id"] == job_id and view["status"] == "pending"
    assert view["token"] is None  # a token's holder is never handed a fresh one
    by_bearer = token_api.client.get(f"/api/jobs/{job_id}", headers=auth(token))
    assert by_bearer.status_code == 200 and by_bearer.get_json()["id"] == job_id


def test_the_owners_view_carries_a_working_token(token_api: Api) -> None:
    key = token_api.key()
    job_id = queue_job(token_api, key)["job_id"]
    owner_view = token_api.client.get(f"/api/jobs/{job_id}", headers=auth(key)).get_json()
    assert owner_view["token"].startswith("agt_")
    assert token_api.client.get(f"/api/jobs/{job_id}?token={owner_view['token']}").status_code == 200
    listed = token_api.client.get("/api/jobs", headers=auth(key)).get_json()
    assert [item["token"] for item in listed["items"]] == [None]  # lists hand out no tokens


def test_the_token_streams_the_jobs_events_to_done(token_api: Api) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key, "stream me")
    run_to_completion(token_api, queued["job_id"])
    stream = token_api.client.get(f"/api/jobs/{queued['job_id']}/events?token={queued['token']}")
    assert stream.status_code == 200
    assert stream.mimetype == "text/event-stream"
    body = stream.get_data(as_text=True)
    done = [block for block in body.split("\n\n") if "event: done" in block]
    assert len(done) == 1
    view = json.loads(done[0].split("data: ", 1)[1])
    assert view["status"] == "completed" and view["token"] is None


def test_an_expired_token_is_refused_like_a_bad_key(token_api: Api) -> None:
    key = token_api.key()
    job_id = queue_job(token_api, key)["job_id"]
    old = JobTokens(SECRET, ttl_seconds=60, clock=lambda: time.time() - 3600).issue(job_id, "alice")
    for path in (f"/api/jobs/{job_id}?token={old}", f"/api/jobs/{job_id}/events?token={old}"):
        answer = token_api.client.get(path)
        assert answer.status_code == 401
        assert answer.get_json()["code"] == "invalid_token"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


@pytest.mark.parametrize("tamper", ["signature", "payload", "other_secret", "truncated", "garbage"])
def test_a_tampered_token_is_refused(token_api: Api, tamper: str) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key)
    job_id, token = queued["job_id"], queued["token"]
    payload, signature = token.split(".")
    bad = {
        "signature": f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        # a payload for bob's user id, keeping alice's signature
        "payload": JobTokens("x" * 40, ttl_seconds=60).issue(job_id, "bob").split(".")[0] + "." + signature,
        "other_secret": JobTokens("y" * 40, ttl_seconds=60).issue(job_id, "alice"),
        "truncated": token[:-5],
        "garbage": "agt_not-a-token",
    }[tamper]
    answer = token_api.client.get(f"/api/jobs/{job_id}", headers=auth(bad))
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "invalid_token"


def test_a_token_for_another_job_finds_nothing(token_api: Api) -> None:
    key = token_api.key()
    first = queue_job(token_api, key, "first")
    second = queue_job(token_api, key, "second")
    for path in (f"/api/jobs/{second['job_id']}", f"/api/jobs/{second['job_id']}/events"):
        answer = token_api.client.get(f"{path}?token={first['token']}")
        assert answer.status_code == 404
        assert answer.get_json()["code"] == "job_not_found"


def test_a_token_naming_a_job_of_another_user_finds_nothing(token_api: Api) -> None:
    alice = token_api.key("alice")
    job_id = queue_job(token_api, alice)["job_id"]
    bobs = tokens_of(token_api).issue(job_id, "bob")  # well signed, but the job is not bob's
    assert token_api.client.get(f"/api/jobs/{job_id}?token={bobs}").status_code == 404


def test_a_token_opens_no_other_route(token_api: Api) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key)
    job_id, token = queued["job_id"], queued["token"]
    jobs_before = token_api.jobs_count()
    attempts = [
        ("POST", f"/api/jobs/{job_id}/cancel", None),
        ("GET", "/api/jobs", None),
        ("POST", "/api/llm/generate", chat("sneaky", model=SLOW_MODEL)),
        ("POST", "/api/previews", {"title": "t", "content": "c"}),
    ]
    for method, path, body in attempts:
        by_bearer = token_api.client.open(path, method=method, json=body, headers=auth(token))
        by_query = token_api.client.open(f"{path}?token={token}", method=method, json=body)
        assert (by_bearer.status_code, by_query.status_code) == (401, 401), (method, path)
    job = token_api.container.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.PENDING and job.cancel_requested_at is None
    assert token_api.jobs_count() == jobs_before


def test_cors_answers_an_allowed_origin_on_the_two_read_routes_only(token_api: Api) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key)
    job_id, token = queued["job_id"], queued["token"]
    run_to_completion(token_api, job_id)
    origin = {"Origin": ORIGIN}
    for path in (f"/api/jobs/{job_id}?token={token}", f"/api/jobs/{job_id}/events?token={token}",
                 f"/api/jobs/{job_id}?token=agt_bad.sig"):
        answer = token_api.client.get(path, headers=origin)
        assert answer.headers.get("Access-Control-Allow-Origin") == ORIGIN, path
        assert "Origin" in answer.headers.get("Vary", "")
    preflight = token_api.client.options(f"/api/jobs/{job_id}/events",
                                         headers={**origin, "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "last-event-id"})
    assert preflight.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET"
    for method, path in (("POST", f"/api/jobs/{job_id}/cancel"), ("GET", "/api/jobs"),
                         ("POST", "/api/llm/generate"), ("GET", "/api/health")):
        answer = token_api.client.open(path, method=method, headers={**origin, **auth(key)})
        assert "Access-Control-Allow-Origin" not in answer.headers, path
        preflight = token_api.client.options(path, headers={**origin, "Access-Control-Request-Method": method})
        assert "Access-Control-Allow-Origin" not in preflight.headers, path
    stranger = token_api.client.get(f"/api/jobs/{job_id}?token={token}", headers={"Origin": "http://evil.test"})
    assert stranger.status_code == 200 and "Access-Control-Allow-Origin" not in stranger.headers


def test_no_cors_by_default(make_api: Callable[..., Api]) -> None:
    api = make_api(use_queue=True, job_token_secret=SECRET)
    key = api.key()
    queued = queue_job(api, key)
    answer = api.client.get(f"/api/jobs/{queued['job_id']}?token={queued['token']}", headers={"Origin": ORIGIN})
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_token_stream_ends_when_the_token_expires(token_api: Api) -> None:
    key = token_api.key()
    queued = queue_job(token_api, key)
    now = [time.time()]
    state: ApiState = token_api.app.extensions[STATE_KEY]
    state.tokens = JobTokens(SECRET, ttl_seconds=60, clock=lambda: now[0])
    token = state.tokens.issue(queued["job_id"], "alice")
    response = token_api.client.get(f"/api/jobs/{queued['job_id']}/events?token={token}", buffered=False)
    chunks = iter(response.response)
    first = b""
    while b"event: status" not in first:
        first += next(chunks)  # type: ignore[operator]
    now[0] += 120  # the token expires while the job is still pending
    rest = b"".join(chunks)  # type: ignore[arg-type]
    assert b"event: done" not in rest  # the stream ended: checked at the next heartbeat, not at the job's end
    assert b"revoked" in rest or b"expired" in rest


def test_redaction_masks_tokens_in_request_lines() -> None:
    token = JobTokens(SECRET, ttl_seconds=60).issue("job_1", "alice")
    line = f'"GET /api/jobs/job_1/events?token={token}&last_event_id=x HTTP/1.1" 200 -'
    masked = redact_tokens(line)
    assert token not in masked and "token=[redacted]&last_event_id=x" in masked
    assert token not in redact_tokens(f"Referer: http://page/?t=1 Authorization: Bearer {token}")


def test_openapi_documents_the_token() -> None:
    from agentic.web.openapi import build_openapi

    document = build_openapi()
    schemas = document["components"]["schemas"]
    assert "token" in schemas["QueuedJobAnswer"]["properties"] and "token" in schemas["JobView"]["properties"]
    for path in ("/api/jobs/{job_id}", "/api/jobs/{job_id}/events"):
        operation = document["paths"][path]["get"]
        assert "token" in [p["name"] for p in operation["parameters"]]
        assert {"jobToken": []} in operation["security"]
    assert "security" not in document["paths"]["/api/jobs/{job_id}/cancel"]["post"]  # the API key only
    assert document["components"]["securitySchemes"]["jobToken"]["in"] == "query"


@pytest.mark.parametrize(("variable", "value", "shown"), [
    ("CORS_ALLOWED_ORIGINS", "https://app.example/path", True),
    ("CORS_ALLOWED_ORIGINS", "app.example", True),
    ("JOB_TOKEN_SECRET", "too-short-secret", False),
    ("JOB_TOKEN_TTL_SECONDS", "0", True),
])
def test_bad_token_and_cors_settings_stop_start_up_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, shown: bool) -> None:
    from agentic.config import ConfigError, load_settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert variable in str(error.value)
    assert (value in str(error.value)) is shown  # a secret is never echoed


def test_cors_origins_are_read_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentic.config import load_settings

    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, http://localhost:5173/")
    assert load_settings().cors_allowed_origins == ["https://a.example", "http://localhost:5173"]
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS")
    assert load_settings().cors_allowed_origins == []
