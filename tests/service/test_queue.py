"""Queueing through the service (routing, the pending row, its event), with the real Inngest client; only the
event API (HTTP) is mocked."""

from __future__ import annotations

import json

import httpx
import inngest
import pytest
import respx

from agentic.config import load_settings
from agentic.domain.jobs import JobKind, JobStatus
from agentic.domain.llm import LLMRequest, LLMResponse, Message
from agentic.inngest.events import EVENT_GENERATE, InngestEventSender
from agentic.providers.mock import MockLLMRepository
from agentic.service.jobqueue import QueuedJob, QueueUnavailable
from agentic.service.submit import AgenticService, create_agentic_service
from agentic.store.jobs import JobStore

EVENT_API = "http://inngest.test"


def make_service(store: JobStore, timeout: float = 2.0) -> AgenticService:
    client = inngest.Inngest(app_id="agentic", is_production=False, event_api_base_url=EVENT_API)
    settings = load_settings(use_queue=True, quick_models="*-mini", slow_models="*-r1")
    return create_agentic_service(settings, llm=MockLLMRepository(), store=store,
                                  events=InngestEventSender(client, timeout=timeout))


def request(model: str) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content="Why is the sky blue?")], model=model)


def test_a_quick_request_goes_straight_through_without_a_job(store: JobStore) -> None:
    with respx.mock(assert_all_called=False) as router:
        event_api = router.post(url__startswith=EVENT_API)
        outcome = make_service(store).generate(request("openai/gpt-4o-mini"), user_id="alice")
    assert isinstance(outcome, LLMResponse) and outcome.provider == "mock"
    assert not event_api.called
    assert store.list_for_owner("alice").items == []


def test_a_slow_request_becomes_a_pending_job_and_one_event(store: JobStore) -> None:
    with respx.mock() as router:
        event_api = router.post(url__startswith=EVENT_API).mock(
            return_value=httpx.Response(200, json={"ids": ["evt"], "status": 200}))
        outcome = make_service(store).generate(request("deepseek/deepseek-r1"), user_id="alice")

    assert isinstance(outcome, QueuedJob) and outcome.status == "pending"
    job = store.get(outcome.job_id, user_id="alice")
    assert job is not None and job.status is JobStatus.PENDING and job.kind is JobKind.GENERATE
    assert job.model == "deepseek/deepseek-r1" and job.provider == "mock"
    assert job.request["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]

    assert event_api.call_count == 1
    [event] = json.loads(event_api.calls.last.request.content)
    assert event["name"] == EVENT_GENERATE
    assert event["data"] == {"job_id": job.id, "user_id": "alice"}  # the request stays in the row
    assert event["id"] == job.id  # a re-send is deduplicated by Inngest


def test_a_replayed_idempotent_submit_returns_the_same_job(store: JobStore) -> None:
    with respx.mock() as router:
        router.post(url__startswith=EVENT_API).mock(return_value=httpx.Response(200, json={"ids": ["e"]}))
        service = make_service(store)
        first = service.generate(request("x-r1"), user_id="alice", idempotency_key="abc")
        second = service.generate(request("x-r1"), user_id="alice", idempotency_key="abc")
    assert isinstance(first, QueuedJob) and isinstance(second, QueuedJob)
    assert first.job_id == second.job_id and first.created and not second.created
    assert len(store.list_for_owner("alice").items) == 1


def test_event_api_failure_fails_the_job_and_raises(store: JobStore) -> None:
    with respx.mock() as router:
        router.post(url__startswith=EVENT_API).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(QueueUnavailable) as caught:
            make_service(store, timeout=0.5).generate(request("x-r1"), user_id="alice", idempotency_key="k")

    job = store.get(caught.value.job.id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error_code == "queue_unavailable"
    assert all(j.status is not JobStatus.PENDING for j in store.list_for_owner("alice").items)
    # The key was released: the client's retry can create a fresh job once Inngest is back.
    assert job.idempotency_key is None


def test_event_api_rejection_fails_the_job(store: JobStore) -> None:
    with respx.mock() as router:
        router.post(url__startswith=EVENT_API).mock(return_value=httpx.Response(401, json={"error": "bad key"}))
        with pytest.raises(QueueUnavailable):
            make_service(store).generate(request("x-r1"), user_id="alice")
    [job] = store.list_for_owner("alice").items
    assert job.status is JobStatus.FAILED and job.error_code == "queue_unavailable"
