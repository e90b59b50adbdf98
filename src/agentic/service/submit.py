"""The use cases clients call: submit a job kind's request (direct or queued), generate, preview, cancel.

Routing decides per request (``USE_QUEUE=false`` is the rule that answers "direct" to everything); a direct
request runs the kind's handler now, a queued one becomes a pending job and its event
(:class:`agentic.service.jobqueue.JobQueue`). ``create_agentic_service`` builds it from settings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentic.config import Settings
from agentic.domain.jobs import Job, JobAlreadyFinished, JobNotFound, JobStatus
from agentic.domain.llm import ContextDocument, LLMRequest, LLMResponse, Message, PreviewRequest, PreviewResult
from agentic.inngest.events import EVENT_CANCEL, EventSender, EventSendError
from agentic.providers.base import LLMProvider
from agentic.service.generation import RequestT, ResultT
from agentic.service.jobqueue import JobQueue, QueuedJob
from agentic.service.kinds import GENERATE, PREVIEW, JobKindSpec
from agentic.service.reads import JobReads
from agentic.service.routing import Route, RoutingRule, routing_rule
from agentic.store.jobs import JobStore

log = logging.getLogger(__name__)


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


@dataclass
class AgenticService:
    settings: Settings
    llm: LLMProvider
    store: JobStore
    events: EventSender
    routing: RoutingRule
    queue: JobQueue
    reads: JobReads
    composition: ContextComposition = field(default_factory=ContextComposition)

    def submit(
        self, spec: JobKindSpec[RequestT, ResultT], request: RequestT, *, user_id: str,
        idempotency_key: str | None = None,
    ) -> ResultT | QueuedJob:
        """Run the request now, or queue it as a job of ``spec``'s kind and return the job to poll."""
        model = spec.model(request, self.settings)
        if spec.route(request, self.routing).route is Route.QUEUE:
            return self.queue.enqueue(spec, request, model=model, user_id=user_id, idempotency_key=idempotency_key)
        return spec.handler.run(self.llm, request, model)

    def generate(
        self, request: LLMRequest, *, user_id: str, context: Sequence[ContextDocument] = (),
        idempotency_key: str | None = None,
    ) -> LLMResponse | QueuedJob:
        composed = self.composition.compose(request, context)
        return self.submit(GENERATE, composed, user_id=user_id, idempotency_key=idempotency_key)

    def preview(
        self, request: PreviewRequest, *, user_id: str, idempotency_key: str | None = None,
    ) -> PreviewResult | QueuedJob:
        """Short content is its own preview at once; long content is queued (USE_QUEUE) or summarised now."""
        return self.submit(PREVIEW, request, user_id=user_id, idempotency_key=idempotency_key)

    def get_job(self, job_id: str, *, user_id: str) -> Job:
        return self.reads.owned(job_id, user_id=user_id)

    def cancel(self, job_id: str, *, user_id: str) -> Job:
        """Record the request, cancel a pending job at once, and tell the running function to stop."""
        job = self.get_job(job_id, user_id=user_id)
        if job.is_terminal:
            raise JobAlreadyFinished(job)
        latest = self.store.request_cancel(job_id, user_id=user_id)
        if latest is None:
            # It finished between the read and the request (say, store-result completed it): not stopped.
            raise JobAlreadyFinished(self.get_job(job_id, user_id=user_id))
        if job.status is JobStatus.PENDING:
            latest = self.store.cancel(job_id) or latest
        try:
            self.events.send(EVENT_CANCEL, {"job_id": job_id, "user_id": user_id}, event_id=f"cancel-{job_id}")
        except EventSendError:
            # Not fatal: the recorded request stops the run at its next step and between streamed chunks.
            log.warning("could not send %s for %s; the recorded request still stops it", EVENT_CANCEL, job_id)
        if latest.is_terminal:  # cancelled while pending, above
            return latest
        # Running: llm-cancel or the run itself ends it. Read how it stands; a job that ended otherwise (failed)
        # after the request was recorded was not stopped by it.
        job = self.get_job(job_id, user_id=user_id)
        if job.is_terminal and job.status is not JobStatus.CANCELLED:
            raise JobAlreadyFinished(job)
        return job


def create_agentic_service(
    settings: Settings, *, llm: LLMProvider, store: JobStore, events: EventSender,
    composition: ContextComposition | None = None,
) -> AgenticService:
    """The service for ``settings``: routing by QUICK_MODELS / SLOW_MODELS / USE_QUEUE, jobs for ``llm``."""
    return AgenticService(settings=settings, llm=llm, store=store, events=events, routing=routing_rule(settings),
                          queue=JobQueue(store, events, llm.name),
                          reads=JobReads(store, offload_models=tuple(settings.offload_models)),
                          composition=composition or ContextComposition())


__all__ = ["AgenticService", "ContextComposition", "JobAlreadyFinished", "JobNotFound", "QueuedJob",
           "create_agentic_service"]
