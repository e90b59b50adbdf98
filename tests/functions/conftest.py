"""Fixtures for the Inngest function tests: the real store (SQLite and PostgreSQL), real providers with
only the HTTP edge mocked (respx), the functions under ``inngest.experimental.mocked``, and the whole app
in production mode behind a fake executor."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import inngest
import pytest
import respx
from flask import Flask
from inngest.experimental import mocked
from sqlalchemy import Engine, update

from agentic.config import Settings, load_settings
from agentic.domain.jobs import Job, JobKind
from agentic.functions import FunctionDeps, build_functions
from agentic.inngest.client import create_inngest_client
from agentic.inngest.events import EVENT_CANCEL, EVENT_GENERATE, EVENT_PREVIEW
from agentic.metrics import Metrics
from agentic.providers.base import LLMProvider
from agentic.providers.openrouter import OpenRouterRepository
from agentic.runner import JobRunner
from agentic.store.jobs import JobStore
from agentic.store.tables import JobRow
from agentic.web.app import create_app
from agentic.webhooks import WebhookNotifier
from tests.functions.executor import FakeExecutor, Run, make_event

SIGNING_KEY = "signkey-test-0123456789abcdef"
OPENROUTER_KEY = "sk-or-v1-test0123456789"
OPENROUTER_BASE = "https://openrouter.test/api/v1"
CHAT_URL = f"{OPENROUTER_BASE}/chat/completions"
WEBHOOK_URL = "https://receiver.test/hooks/agentic"
WEBHOOK_SECRET = "whsec-test-secret"
MODEL = "openai/gpt-4o-mini"
PREVIEW_MODEL = "openai/gpt-4.1-nano"
USER = "user-1"

EVENT_FOR_FUNCTION = {"llm-generate": EVENT_GENERATE, "preview-generate": EVENT_PREVIEW,
                      "llm-cancel": EVENT_CANCEL}


# ---- provider HTTP edge ------------------------------------------------------------------------------


def sse_chunks(*deltas: str, finish: str | None = "stop", usage: tuple[int, int] | None = (12, 5),
               model: str = MODEL) -> list[bytes]:
    """OpenRouter's stream for ``deltas``: one SSE event per delta, then the finish reason and usage."""
    events: list[dict[str, Any]] = [
        {"id": "gen-1", "model": model, "choices": [{"index": 0, "delta": {"content": d}}]} for d in deltas]
    if finish is not None:
        events.append({"id": "gen-1", "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage is not None:
        events.append({"id": "gen-1", "model": model, "choices": [],
                       "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                 "total_tokens": sum(usage)}})
    chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
    if finish is not None:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


def sse_response(chunks: Iterable[bytes]) -> httpx.Response:
    """A 200 streamed lazily: the provider reads chunk by chunk, so a generator sees how far it got."""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def error_response(status: int, message: str = "upstream trouble", headers: Mapping[str, str] | None = None
                   ) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": message}}, headers=headers)


def sent_bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


@pytest.fixture
def respx_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def chat_route(respx_mock: respx.MockRouter) -> respx.Route:
    """OpenRouter's chat completions endpoint; set ``side_effect`` or ``return_value`` per test."""
    return respx_mock.post(CHAT_URL)


@pytest.fixture
def openrouter() -> Iterator[OpenRouterRepository]:
    repository = OpenRouterRepository(OPENROUTER_KEY, base_url=OPENROUTER_BASE, referer="https://tests.local",
                                      title="agentic-tests", connect_timeout=2, read_timeout=5)
    yield repository
    repository.close()


# ---- jobs --------------------------------------------------------------------------------------------


def chat_request(prompt: str = "Say hello") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "model": MODEL}


def create_generate_job(store: JobStore, prompt: str = "Say hello", *, user_id: str = USER,
                        provider: str = "openrouter") -> Job:
    job, _ = store.create(kind=JobKind.GENERATE, user_id=user_id, request=chat_request(prompt), model=MODEL,
                          provider=provider)
    return job


def create_preview_job(store: JobStore, content: str, *, title: str = "Release notes", user_id: str = USER
                       ) -> Job:
    job, _ = store.create(kind=JobKind.PREVIEW, user_id=user_id, request={"title": title, "content": content},
                          model=PREVIEW_MODEL, provider="openrouter")
    return job


def set_times(engine: Engine, job_id: str, **times: datetime) -> None:
    """Move a job's timestamps (test setup for retention and stuck-job sweeps)."""
    table = JobRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == job_id).values(**times))


def reload(store: JobStore, job: Job | str) -> Job:
    found = store.get(job if isinstance(job, str) else job.id)
    assert found is not None
    return found


# ---- settings ----------------------------------------------------------------------------------------


@pytest.fixture
def make_settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    for variable in ("WEBHOOK_URL", "WEBHOOK_SECRET", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK",
                     "INNGEST_EVENT_KEY", "LLM_PROVIDER", "OPENROUTER_API_KEY", "INNGEST_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": database_url, "llm_provider": "mock", "inngest_dev": "1",
                                  "progress_flush_seconds": 0.0, "preview_model": PREVIEW_MODEL,
                                  "database_serverless": True,
                                  # Streaming tests use OpenAI model ids; the offload tests set their own list.
                                  "offload_models": ""}
        values.update(overrides)
        return load_settings(**values)

    return make


# ---- the functions under inngest.experimental.mocked -----------------------------------------------


@dataclass
class Harness:
    """The real functions, runner and store; only ``mocked`` stands in for the executor."""

    store: JobStore
    runner: JobRunner
    functions: dict[str, inngest.Function[Any]]
    client: mocked.Inngest

    def trigger(self, fn_id: str, data: Mapping[str, Any] | None = None, *, event: str | None = None) -> Any:
        name = event or EVENT_FOR_FUNCTION.get(fn_id, "inngest/scheduled.timer")
        return mocked.trigger(self.functions[fn_id], inngest.Event(name=name, data=dict(data or {})),
                              self.client)

    def run_job(self, fn_id: str, job: Job) -> Any:
        return self.trigger(fn_id, {"job_id": job.id, "user_id": job.user_id})

    def cancel(self, job: Job) -> Any:
        return self.trigger("llm-cancel", {"job_id": job.id, "user_id": job.user_id})

    def job(self, job: Job | str) -> Job:
        return reload(self.store, job)


@pytest.fixture
def make_harness(store: JobStore, make_settings: Callable[..., Settings]) -> Callable[..., Harness]:
    def make(llm: LLMProvider, *, notifier: WebhookNotifier | None = None, **overrides: Any) -> Harness:
        settings = make_settings(**overrides)
        runner = JobRunner(store=store, llm=llm, metrics=Metrics(store.counts_by_status), progress_interval=0.0,
                           notifier=notifier)
        client = create_inngest_client(settings)
        functions = {fn.local_id: fn for fn in build_functions(client, FunctionDeps(settings, runner))}
        return Harness(store, runner, functions, mocked.Inngest(app_id="agentic-test"))

    return make


# ---- the app in production mode, behind a fake executor ---------------------------------------------


@dataclass
class AppHarness:
    app: Flask
    settings: Settings
    store: JobStore
    executor: FakeExecutor

    def generate(self, job: Job, *, run_id: str | None = None, event_id: str = "") -> Run:
        event = make_event(EVENT_GENERATE, {"job_id": job.id, "user_id": job.user_id}, event_id=event_id)
        kwargs = {"run_id": run_id} if run_id else {}
        return self.executor.start("llm-generate", event, retries=3, **kwargs)

    def preview(self, job: Job) -> Run:
        event = make_event(EVENT_PREVIEW, {"job_id": job.id, "user_id": job.user_id})
        return self.executor.start("preview-generate", event, retries=2)

    def cancel(self, job: Job) -> Run:
        event = make_event(EVENT_CANCEL, {"job_id": job.id, "user_id": job.user_id})
        return self.executor.drive("llm-cancel", event, retries=3)

    def job(self, job: Job | str) -> Job:
        return reload(self.store, job)


@pytest.fixture
def make_app(make_settings: Callable[..., Settings], engine: Engine, store: JobStore
             ) -> Callable[..., AppHarness]:
    """``create_app`` in production mode: INNGEST_DEV=0 and a signing key, so every call must be signed."""

    def make(**overrides: Any) -> AppHarness:
        # Progress is flushed (and cancellation checked) at the default pace unless a test says otherwise.
        settings = make_settings(**{"inngest_dev": "0", "inngest_signing_key": SIGNING_KEY,
                                    "progress_flush_seconds": 0.25, **overrides})
        app = create_app(settings)
        return AppHarness(app, settings, store, FakeExecutor(app.test_client(), SIGNING_KEY))

    return make


@pytest.fixture
def openrouter_settings() -> dict[str, Any]:
    """Overrides that make the app's provider the real OpenRouter repository (HTTP edge mocked by respx)."""
    return {"llm_provider": "openrouter", "openrouter_api_key": OPENROUTER_KEY,
            "openrouter_base_url": OPENROUTER_BASE, "provider_read_timeout": 5.0}
