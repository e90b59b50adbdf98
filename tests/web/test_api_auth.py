"""Bearer API keys guard every API route except health, the OpenAPI document and the Inngest endpoint."""

from __future__ import annotations

import pytest

from tests.web.support import Api, auth, chat

PROTECTED = [
    ("post", "/api/llm/generate"),
    ("post", "/api/previews"),
    ("get", "/api/jobs"),
    ("get", "/api/jobs/job_x"),
    ("get", "/api/jobs/job_x/events"),
    ("post", "/api/jobs/job_x/cancel"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_missing_key_is_401_with_a_bearer_challenge(api: Api, method: str, path: str) -> None:
    response = getattr(api.client, method)(path, json=chat())
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="agentic"'
    assert response.json["code"] == "authentication_required"
    assert api.jobs_count() == 0


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "agk_nobearer",
                                    "Bearer agk_unknownunknownunknownunknown", "Bearer not-a-key"])
def test_a_malformed_or_unknown_key_is_401_invalid_token(api: Api, header: str) -> None:
    response = api.client.get("/api/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="agentic", error="invalid_token"'
    assert response.json["code"] == "invalid_token"


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    issued = api.container.keys.create("alice")
    assert api.client.get("/api/jobs", headers=auth(issued.secret)).status_code == 200
    assert api.container.keys.revoke(issued.key.id)
    response = api.client.get("/api/jobs", headers=auth(issued.secret))
    assert response.status_code == 401
    assert response.json["code"] == "invalid_token"


def test_the_scheme_is_case_insensitive(api: Api) -> None:
    secret = api.key()
    assert api.client.get("/api/jobs", headers={"Authorization": f"bearer {secret}"}).status_code == 200


def test_health_and_openapi_need_no_key(api: Api) -> None:
    assert api.client.get("/api/health").status_code == 200
    assert api.client.get("/api/openapi.json").status_code == 200


def test_the_inngest_endpoint_is_not_behind_api_keys(api: Api) -> None:
    response = api.client.get("/api/inngest")
    assert response.status_code == 200  # dev mode: the SDK answers its introspection itself
    assert "function_count" in response.json
