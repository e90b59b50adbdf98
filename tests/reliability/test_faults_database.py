"""Database faults (PostgreSQL): connections killed under a step, dropped between steps, the server cut off.

The app is the production one behind the signed fake executor, with a connection pool (pre-ping), the real
OpenRouter repository behind respx. Each fault ends with the job completed once: a step whose statement
died is retried and the retry neither duplicates streamed text nor leaves a half-written row; while the
database is unreachable, requests are refused with 503 database_unavailable, nothing is stored and no event
is sent, and the same app serves again as soon as the database is back.

Covered elsewhere: an app whose database never answers (tests/web/test_api_operations.py::
test_a_database_outage_is_503_database_unavailable, ::test_health_is_503_when_the_database_is_down), the
SSE listener reconnecting (tests/web/test_store_watch.py::test_the_listener_reconnects_after_losing_its_connection).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import respx
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.jobs import JobStore
from agentic.store.tables import JobRow
from agentic.web.app import container_of
from tests.functions.conftest import AppHarness, create_generate_job, sse_chunks, sse_response
from tests.functions.executor import Op, RunStatus
from tests.reliability.support import (
    ConnectionKiller,
    EventRecorder,
    TcpProxy,
    backends_named,
    body_of,
    terminate,
    through_proxy,
    with_application_name,
)

MakeApp = Callable[..., AppHarness]

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]

DELTAS = ("Alpha", " beta", " gamma", " delta")
TEXT = "".join(DELTAS)


def _streams(chat_route: respx.Route) -> None:
    """Every call to the provider streams the same answer (a fresh stream each time)."""
    chat_route.side_effect = lambda request: sse_response(sse_chunks(*DELTAS))


def _step_errors(calls: list[Any]) -> list[str]:
    return [name for call in calls for op, name in call.op_names if op == Op.STEP_ERROR]


# The UPDATEs the one call-llm step writes, in order: it starts the job, appends streamed text, saves the
# response, completes the job.
KILL_BEFORE = {
    "call-llm: start": ("started_at=", "call-llm", 1),
    "call-llm: progress write": ("partial_output=(llm_jobs.partial_output", "call-llm", 2),
    "call-llm: saving the response": ("SET response=", "call-llm", 2),
    "call-llm: complete": ("finished_at=", "call-llm", 1),
}


@pytest.mark.parametrize("where", list(KILL_BEFORE))
def test_a_connection_killed_under_a_step_is_retried_and_the_job_completes_once(
        make_app: MakeApp, store: JobStore, database_url: str, chat_route: respx.Route,
        openrouter_settings: dict[str, Any], where: str) -> None:
    statement, step, provider_calls = KILL_BEFORE[where]
    _streams(chat_route)
    harness = make_app(**openrouter_settings, database_serverless=False, progress_flush_seconds=0.0)
    killer = ConnectionKiller(container_of(harness.app).engine, database_url)
    try:
        job = create_generate_job(store)
        killer.arm(statement)

        run = harness.generate(job).finish()
    finally:
        killer.close()

    assert len(killer.killed) == 1, "the armed statement never ran"
    assert _step_errors(run.calls) == [step]  # that step failed once, was retried, and nothing else failed
    assert run.status is RunStatus.COMPLETED and run.output == {"job_id": job.id, "status": "completed"}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.response is not None and done.response["content"] == TEXT
    assert done.partial_output == TEXT  # the dead attempt's text was not kept in front of the retry's
    assert done.attempts == provider_calls and chat_route.call_count == provider_calls
    assert done.finished_at is not None and done.error_code is None


def test_connections_dropped_between_steps_are_replaced_without_a_retry(
        make_app: MakeApp, store: JobStore, database_url: str, chat_route: respx.Route,
        openrouter_settings: dict[str, Any]) -> None:
    _streams(chat_route)
    name = "agentic-rel-" + secrets.token_hex(4)
    harness = make_app(**openrouter_settings, database_serverless=False,
                       database_url=with_application_name(database_url, name))
    admin = create_engine(database_url)
    try:
        job = create_generate_job(store)
        run = harness.generate(job)
        run.advance()  # call-llm (the whole job); its connection goes back to the pool
        pids = backends_named(admin, name)
        assert pids, "the pool kept no connection to drop"
        assert terminate(admin, pids) == len(pids)

        run.finish()
    finally:
        admin.dispose()

    assert _step_errors(run.calls) == []  # pre-ping replaced the dead connections: no step even failed
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.partial_output == TEXT
    assert done.attempts == 1 and chat_route.call_count == 1


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    target = make_url(database_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as running:
        yield running


def _job_rows(harness: AppHarness) -> int:
    with harness.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(JobRow)).scalar_one())


def test_a_database_outage_refuses_requests_sends_nothing_and_recovers(
        make_app: MakeApp, database_url: str, proxy: TcpProxy, recorder: EventRecorder) -> None:
    harness = make_app(database_url=through_proxy(database_url, proxy), database_serverless=False,
                       use_queue=True, inngest_event_key="evt-key-outage",
                       inngest_event_api_base_url=recorder.url, event_send_timeout=2.0, metrics_token="metrics-tok")
    client = harness.app.test_client()
    secret = container_of(harness.app).keys.create("alice").secret
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"model": "mock-slow-1", "messages": [{"role": "user", "content": "before the outage"}]}
    first = client.post("/api/llm/generate", json=body, headers=auth)
    assert first.status_code == 202
    job_id = body_of(first)["job_id"]
    run = harness.executor.start("llm-generate", {"name": EVENT_GENERATE, "data": {"job_id": job_id,
                                 "user_id": "alice"}, "id": job_id, "ts": 0}, retries=3)

    proxy.cut()
    refused: dict[str, int] = {}
    for rule in harness.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "inngest_api":
            continue
        path = rule.rule.replace("<job_id>", job_id)
        headers = {"Authorization": "Bearer metrics-tok"} if rule.endpoint == "api.metrics" else auth
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            response = client.open(path, method=method, headers=headers,
                                   json={**body, "messages": [{"role": "user", "content": "during"}]}
                                   if method == "POST" else None)
            refused[f"{method} {rule.rule}"] = response.status_code
            if rule.endpoint == "api.openapi":  # needs no database
                assert response.status_code == 200
            elif rule.endpoint == "api.metrics":  # a scrape survives a database blink, without the job counts
                assert response.status_code == 200 and "agentic_jobs{" not in response.get_data(as_text=True)
            elif rule.endpoint == "api.health":
                assert response.status_code == 503 and body_of(response)["database"] == {"ok": False}
            else:
                assert response.status_code == 503, (method, rule.rule, response.get_data(as_text=True))
                assert response.mimetype == "application/problem+json"
                assert body_of(response)["code"] == "database_unavailable"
                assert response.headers.get("Retry-After")
    during = run.advance()  # Inngest calls a step meanwhile: it fails and will be retried
    assert during.op_names == [(Op.STEP_ERROR, "call-llm")]
    assert proxy.refused > 0
    assert len(refused) >= 8
    assert [e.id for e in recorder.named(EVENT_GENERATE)] == [job_id]  # nothing sent during the outage

    proxy.restore()
    again = client.post("/api/llm/generate", json={**body, "messages": [{"role": "user", "content": "after"}]},
                        headers=auth)

    assert again.status_code == 202  # the same app, no restart: the pool replaced its dead connections
    assert _job_rows(harness) == 2  # nothing from the outage was stored
    assert [e.id for e in recorder.named(EVENT_GENERATE)] == [job_id, body_of(again)["job_id"]]
    run.finish()
    assert run.output == {"job_id": job_id, "status": "completed"}
    done = harness.job(job_id)
    assert done.status is JobStatus.COMPLETED and done.attempts == 1


def test_a_database_outage_in_the_middle_of_a_stream_is_retried_after_it(
        make_app: MakeApp, store: JobStore, database_url: str, proxy: TcpProxy, chat_route: respx.Route,
        openrouter_settings: dict[str, Any]) -> None:
    chat_route.side_effect = lambda request: sse_response(sse_chunks(*DELTAS))
    harness = make_app(**openrouter_settings, database_url=through_proxy(database_url, proxy),
                       database_serverless=False, progress_flush_seconds=0.0)
    job = create_generate_job(store)
    run = harness.generate(job)

    def outage_after_two_chunks(request: Any) -> Any:
        def chunks() -> Iterator[bytes]:
            for index, chunk in enumerate(sse_chunks(*DELTAS)):
                if index == 2:
                    proxy.cut()
                yield chunk

        return sse_response(chunks())

    chat_route.side_effect = outage_after_two_chunks
    failed = run.advance()

    assert failed.op_names == [(Op.STEP_ERROR, "call-llm")]
    proxy.restore()
    mid = store.get(job.id)
    assert mid is not None and mid.status is JobStatus.PROCESSING and mid.partial_output == "Alpha beta"
    chat_route.side_effect = lambda request: sse_response(sse_chunks(*DELTAS))

    run.finish()

    done = store.get(job.id)
    assert run.output == {"job_id": job.id, "status": "completed"}
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.partial_output == TEXT and done.response is not None and done.response["content"] == TEXT
    assert done.attempts == 2 and chat_route.call_count == 2
