"""Queue latency: a queued job with an instant provider answer, driven by a fake executor that waits one
queue tick (``TICK``, Inngest's default 150 ms) before each request, as Inngest's queue does between a
step's answer and the next request. Measured: the requests and the time from the event until the job row is
``completed`` (what the SSE stream then reports as ``done``), against the floor any Inngest app pays on the
same executor: the event until the one step of a bare one-step inngest-py function has run. The SSE
stream's own delay after completion is the delivery path's measurement, not this one's."""

from __future__ import annotations

import time
from collections.abc import Callable

from agentic.domain.jobs import JobKind, JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.jobs import JobStore
from bench.context import Context
from bench.executor import MAX_REQUESTS, Executor
from bench.paths import PathSpec
from bench.paths.enqueue import SLOW_MODEL, STORED_REQUEST
from bench.paths.step import BASELINE_APP_ID, SIGNING_KEY, USER, baseline_app, event, ours_app
from bench.results import Measurement, info
from bench.stats import Latency

GOAL = 1.2
#: The queue hop before each executor request (Inngest's default queue tick).
TICK = 0.150
WARMUP = 2


def drive(executor: Executor, fn_id: str, name: str, run_id: str, job_id: str,
          done: Callable[[], bool]) -> tuple[float, int, int]:
    """Run ``fn_id`` to its end, a tick before each request: (seconds from the event until ``done()`` first
    held after a request, the requests until then, all requests of the run)."""
    steps: dict[str, object] = {}
    stack: list[str] = []
    sent = time.perf_counter()
    reached: tuple[float, int] | None = None
    for request in range(1, MAX_REQUESTS + 1):
        time.sleep(TICK)
        status, answer, _ = executor.post(fn_id, event(name, job_id), steps, stack, run_id)
        if reached is None and done():
            reached = (time.perf_counter() - sent, request)
        if status == 200:
            if reached is None:
                raise RuntimeError(f"{fn_id} returned {answer!r} without reaching done")
            return reached[0], reached[1], request
        if status != 206:
            raise RuntimeError(f"{fn_id} answered {status}: {answer!r}")
        for op in answer:
            steps[op["id"]] = {"data": op.get("data")}
            stack.append(op["id"])
    raise RuntimeError(f"{fn_id} did not finish within {MAX_REQUESTS} requests")


def run(ctx: Context) -> list[Measurement]:
    app, runner = ours_app(ctx)
    store: JobStore = runner.store
    ours = Executor(app.test_client(), "agentic", SIGNING_KEY)
    baseline = Executor(baseline_app().test_client(), BASELINE_APP_ID, SIGNING_KEY)
    ours_done: list[float] = []
    base_done: list[float] = []
    to_done: set[int] = set()
    total: set[int] = set()
    for index in range(WARMUP + ctx.sizes.step_runs // 10):
        job, _ = store.create(kind=JobKind.GENERATE, user_id=USER, request=STORED_REQUEST, model=SLOW_MODEL,
                              provider="mock")

        def completed(job_id: str = job.id) -> bool:
            row = store.get(job_id)
            return row is not None and row.status is JobStatus.COMPLETED

        seconds, requests, all_requests = drive(ours, "llm-generate", EVENT_GENERATE, f"q-{job.id}", job.id,
                                                completed)
        # The bare step runs in the run's first request: the floor is reached after it.
        base_seconds, _, _ = drive(baseline, "noop", "bench/noop", f"qb-{job.id}", job.id, lambda: True)
        if index >= WARMUP:
            ours_done.append(seconds)
            base_done.append(base_seconds)
            to_done.add(requests)
            total.add(all_requests)
    ours_lat, base_lat = Latency.of(ours_done), Latency.of(base_done)
    db = ctx.db.name
    done = Measurement("queue", f"event -> job completed ({TICK * 1000:g} ms tick), p50", db, "ms",
                       ours_lat.ms("p50"), base_lat.ms("p50"), goal=f"<= {GOAL:g}x",
                       note=f"requests to completed: {sorted(to_done)}; in the run: {sorted(total)}; "
                            f"baseline: event -> the one step of a bare inngest-py function ran")
    done.met = done.ratio is not None and done.ratio <= GOAL
    return [done, info(Measurement("queue", "event -> job completed, p99", db, "ms", ours_lat.ms("p99"),
                                   base_lat.ms("p99"), note=f"{len(ours_done)} runs"))]


SPEC = PathSpec("queue", "Queue latency: event -> job completed under a ticking executor vs a bare step", run)
