"""3. Result delivery: from the store marking a job completed to a client learning it, over the SSE stream
(GET /api/jobs/<id>/events, ``done``) against the seed design's client polling GET /api/jobs/<id> every
second (really polled, each poller starting at a random phase). Goal on PostgreSQL: SSE p50 < 20 ms and
p99 < 100 ms. On SQLite the stream polls the row every SSE_POLL_SECONDS (no notifications there)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import httpx

from agentic.domain.llm import Usage
from agentic.store.jobs import JobStore
from bench.clients import api_key, loopback_client
from bench.context import Context
from bench.paths import PathSpec
from bench.paths.enqueue import SLOW_MODEL, STORED_REQUEST
from bench.results import Measurement, below, info
from bench.stats import Latency

P50_GOAL_MS = 20.0
P99_GOAL_MS = 100.0
POLL_INTERVAL = 1.0
TRIAL_TIMEOUT = 10.0
WARMUP = 2
USER = "bench-delivery"
RESPONSE = {"id": "mock-1", "model": SLOW_MODEL, "content": "done", "finish_reason": "stop", "provider": "mock",
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def processing_job(store: JobStore) -> str:
    from agentic.domain.jobs import JobKind

    job, _ = store.create(kind=JobKind.GENERATE, user_id=USER, request=STORED_REQUEST, model=SLOW_MODEL,
                          provider="mock")
    store.start(job.id)
    return job.id


def complete(store: JobStore, job_id: str) -> float:
    """Mark the job completed; returns the moment the store was asked to (perf_counter)."""
    began = time.perf_counter()
    if not store.complete(job_id, RESPONSE, Usage.of(3, 1)):
        raise RuntimeError(f"could not complete {job_id}")
    return began


def sse_trial(http: httpx.Client, store: JobStore, job_id: str) -> float:
    """Open the job's stream, wait until it reports `processing`, complete the job, time the `done`."""
    subscribed = threading.Event()
    seen: list[float] = []
    failure: list[BaseException] = []

    def read() -> None:
        try:
            with http.stream("GET", f"/api/jobs/{job_id}/events") as response:
                if response.status_code != 200:
                    raise RuntimeError(f"the event stream answered {response.status_code}")
                for line in response.iter_lines():
                    if line == "event: status":
                        subscribed.set()  # the first status event is sent after the stream subscribed
                    elif line == "event: done":
                        seen.append(time.perf_counter())
                        return
        except BaseException as exc:
            failure.append(exc)
            subscribed.set()

    reader = threading.Thread(target=read, name="bench-sse", daemon=True)
    reader.start()
    if not subscribed.wait(TRIAL_TIMEOUT) or failure:
        raise RuntimeError(f"the event stream did not start: {failure[0] if failure else 'timeout'}")
    # A random moment, as a real job ends: on SQLite this is a random phase of the stream's 0.2 s re-read.
    time.sleep(random.uniform(0.02, 0.25))
    began = complete(store, job_id)
    reader.join(TRIAL_TIMEOUT)
    if not seen:
        raise RuntimeError(f"no `done` within {TRIAL_TIMEOUT:g}s ({failure[0] if failure else 'timeout'})")
    return seen[0] - began


def polling_trials(base_url: str, token: str, store: JobStore, trials: int, window: float) -> list[float]:
    """``trials`` clients polling every second from a random phase; jobs complete at random moments."""
    jobs = [processing_job(store) for _ in range(trials)]
    completed_at: dict[str, float] = {}
    delays: dict[str, float] = {}
    start = time.perf_counter() + 0.2
    horizon = window + POLL_INTERVAL

    def poll(job_id: str) -> None:
        with loopback_client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
            next_poll = start + random.uniform(0, POLL_INTERVAL)
            deadline = start + horizon + 5 * POLL_INTERVAL
            while next_poll < deadline:
                time.sleep(max(0.0, next_poll - time.perf_counter()))
                answer = http.get(f"/api/jobs/{job_id}").json()
                if answer.get("status") == "completed":
                    delays[job_id] = time.perf_counter() - completed_at[job_id]
                    return
                next_poll += POLL_INTERVAL

    pollers = [threading.Thread(target=poll, args=(job_id,), daemon=True) for job_id in jobs]
    for poller in pollers:
        poller.start()
    moments = sorted((start + random.uniform(0.5, horizon - 0.5), job_id) for job_id in jobs)
    for moment, job_id in moments:
        time.sleep(max(0.0, moment - time.perf_counter()))
        completed_at[job_id] = complete(store, job_id)
    for poller in pollers:
        poller.join(horizon + 10 * POLL_INTERVAL)
    if len(delays) != len(jobs):
        raise RuntimeError(f"only {len(delays)} of {len(jobs)} pollers saw their job complete")
    return list(delays.values())


def run(ctx: Context) -> list[Measurement]:
    server = ctx.app_server()
    engine = ctx.engine()
    store = JobStore(engine)
    token = api_key(engine, USER)
    samples: list[float] = []
    with loopback_client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        for index in range(WARMUP + ctx.sizes.sse_trials):
            delay = sse_trial(http, store, processing_job(store))
            if index >= WARMUP:
                samples.append(delay)
    sse = Latency.of(samples)
    polled = Latency.of(polling_trials(server.url, token, store, ctx.sizes.polling_trials,
                                          ctx.sizes.polling_window))
    ctx.log(f"delivery: SSE p50 {sse.ms('p50'):.1f} ms p99 {sse.ms('p99'):.1f} ms; "
            f"1 s polling p50 {polled.ms('p50'):.0f} ms")
    goal: Callable[[Measurement, float], Measurement] = below if ctx.db.is_postgres else \
        (lambda m, _limit: info(m))
    note = "" if ctx.db.is_postgres else "SQLite has no notifications: the stream re-reads every 0.2 s"
    return [
        goal(Measurement("delivery", "SSE `done` after completion, p50", ctx.db.name, "ms", sse.ms("p50"),
                         polled.ms("p50"), note=note or f"{sse.count} trials; baseline: 1 s polling, "
                         f"{polled.count} real pollers"), P50_GOAL_MS),
        goal(Measurement("delivery", "SSE `done` after completion, p99", ctx.db.name, "ms", sse.ms("p99"),
                         polled.ms("p99"), note=note or f"max {sse.ms('max'):.1f} ms"), P99_GOAL_MS),
        info(Measurement("delivery", "SSE `done` after completion, mean", ctx.db.name, "ms", sse.ms("mean"),
                         polled.ms("mean"), note="the seed design's 1 s poll: ~500 ms expected")),
    ]


SPEC = PathSpec("delivery", "Result delivery: SSE `done` vs 1 s polling", run)
