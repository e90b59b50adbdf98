"""The composition root: settings -> engine, stores, provider, Inngest client, service, runner.

The web app, the CLI and the serverless entry (``app.py``) all build what they need here. Nothing here does
I/O: the provider is built on first use, the database is first connected by the first query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import inngest
from sqlalchemy import Engine

from agentic.config import Settings
from agentic.inngest.client import create_inngest_client
from agentic.inngest.events import EventSender, InngestEventSender
from agentic.metrics import Metrics
from agentic.providers.base import LLMProvider
from agentic.providers.lazy import LazyLLMProvider
from agentic.runner import JobRunner
from agentic.service.reads import JobReads
from agentic.service.submit import AgenticService, create_agentic_service
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
    llm: LLMProvider
    inngest: inngest.Inngest
    events: EventSender
    metrics: Metrics
    reads: JobReads
    service: AgenticService
    runner: JobRunner


def _build_llm(settings: Settings) -> LLMProvider:
    """The provider modules (and their SDKs) load with the first request that needs a provider."""
    from agentic.providers.factory import build_llm_repository

    return build_llm_repository(settings)


def build_container(settings: Settings, *, engine: Engine | None = None) -> Container:
    engine = engine or create_db_engine(settings.database_url, serverless=settings.database_serverless,
                                        pool_size=settings.database_pool_size, echo=settings.database_echo)
    jobs = JobStore(engine)
    llm = LazyLLMProvider(settings.llm_provider, lambda: _build_llm(settings))
    client = create_inngest_client(settings)
    events = InngestEventSender(client, timeout=settings.event_send_timeout)
    metrics = Metrics(jobs.counts_by_status)
    notifier = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        notifier = WebhookNotifier(str(settings.webhook_url), settings.webhook_secret.get_secret_value(),
                                   timeout=settings.webhook_timeout)
    service = create_agentic_service(settings, llm=llm, store=jobs, events=events)
    runner = JobRunner(store=jobs, llm=llm, metrics=metrics, progress_interval=settings.progress_flush_seconds,
                       notifier=notifier, step_budget=settings.step_time_budget_seconds,
                       max_continuations=settings.max_continuations, offload_models=tuple(settings.offload_models))
    keys = ApiKeyStore(engine, cache=key_cache_for(engine, serverless=settings.database_serverless,
                                                   listen_url=settings.database_listen_url))
    return Container(settings=settings, engine=engine, jobs=jobs, keys=keys, llm=llm,
                     inngest=client, events=events, metrics=metrics, reads=service.reads, service=service,
                     runner=runner)


def inngest_functions(container: Container) -> list[inngest.Function[Any]]:
    """The Inngest functions for ``container``: one per job kind (agentic.service.kinds), cancel and cleanup.

    They live in the top-level ``functions/`` folder, which depends on this package; this late import, made
    when an app is built, is the one place the package reaches it.
    """
    from agentic.functions import FunctionDeps, build_functions

    return build_functions(container.inngest, FunctionDeps(container.settings, container.runner))
