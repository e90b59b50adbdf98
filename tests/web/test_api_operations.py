"""Health, metrics and the OpenAPI document; and what happens when the database is gone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from openapi_spec_validator import validate
from prometheus_client import CONTENT_TYPE_LATEST

from agentic.config import load_settings
from agentic.web.app import create_app
from tests.web.support import SLOW_MODEL, Api, auth, chat

SECRETS = {
    "openrouter_api_key": "sk-or-v1-healthSECRETvalue0001",
    "anthropic_api_key": "sk-ant-healthSECRETvalue0002",
    "metrics_token": "metrics-SECRET-0003",
    "inngest_event_key": "eventkey-SECRET-0004",
    "inngest_signing_key": "signkey-test-0123abcd",
    "webhook_secret": "whsec-SECRET-0005",
}
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/none"


def test_health_answers_without_auth_and_shows_no_secret(make_api: Callable[..., Api]) -> None:
    api = make_api(llm_provider="openrouter", use_queue=True, webhook_url="https://hooks.example/x", **SECRETS)
    response = api.client.get("/api/health")
    assert response.status_code == 200
    body = response.json
    assert body == {
        "status": "ok",
        "database": {"ok": True},
        "provider": {"name": "openrouter", "configured": True, "missing": None},
        "queue": {"enabled": True, "step_time_budget_seconds": 240.0, "max_continuations": 40},
        "inngest": {"mode": "dev", "event_key_set": True, "signing_key_set": True},
        "version": body["version"],
    }
    text = response.get_data(as_text=True)
    for secret in SECRETS.values():
        assert secret not in text


def test_health_is_degraded_when_the_provider_lacks_its_key(make_api: Callable[..., Api]) -> None:
    api = make_api(llm_provider="openrouter")
    response = api.client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["provider"] == {"name": "openrouter", "configured": False, "missing": "OPENROUTER_API_KEY"}
    assert response.json["inngest"] == {"mode": "dev", "event_key_set": False, "signing_key_set": False}


@pytest.fixture
def offline_api() -> Api:
    """An app whose database does not answer (nothing listens on port 1)."""
    app = create_app(load_settings(database_url=UNREACHABLE, llm_provider="mock", inngest_dev="1",
                                   use_queue=True, metrics_token="tok"))
    from agentic.web.app import container_of

    return Api(app=app, container=container_of(app), client=app.test_client())


def test_health_is_503_when_the_database_is_down(offline_api: Api) -> None:
    response = offline_api.client.get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert response.json["database"] == {"ok": False}
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_a_database_outage_is_503_database_unavailable(offline_api: Api) -> None:
    key = "agk_" + "x" * 43
    for response in (offline_api.client.get("/api/jobs", headers=auth(key)),
                     offline_api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=auth(key))):
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.json["code"] == "database_unavailable"


def test_metrics_is_a_404_without_a_configured_token(api: Api) -> None:
    response = api.client.get("/api/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic bWV0cmljcy10b2tlbg=="])
def test_metrics_refuses_a_wrong_token(make_api: Callable[..., Api], header: str | None) -> None:
    api = make_api(metrics_token="metrics-token")
    response = api.client.get("/api/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_metrics_with_the_token(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token="metrics-token", use_queue=True)
    api.client.post("/api/llm/generate", json=chat(model=SLOW_MODEL), headers=auth(api.key()))
    response = api.client.get("/api/metrics", headers=auth("metrics-token"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.get_data(as_text=True)
    assert 'agentic_jobs{kind="generate",status="pending"} 1.0' in text
    assert "agentic_queue_depth 1.0" in text


def test_metrics_does_not_take_an_api_key(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token="metrics-token")
    assert api.client.get("/api/metrics", headers=auth(api.key())).status_code == 401


def test_the_openapi_document_is_valid_and_lists_every_route(api: Api) -> None:
    response = api.client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.2")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = set()
    for rule in api.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "inngest_api":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(path, method) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == documented
    schemas = document["components"]["schemas"]
    assert {"GenerateRequest", "JobView", "JobList", "Problem", "Health", "QueuedJobAnswer"} <= set(schemas)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API key (agk_...)"}
    assert document["paths"]["/api/health"]["get"]["security"] == []
    generate = document["paths"]["/api/llm/generate"]["post"]
    assert {"200", "202", "400", "401", "409", "413", "415", "422", "429", "502", "503"} <= set(generate["responses"])
    assert generate["responses"]["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', response.get_data(as_text=True))
    assert set(refs) <= set(schemas)
