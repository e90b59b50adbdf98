"""Every error is problem+json: unknown routes, wrong methods, and bugs (never an HTML 500)."""

from __future__ import annotations

import logging

import pytest

from tests.web.support import Api, auth


def test_an_unknown_route_is_a_404_problem(api: Api) -> None:
    response = api.client.get("/api/nothing/here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found"
    assert response.json["type"].endswith("not_found")


def test_a_wrong_method_is_a_405_problem_with_allow(api: Api) -> None:
    response = api.client.delete("/api/llm/generate", headers=auth(api.key()))
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_and_logged_without_secrets(
    api: Api, caplog: pytest.LogCaptureFixture,
) -> None:
    secret = api.key()

    def explode() -> str:
        raise RuntimeError("kaboom")

    api.app.add_url_rule("/api/explode", "explode", explode)
    with caplog.at_level(logging.ERROR):
        response = api.client.get("/api/explode", headers=auth(secret))
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "internal_error"
    assert "kaboom" not in response.get_data(as_text=True)
    assert "GET /api/explode" in caplog.text
    assert secret not in caplog.text


def test_the_inngest_endpoint_keeps_the_sdks_own_answers(api: Api) -> None:
    response = api.client.delete("/api/inngest")
    assert response.status_code == 405
    assert response.mimetype != "application/problem+json"


def test_the_inngest_endpoint_accepts_bodies_larger_than_the_api_limit(api: Api) -> None:
    # An unsigned call in dev mode; the point is that the body is read, not refused with 413.
    response = api.client.post("/api/inngest?fnId=x&stepId=step", data=b"{" + b" " * 10_000 + b"}",
                               content_type="application/json")
    assert response.status_code != 413


def test_paths_outside_the_api_keep_flasks_own_errors(api: Api) -> None:
    response = api.client.get("/not-the-api")
    assert response.status_code == 404
    assert response.mimetype != "application/problem+json"
