"""AgenticService: context composition, direct vs queued, previews, cancellation."""

from __future__ import annotations

import secrets
import sys
from typing import Any

import httpx
import inngest
import pytest
import respx

from agentic.config import load_settings
from agentic.domain.errors import LLMError
from agentic.domain.jobs import JobStatus
from agentic.domain.llm import (
    ContextDocument,
    LLMRequest,
    LLMResponse,
    Message,
    PreviewRequest,
    PreviewResult,
)
from agentic.inngest.events import EVENT_CANCEL, InngestEventSender
from agentic.providers.mock import MockLLMRepository
from agentic.service.submit import (
    ContextComposition,
    JobAlreadyFinished,
    JobNotFound,
    QueuedJob,
    create_agentic_service,
)
from agentic.store.jobs import JobStore

EVENT_API = "http://inngest.test"


@pytest.fixture(autouse=True)
def _own_event_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test talks to an event API host of its own: the SDK retries a failed send in the background after
    our timeout, and such a late retry from an earlier test must not land on this test's route."""
    monkeypatch.setattr(sys.modules[__name__], "EVENT_API", f"http://inngest-{secrets.token_hex(4)}.test")


def service(store: JobStore, *, use_queue: bool) -> Any:
    settings = load_settings(use_queue=use_queue, slow_models="*-slow*", quick_models="*-quick*",
                             preview_model="mock-preview")
    client = inngest.Inngest(app_id="agentic", is_production=False, event_api_base_url=EVENT_API)
    return create_agentic_service(settings, llm=MockLLMRepository(), store=store,
                                  events=InngestEventSender(client, timeout=1))


def ask(model: str, *history: str) -> LLMRequest:
    messages = [Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(history)]
    return LLMRequest(messages=messages or [Message(role="user", content="hi")], model=model)


@pytest.fixture
def event_api(_own_event_api: None) -> Any:
    with respx.mock(assert_all_called=False) as router:
        yield router.post(url__startswith=EVENT_API).mock(return_value=httpx.Response(200, json={"ids": ["e"]}))


# ---- context composition ---------------------------------------------------------------------------

def test_composition_puts_system_prompt_and_documents_first() -> None:
    composed = ContextComposition(system_prompt="Be brief.").compose(
        ask("m", "What is in the doc?"), [ContextDocument(title="Doc", content="The answer is 42.")])
    system = composed.messages[0]
    assert system.role == "system"
    assert system.content.startswith("Be brief.") and "## Doc\nThe answer is 42." in system.content
    assert composed.messages[-1].content == "What is in the doc?"


def test_composition_drops_oldest_history_and_extra_documents_over_budget() -> None:
    request = ask("m", "old " * 50, "older reply " * 10, "latest question")
    docs = [ContextDocument(title="small", content="x" * 20), ContextDocument(title="huge", content="y" * 500)]
    composed = ContextComposition(system_prompt="S", max_chars=200).compose(request, docs)
    contents = [m.content for m in composed.messages]
    assert contents[-1] == "latest question"              # the last message always survives
    assert not any(c.startswith("old ") for c in contents)  # the oldest turn went first
    assert "## small" in contents[0] and "## huge" not in contents[0]
    assert sum(len(c) for c in contents) <= 200


def test_composition_without_anything_to_add_returns_the_request_unchanged() -> None:
    request = ask("m", "hello")
    assert ContextComposition().compose(request) is request


# ---- generate ------------------------------------------------------------------------------------------

def test_use_queue_false_always_runs_directly_even_for_slow_models(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=False)
    outcome = svc.generate(ask("model-slow-1"), user_id="alice")
    assert isinstance(outcome, LLMResponse)
    assert not event_api.called and store.list_for_owner("alice").items == []


def test_use_queue_true_queues_slow_models_and_says_so(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=True)
    outcome = svc.generate(ask("model-slow-1"), user_id="alice")
    assert isinstance(outcome, QueuedJob)
    assert outcome.job.model == "model-slow-1" and outcome.job.user_id == "alice"
    assert isinstance(svc.generate(ask("model-quick-1"), user_id="alice"), LLMResponse)


def test_a_direct_failure_reaches_the_caller_classified(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=False)
    with pytest.raises(LLMError):
        svc.generate(ask("model-quick-1", "[mock:fail]"), user_id="alice")
    assert store.list_for_owner("alice").items == []


# ---- previews ------------------------------------------------------------------------------------------

def test_short_content_is_its_own_preview(store: JobStore, event_api: Any) -> None:
    result = service(store, use_queue=True).preview(PreviewRequest(title="T", content="short"), user_id="alice")
    assert result == PreviewResult(preview="short", used_ai=False)
    assert not event_api.called


def test_long_content_is_queued_with_the_queue_and_summarised_without(store: JobStore, event_api: Any) -> None:
    long = PreviewRequest(title="Title", content="word " * 100)
    queued = service(store, use_queue=True).preview(long, user_id="alice")
    assert isinstance(queued, QueuedJob) and queued.job.kind.value == "preview"
    assert queued.job.model == "mock-preview" and queued.job.request == long.model_dump()
    direct = service(store, use_queue=False).preview(long, user_id="alice")
    assert isinstance(direct, PreviewResult) and direct.used_ai and 0 < len(direct.preview) <= 250


# ---- cancel ------------------------------------------------------------------------------------------

def test_cancelling_a_pending_job_cancels_it_at_once_and_tells_inngest(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=True)
    queued = svc.generate(ask("model-slow-1"), user_id="alice")
    job = svc.cancel(queued.job_id, user_id="alice")
    assert job.status is JobStatus.CANCELLED and job.cancel_requested_at is not None
    names = [call.request.content for call in event_api.calls]
    assert any(EVENT_CANCEL.encode() in body for body in names)


def test_cancelling_a_running_job_records_the_request(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=True)
    queued = svc.generate(ask("model-slow-1"), user_id="alice")
    store.start(queued.job_id)
    job = svc.cancel(queued.job_id, user_id="alice")
    assert job.status is JobStatus.PROCESSING and job.cancel_requested_at is not None
    assert store.cancel_requested(queued.job_id)


def test_cancel_refuses_finished_and_foreign_jobs(store: JobStore, event_api: Any) -> None:
    svc = service(store, use_queue=True)
    queued = svc.generate(ask("model-slow-1"), user_id="alice")
    with pytest.raises(JobNotFound):
        svc.cancel(queued.job_id, user_id="mallory")
    store.start(queued.job_id)
    store.complete(queued.job_id, {"content": "done"})
    with pytest.raises(JobAlreadyFinished) as caught:
        svc.cancel(queued.job_id, user_id="alice")
    assert caught.value.job.status is JobStatus.COMPLETED


def test_cancel_still_works_when_the_event_api_is_down(store: JobStore) -> None:
    with respx.mock() as router:
        route = router.post(url__startswith=EVENT_API)
        route.mock(return_value=httpx.Response(200, json={"ids": ["e"]}))
        svc = service(store, use_queue=True)
        queued = svc.generate(ask("model-slow-1"), user_id="alice")
        store.start(queued.job_id)
        route.mock(side_effect=httpx.ConnectError("down"))
        job = svc.cancel(queued.job_id, user_id="alice")
    assert job.cancel_requested_at is not None and store.cancel_requested(queued.job_id)
