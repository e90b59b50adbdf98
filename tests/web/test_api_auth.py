"""Bearer API keys guard every API route except health, the OpenAPI document and the Inngest endpoint."""

from __future__ import annotations

import time

import pytest

from agentic.store.engine import create_db_engine
from agentic.store.keycache import SQLITE_TTL_SECONDS, ListenedKeyCache
from agentic.store.keys import ApiKeyStore, hash_key
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


def test_a_key_revoked_by_another_process_is_refused(api: Api) -> None:
    """The key cache: on PostgreSQL the revocation's NOTIFY empties it; on SQLite it forgets within its bound."""
    issued = api.container.keys.create("alice")
    cache = api.container.keys.cache
    assert cache is not None
    assert api.client.get("/api/jobs", headers=auth(issued.secret)).status_code == 200
    if isinstance(cache, ListenedKeyCache):
        assert cache.listener.wait_connected(10)
    assert api.client.get("/api/jobs", headers=auth(issued.secret)).status_code == 200
    assert cache.get(hash_key(issued.secret)) is not None  # served from the cache from here on
    before = cache.version
    other = create_db_engine(str(api.container.engine.url.render_as_string(hide_password=False)))
    try:
        assert ApiKeyStore(other).revoke(issued.key.id)  # as `agentic keys revoke` does, from elsewhere
    finally:
        other.dispose()
    if isinstance(cache, ListenedKeyCache):
        deadline = time.monotonic() + 10
        while cache.version == before and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(SQLITE_TTL_SECONDS)  # SQLite has no notifications: the README's stated bound
    response = api.client.get("/api/jobs", headers=auth(issued.secret))
    assert response.status_code == 401 and response.json["code"] == "invalid_token"


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
