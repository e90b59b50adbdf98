"""2. Poll: GET /api/jobs/<id> against a bare Flask route returning constant JSON through the same
server. Goal: within 2x."""

from __future__ import annotations

from agentic.domain.jobs import JobKind
from agentic.domain.llm import Usage
from agentic.store.jobs import JobStore
from bench.appserver import CONST_PATH
from bench.clients import api_key, request_factory
from bench.context import Context
from bench.load import interleaved
from bench.paths import PathSpec
from bench.results import Measurement, within_ratio

GOAL = 2.0
USER = "bench-poller"


def completed_job(store: JobStore, user_id: str) -> str:
    """A finished job with a typical response, as a client polls it."""
    request = {"model": "mock-slow-bench", "messages": [{"role": "user", "content": "Say something."}]}
    job, _ = store.create(kind=JobKind.GENERATE, user_id=user_id, request=request, model="mock-slow-bench",
                          provider="mock")
    store.start(job.id)
    text = " ".join(["token"] * 64)
    response = {"id": "mock-1", "model": "mock-slow-bench", "content": text, "finish_reason": "stop",
                "provider": "mock", "usage": {"prompt_tokens": 4, "completion_tokens": 64, "total_tokens": 68}}
    store.complete(job.id, response, Usage.of(4, 64))
    return job.id


def run(ctx: Context) -> list[Measurement]:
    sizes = ctx.sizes
    server = ctx.app_server()
    engine = ctx.engine()
    token = api_key(engine, USER)
    job_id = completed_job(JobStore(engine), USER)
    ours_factory = request_factory(server.url, "GET", f"/api/jobs/{job_id}", expect=200, token=token)
    bare_factory = request_factory(server.url, "GET", CONST_PATH, expect=200)
    rows: list[Measurement] = []
    for clients in sizes.poll_clients:
        results = interleaved({"bare": bare_factory, "ours": ours_factory}, rounds=sizes.load_rounds,
                              clients=clients, duration=sizes.load_seconds,
                              max_requests=sizes.load_max_requests, warmup=sizes.load_warmup)
        ours, bare = results["ours"], results["bare"]
        ctx.log(f"poll x{clients}: ours {ours.throughput:.0f} req/s p99 {ours.latency.ms('p99'):.1f} ms, "
                f"bare {bare.throughput:.0f} req/s p99 {bare.latency.ms('p99'):.1f} ms")
        case = f"{clients} client{'s' if clients > 1 else ''}"
        rows += [
            within_ratio(Measurement("poll", f"throughput, {case}", ctx.db.name, "req/s", ours.throughput,
                                     bare.throughput, lower_is_better=False,
                                     note=f"{ours.requests} requests vs {bare.requests} bare"), GOAL),
            within_ratio(Measurement("poll", f"p99 latency, {case}", ctx.db.name, "ms", ours.latency.ms("p99"),
                                     bare.latency.ms("p99")), GOAL),
        ]
    return rows


SPEC = PathSpec("poll", "Poll: GET /api/jobs/<id> vs a bare Flask route, same server", run)
