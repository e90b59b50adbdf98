"""Wires settings into the objects the app and the functions share (the composition root's parts)."""

from __future__ import annotations

from dataclasses import dataclass

import inngest
from sqlalchemy import Engine

from agentic.config import Settings
from agentic.inngest_client import create_inngest_client
from agentic.metrics import Metrics
from agentic.providers.base import LLMRepository
from agentic.providers.lazy import LazyLLMRepository
from agentic.queue import EventSender, InngestEventSender
from agentic.runner import JobRunner
from agentic.service import AgenticService, create_agentic_service
from agentic.store.engine import create_db_engine
from agentic.store.jobs import JobStore
from agentic.store.keycache import key_cache_for
from agentic.store.keys import ApiKeyStore
from agentic.webhooks import WebhookNotifier


@dataclass
class Container:
    settings: Settings
    engine: Engine
    jobs: JobStore
    keys: ApiKeyStore
    llm: LLMRepository
    inngest: inngest.Inngest
    events: EventSender
    metrics: Metrics
    service: AgenticService
    runner: JobRunner


def _build_llm(settings: Settings) -> LLMRepository:
    """The provider modules (and their SDKs) load with the first request that needs a provider."""
    from agentic.providers.factory import build_llm_repository

    return build_llm_repository(settings)


def build_container(settings: Settings, *, engine: Engine | None = None) -> Container:
    engine = engine or create_db_engine(settings.database_url, serverless=settings.database_serverless,
                                        pool_size=settings.database_pool_size, echo=settings.database_echo)
    jobs = JobStore(engine)
    llm = LazyLLMRepository(settings.llm_provider, lambda: _build_llm(settings))
    client = create_inngest_client(settings)
    events = InngestEventSender(client, timeout=settings.event_send_timeout)
    metrics = Metrics(jobs.counts_by_status)
    notifier = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        notifier = WebhookNotifier(str(settings.webhook_url), settings.webhook_secret.get_secret_value(),
                                   timeout=settings.webhook_timeout)
    service = create_agentic_service(settings, llm=llm, store=jobs, events=events)
    runner = JobRunner(store=jobs, llm=llm, metrics=metrics, preview_model=settings.preview_model,
                       progress_interval=settings.progress_flush_seconds, notifier=notifier)
    keys = ApiKeyStore(engine, cache=key_cache_for(engine, serverless=settings.database_serverless,
                                                   listen_url=settings.database_listen_url))
    return Container(settings=settings, engine=engine, jobs=jobs, keys=keys, llm=llm,
                     inngest=client, events=events, metrics=metrics, service=service, runner=runner)
