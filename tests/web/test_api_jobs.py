"""Reading, listing and cancelling jobs: only ever the caller's own."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import JobKind, JobStatus
from agentic.domain.llm import Usage
from agentic.inngest.events import EVENT_CANCEL
from tests.web.support import SLOW_MODEL, Api, EventLog, auth, chat


def queue(api: Api, secret: str, content: str = "hello") -> str:
    response = api.client.post("/api/llm/generate", json=chat(content, model=SLOW_MODEL), headers=auth(secret))
    assert response.status_code == 202, response.json
    return str(response.json["job_id"])


def test_a_pending_job_as_its_owner_sees_it(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    response = queued_api.client.get(f"/api/jobs/{job_id}", headers=auth(secret))
    assert response.status_code == 200
    view = response.json
    assert set(view) == {"id", "kind", "status", "model", "provider", "partial_output", "response", "error",
                         "usage", "attempts", "created_at", "updated_at", "started_at", "finished_at",
                         "cancel_requested_at", "live_text", "links", "token"}
    assert view["id"] == job_id and view["kind"] == "generate" and view["status"] == "pending"
    assert view["model"] == SLOW_MODEL and view["provider"] == "mock"
    assert view["partial_output"] is None and view["response"] is None and view["error"] is None
    assert view["usage"] is None and view["attempts"] == 0
    assert datetime.fromisoformat(view["created_at"]).tzinfo is not None
    assert view["links"]["self"] == f"/api/jobs/{job_id}"
    assert "alice" not in response.get_data(as_text=True)  # never the owner's id
    assert "hello" not in response.get_data(as_text=True)  # nor the stored request


def test_a_running_then_completed_job(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    store = queued_api.container.jobs
    store.start(job_id)
    store.append_progress(job_id, "Hello, wor")
    view = queued_api.client.get(f"/api/jobs/{job_id}", headers=auth(secret)).json
    assert view["status"] == "processing" and view["partial_output"] == "Hello, wor"
    assert view["started_at"] is not None and view["attempts"] == 1
    response = {"id": "r1", "model": SLOW_MODEL, "content": "Hello, world", "provider": "mock",
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    store.complete(job_id, response, Usage.of(3, 4))
    view = queued_api.client.get(f"/api/jobs/{job_id}", headers=auth(secret)).json
    assert view["status"] == "completed"
    assert view["response"]["content"] == "Hello, world"
    assert view["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert view["partial_output"] is None and view["finished_at"] is not None


def test_a_failed_job_shows_its_error(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    queued_api.container.jobs.fail(job_id, ErrorCode.RATE_LIMITED, "slow down")
    view = queued_api.client.get(f"/api/jobs/{job_id}", headers=auth(secret)).json
    assert view["status"] == "failed"
    assert view["error"] == {"code": "rate_limited", "message": "slow down"}


def test_another_users_job_and_a_missing_job_are_both_404(queued_api: Api) -> None:
    job_id = queue(queued_api, queued_api.key("alice"))
    bob = queued_api.key("bob")
    theirs = queued_api.client.get(f"/api/jobs/{job_id}", headers=auth(bob))
    missing = queued_api.client.get("/api/jobs/job_doesnotexist", headers=auth(bob))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json == missing.json
    assert theirs.json["code"] == "job_not_found"


# ---- listing -----------------------------------------------------------------------------------------


def test_the_list_is_the_callers_newest_first_and_paginated(queued_api: Api) -> None:
    alice = queued_api.key("alice")
    ids = [queue(queued_api, alice, f"message {i}") for i in range(5)]
    queue(queued_api, queued_api.key("bob"))
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = queued_api.client.get("/api/jobs", query_string=query, headers=auth(alice)).json
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == list(reversed(ids))


def test_the_list_filters_by_status(queued_api: Api) -> None:
    alice = queued_api.key()
    first, second = queue(queued_api, alice, "a"), queue(queued_api, alice, "b")
    queued_api.container.jobs.cancel(first)
    page = queued_api.client.get("/api/jobs?status=cancelled", headers=auth(alice)).json
    assert [item["id"] for item in page["items"]] == [first]
    page = queued_api.client.get("/api/jobs?status=pending", headers=auth(alice)).json
    assert [item["id"] for item in page["items"]] == [second]


@pytest.mark.parametrize(("query", "field"), [
    ("status=done", "status"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("cursor=%21%21not-a-cursor", "cursor"), ("cursor=bm9wZQ", "cursor"),
])
def test_bad_list_parameters_are_422_naming_the_parameter(queued_api: Api, query: str, field: str) -> None:
    response = queued_api.client.get(f"/api/jobs?{query}", headers=auth(queued_api.key()))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "validation_error"
    assert response.json["field"] == field


# ---- cancelling --------------------------------------------------------------------------------------


def test_cancelling_a_pending_job_cancels_it_at_once(queued_api: Api, events: EventLog) -> None:
    secret = queued_api.key("alice")
    job_id = queue(queued_api, secret)
    response = queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret))
    assert response.status_code == 202
    assert response.json["status"] == "cancelled"
    assert response.json["cancel_requested_at"] is not None
    sent = events.named(EVENT_CANCEL)
    assert [e["data"] for e in sent] == [{"job_id": job_id, "user_id": "alice"}]


def test_cancelling_a_running_job_records_the_request(queued_api: Api, events: EventLog) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    queued_api.container.jobs.start(job_id)
    response = queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret))
    assert response.status_code == 202
    assert response.json["status"] == "processing"
    assert response.json["cancel_requested_at"] is not None
    assert queued_api.container.jobs.cancel_requested(job_id)
    assert len(events.named(EVENT_CANCEL)) == 1


def test_cancelling_a_finished_job_is_409_with_its_status(queued_api: Api) -> None:
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    queued_api.container.jobs.fail(job_id, ErrorCode.UPSTREAM_ERROR, "it broke")
    response = queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret))
    assert response.status_code == 409
    assert response.json["code"] == "job_finished"
    assert response.json["job_status"] == "failed"


def test_cancelling_another_users_job_is_404_and_changes_nothing(queued_api: Api, events: EventLog) -> None:
    job_id = queue(queued_api, queued_api.key("alice"))
    response = queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(queued_api.key("bob")))
    assert response.status_code == 404
    assert response.json["code"] == "job_not_found"
    job = queued_api.container.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.PENDING and job.cancel_requested_at is None
    assert events.named(EVENT_CANCEL) == []


def test_a_preview_job_lists_with_its_kind(queued_api: Api) -> None:
    secret = queued_api.key()
    response = queued_api.client.post("/api/previews", json={"title": "T", "content": "x " * 200},
                                      headers=auth(secret))
    assert response.status_code == 202
    page = queued_api.client.get("/api/jobs", headers=auth(secret)).json
    assert [item["kind"] for item in page["items"]] == [JobKind.PREVIEW.value]


def test_a_cancel_that_loses_the_race_to_completion_is_409_not_202(queued_api: Api) -> None:
    """The job completes (store-result) between the route's read and its cancellation request: the route
    did not stop it and must say so, not answer 202 with a job that ends completed."""
    secret = queued_api.key()
    job_id = queue(queued_api, secret)
    jobs = queued_api.container.jobs
    assert jobs.start(job_id) and jobs.save_result(job_id, {"content": "done"})
    fired: list[bool] = []

    def complete_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sql = " ".join(statement.split()).lower()
        if not fired and sql.startswith("update llm_jobs set") and "cancel_requested_at=coalesce" in sql \
                and "not in" in sql:  # request_cancel's statement, about to run
            fired.append(jobs.complete(job_id) is not None)

    event.listen(queued_api.container.engine, "before_cursor_execute", complete_first)
    try:
        response = queued_api.client.post(f"/api/jobs/{job_id}/cancel", headers=auth(secret))
    finally:
        event.remove(queued_api.container.engine, "before_cursor_execute", complete_first)

    assert fired == [True]
    assert response.status_code == 409 and response.json["job_status"] == "completed"
    job = jobs.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.cancel_requested_at is None


def test_a_nul_in_a_job_id_or_cursor_is_not_found_or_invalid_on_every_database(queued_api: Api) -> None:
    """PostgreSQL refuses a NUL in a query parameter (a 500); an id or cursor holding one names no job."""
    secret = queued_api.key()
    queue(queued_api, secret)
    for method, path in (("GET", "/api/jobs/abc%00def"), ("GET", "/api/jobs/abc%00def/events"),
                         ("POST", "/api/jobs/abc%00def/cancel")):
        response = queued_api.client.open(path, method=method, headers=auth(secret))
        assert response.status_code == 404, (method, path)
        assert response.json["code"] == "job_not_found"
    cursor = base64.urlsafe_b64encode(f"{datetime.now(UTC).isoformat()}|job_\x00x".encode()).decode()

    listed = queued_api.client.get(f"/api/jobs?cursor={cursor}", headers=auth(secret))

    assert listed.status_code == 422 and listed.json["field"] == "cursor"  # like any cursor it never issued
