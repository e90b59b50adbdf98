"""The use cases clients call: generate (direct or queued), preview, cancel.

``AgenticService`` composes the context, lets the queued repository route the request, and tells an
in-process ``EventBus`` what happened, as in the seed design. ``create_agentic_service`` is the factory:
``USE_QUEUE`` chooses queued or direct (``false`` always means direct), ``LLM_PROVIDER`` the provider.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentic.config import Settings
from agentic.domain.jobs import Job, JobKind, JobStatus
from agentic.domain.llm import ContextDocument, LLMRequest, LLMResponse, Message, PreviewRequest, PreviewResult
from agentic.preview import generate_preview
from agentic.providers.base import LLMRepository
from agentic.providers.queued import QueuedJob, QueuedLLMRepository
from agentic.providers.routing import Route, RoutingRule
from agentic.queue import EVENT_CANCEL, EventSender, EventSendError
from agentic.store.jobs import JobStore

log = logging.getLogger(__name__)

RESPONSE_GENERATED = "agentic.response_generated"
JOB_QUEUED = "agentic.job_queued"
JOB_CANCELLED = "agentic.job_cancelled"
ERROR = "agentic.error"

Handler = Callable[[dict[str, Any]], None]
Outcome = LLMResponse | QueuedJob


class EventBus:
    """Synchronous in-process pub/sub. A failing handler is logged and never breaks the request."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(name, ())):
            try:
                handler(payload)
            except Exception:
                log.exception("event handler for %s failed", name)


@dataclass(frozen=True)
class ContextComposition:
    """Builds the messages sent to the model: system prompt + context documents + chat history.

    The whole stays under ``max_chars``: documents are included in order until the budget runs out, then
    the oldest chat turns are dropped. The last message is always kept.
    """

    system_prompt: str | None = None
    max_chars: int = 400_000

    def compose(self, request: LLMRequest, documents: Sequence[ContextDocument] = ()) -> LLMRequest:
        if self.system_prompt is None and not documents:
            return request
        system_parts = [p for p in (self.system_prompt, request.system_prompt) if p]
        history = request.conversation
        budget = self.max_chars - sum(len(p) for p in system_parts) - len(history[-1].content)
        included: list[str] = []
        for doc in documents:
            block = f"## {doc.title}\n{doc.content}"
            if len(block) > budget:
                break
            included.append(block)
            budget -= len(block)
        if included:
            system_parts.append("Context documents:\n\n" + "\n\n".join(included))
        kept: list[Message] = [history[-1]]
        for message in reversed(history[:-1]):
            if len(message.content) > budget:
                break
            kept.insert(0, message)
            budget -= len(message.content)
        messages = [Message(role="system", content="\n\n".join(system_parts))] if system_parts else []
        return request.model_copy(update={"messages": messages + kept})


class JobNotFound(LookupError):
    """No such job for this user (another user's job is "not found" too)."""


class JobAlreadyFinished(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job is already {job.status.value}")
        self.job = job


@dataclass
class AgenticService:
    llm: LLMRepository
    store: JobStore
    events: EventSender
    queue: QueuedLLMRepository | None = None
    composition: ContextComposition = field(default_factory=ContextComposition)
    bus: EventBus = field(default_factory=EventBus)
    preview_model: str = "openai/gpt-4o-mini"

    def generate(
        self, request: LLMRequest, *, user_id: str, context: Sequence[ContextDocument] = (),
        idempotency_key: str | None = None,
    ) -> Outcome:
        composed = self.composition.compose(request, context)
        try:
            if self.queue is None:
                outcome: Outcome = self.llm.generate(composed)
            else:
                outcome = self.queue.submit(composed, user_id=user_id, idempotency_key=idempotency_key)
        except Exception as exc:
            self.bus.emit(ERROR, {"user_id": user_id, "model": request.model, "error": repr(exc)})
            raise
        if isinstance(outcome, QueuedJob):
            self.bus.emit(JOB_QUEUED, {"user_id": user_id, "job_id": outcome.job_id, "model": request.model})
        else:
            self.bus.emit(RESPONSE_GENERATED, {"user_id": user_id, "response": outcome})
        return outcome

    def preview(
        self, request: PreviewRequest, *, user_id: str, idempotency_key: str | None = None,
    ) -> PreviewResult | QueuedJob:
        """Short content is its own preview at once; long content is queued (USE_QUEUE) or summarised now."""
        if not request.needs_ai:
            return PreviewResult(preview=request.content, used_ai=False)
        if self.queue is not None:
            queued = self.queue.enqueue(JobKind.PREVIEW, request.model_dump(mode="json"), model=self.preview_model,
                                        user_id=user_id, idempotency_key=idempotency_key)
            self.bus.emit(JOB_QUEUED, {"user_id": user_id, "job_id": queued.job_id, "model": self.preview_model})
            return queued
        return generate_preview(self.llm, self.preview_model, request)

    def get_job(self, job_id: str, *, user_id: str) -> Job:
        job = self.store.get(job_id, user_id=user_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def cancel(self, job_id: str, *, user_id: str) -> Job:
        """Record the request, cancel a pending job at once, and tell the running function to stop."""
        job = self.get_job(job_id, user_id=user_id)
        if job.is_terminal:
            raise JobAlreadyFinished(job)
        if not self.store.request_cancel(job_id, user_id=user_id):
            # It finished between the read and the request (say, store-result completed it): not stopped.
            raise JobAlreadyFinished(self.get_job(job_id, user_id=user_id))
        if job.status is JobStatus.PENDING:
            self.store.cancel(job_id)
        try:
            self.events.send(EVENT_CANCEL, {"job_id": job_id, "user_id": user_id}, event_id=f"cancel-{job_id}")
        except EventSendError:
            # Not fatal: the recorded request stops the run at its next step and between streamed chunks.
            log.warning("could not send %s for %s; the recorded request still stops it", EVENT_CANCEL, job_id)
        job = self.get_job(job_id, user_id=user_id)
        if job.is_terminal and job.status is not JobStatus.CANCELLED:
            raise JobAlreadyFinished(job)  # it ended otherwise (failed) before the request could stop it
        if job.is_terminal:
            self.bus.emit(JOB_CANCELLED, {"user_id": user_id, "job_id": job_id})
        return job


def routing_rule(settings: Settings) -> RoutingRule:
    return RoutingRule(quick_models=tuple(settings.quick_models), slow_models=tuple(settings.slow_models),
                       token_threshold=settings.queue_token_threshold, default=Route(settings.default_route))


def create_agentic_service(
    settings: Settings, *, llm: LLMRepository, store: JobStore, events: EventSender,
    composition: ContextComposition | None = None,
) -> AgenticService:
    """``USE_QUEUE=true`` wraps the provider in the queued repository; ``false`` always means direct."""
    queue = QueuedLLMRepository(llm, store, events, routing_rule(settings)) if settings.use_queue else None
    return AgenticService(llm=llm, store=store, events=events, queue=queue,
                          composition=composition or ContextComposition(), preview_model=settings.preview_model)
