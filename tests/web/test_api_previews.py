"""POST /api/previews: short content is its own preview; long content is queued or summarised."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agentic.inngest.events import EVENT_PREVIEW
from tests.web.support import Api, EventLog, auth

LONG = "word " * 100


def test_short_content_is_its_own_preview(queued_api: Api, events: EventLog) -> None:
    response = queued_api.client.post("/api/previews", json={"title": "T", "content": "short and sweet"},
                                      headers=auth(queued_api.key()))
    assert response.status_code == 200
    assert response.json == {"preview": "short and sweet", "used_ai": False}
    assert queued_api.jobs_count() == 0
    assert events.events == []


def test_long_content_is_queued_with_the_queue_on(queued_api: Api, events: EventLog) -> None:
    response = queued_api.client.post("/api/previews", json={"title": "T", "content": LONG},
                                      headers=auth(queued_api.key("carol")))
    assert response.status_code == 202
    body = response.json
    assert body["kind"] == "preview" and body["status"] == "pending"
    assert response.headers["Location"] == f"/api/jobs/{body['job_id']}"
    sent = events.named(EVENT_PREVIEW)
    assert [(e["id"], e["data"]) for e in sent] == [(body["job_id"], {"job_id": body["job_id"], "user_id": "carol"})]


def test_long_content_is_summarised_directly_without_the_queue(api: Api) -> None:
    response = api.client.post("/api/previews", json={"title": "T", "content": LONG}, headers=auth(api.key()))
    assert response.status_code == 200
    assert response.json["used_ai"] is True
    assert 0 < len(response.json["preview"]) <= 250
    assert api.jobs_count() == 0


def test_an_idempotent_preview_retry_returns_the_same_job(queued_api: Api) -> None:
    headers = {**auth(queued_api.key()), "Idempotency-Key": "p-1"}
    first = queued_api.client.post("/api/previews", json={"title": "T", "content": LONG}, headers=headers)
    second = queued_api.client.post("/api/previews", json={"title": "T", "content": LONG}, headers=headers)
    assert first.json["job_id"] == second.json["job_id"]
    assert queued_api.jobs_count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"content": "x"}, "title"),
    ({"title": "T"}, "content"),
    ({"title": "", "content": "x"}, "title"),
    ({"title": "T", "content": "x", "extra": 1}, "extra"),
    ({"title": "T", "content": 5}, "content"),
])
def test_invalid_previews_are_422(make_api: Callable[..., Api], body: dict[str, object], field: str) -> None:
    api = make_api(use_queue=True)
    response = api.client.post("/api/previews", json=body, headers=auth(api.key()))
    assert response.status_code == 422
    assert response.json["field"] == field
    assert api.jobs_count() == 0


def test_a_preview_without_a_json_body_is_415(api: Api) -> None:
    response = api.client.post("/api/previews", data="title=T", headers=auth(api.key()))
    assert response.status_code == 415
