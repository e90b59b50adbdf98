"""1. Enqueue: POST /api/llm/generate for a slow model (row insert + event send), against the same insert
(bare SQLAlchemy Core) and event POST (bare httpx) done in a loop. Goal: within 1.5x."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from agentic.domain.jobs import JobKind, JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.jobs import new_job_id
from agentic.store.tables import JobRow, utcnow
from bench.clients import api_key, loopback_client, request_factory
from bench.context import Context
from bench.load import ClientFactory, interleaved
from bench.paths import PathSpec
from bench.results import Measurement, within_ratio
from bench.stats import LoadResult

GOAL = 1.5
SLOW_MODEL = "mock-slow-bench"  # matches SLOW_MODELS' "mock-slow*": always queued
PROMPT = "Write a haiku about durable job queues."
BODY = {"model": SLOW_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
#: What the service stores as the job's request for BODY (the validated request, without nulls).
STORED_REQUEST = {"messages": [{"role": "user", "content": PROMPT}], "model": SLOW_MODEL}
DEV_EVENT_KEY = "NO_EVENT_KEY_SET"  # the key the SDK uses in dev mode without INNGEST_EVENT_KEY
USER = "bench-user"

_T = JobRow.__table__  # type: ignore[attr-defined]


def bare_factory(engine: Engine, event_url: str) -> ClientFactory:
    """The primitives alone: one Core INSERT of the same row, one POST of the same event."""

    @contextmanager
    def client(index: int) -> Iterator[Callable[[], None]]:
        with loopback_client() as http:
            def call() -> None:
                job_id, now = new_job_id(), utcnow()
                with engine.begin() as conn:
                    conn.execute(_T.insert().values(
                        id=job_id, kind=JobKind.GENERATE.value, user_id=USER, status=JobStatus.PENDING.value,
                        provider="mock", model=SLOW_MODEL, request=STORED_REQUEST, partial_output="",
                        attempts=0, idempotency_key=None, created_at=now, updated_at=now))
                event = {"name": EVENT_GENERATE, "data": {"job_id": job_id, "user_id": USER}, "id": job_id,
                         "ts": int(time.time() * 1000)}
                http.post(event_url, json=[event]).raise_for_status()

            yield call

    return client


def _rows(db: str, clients: int, bare: LoadResult, ours: LoadResult) -> list[Measurement]:
    case = f"{clients} client{'s' if clients > 1 else ''}"
    note = f"{ours.requests} requests ({ours.errors} errors) vs {bare.requests} bare"
    return [
        within_ratio(Measurement("enqueue", f"throughput, {case}", db, "req/s", ours.throughput,
                                 bare.throughput, lower_is_better=False, note=note), GOAL),
        within_ratio(Measurement("enqueue", f"p50 latency, {case}", db, "ms", ours.latency.ms("p50"),
                                 bare.latency.ms("p50")), GOAL),
        within_ratio(Measurement("enqueue", f"p99 latency, {case}", db, "ms", ours.latency.ms("p99"),
                                 bare.latency.ms("p99")), GOAL),
    ]


def run(ctx: Context) -> list[Measurement]:
    sizes = ctx.sizes
    server = ctx.app_server()
    engine = ctx.engine(pool_size=max(sizes.enqueue_clients))
    token = api_key(engine, USER)
    event_url = f"{ctx.stand_ins.url}/e/{DEV_EVENT_KEY}"
    ours_factory = request_factory(server.url, "POST", "/api/llm/generate", expect=202, token=token, json=BODY)
    rows: list[Measurement] = []
    for clients in sizes.enqueue_clients:
        before = ctx.stand_ins.events_received()
        results = interleaved({"ours": ours_factory, "bare": bare_factory(engine, event_url)},
                              rounds=sizes.load_rounds, clients=clients, duration=sizes.load_seconds,
                              max_requests=sizes.load_max_requests, warmup=sizes.load_warmup)
        ours, bare = results["ours"], results["bare"]
        sent = ctx.stand_ins.events_received() - before
        if sent < ours.requests + bare.requests:
            raise RuntimeError(f"{ours.requests + bare.requests} jobs enqueued but only {sent} events "
                               "reached the event API")
        ctx.log(f"enqueue x{clients}: ours {ours.throughput:.0f} req/s p99 {ours.latency.ms('p99'):.1f} ms, "
                f"bare {bare.throughput:.0f} req/s p99 {bare.latency.ms('p99'):.1f} ms")
        rows += _rows(ctx.db.name, clients, bare, ours)
    return rows


SPEC = PathSpec("enqueue", "Enqueue: POST /api/llm/generate (slow model) vs bare insert + event POST", run)
