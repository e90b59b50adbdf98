"""4. Step overhead: /api/inngest executing one step of llm-generate (mock provider, zero latency) against a
minimal inngest-py function with one no-op step; both signed, production mode, driven over the executor's
HTTP protocol. Goal: within 1.3x plus the job row's own work, which is measured alone too."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import inngest
import inngest.flask
from flask import Flask

from agentic.bootstrap import build_container
from agentic.config import load_settings
from agentic.domain.jobs import JobKind
from agentic.inngest.events import EVENT_GENERATE
from agentic.runner import JobRunner
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from agentic.web.app import create_app
from bench.context import Context
from bench.executor import Executor, StepTiming
from bench.paths import PathSpec
from bench.paths.enqueue import SLOW_MODEL, STORED_REQUEST
from bench.results import Measurement, info
from bench.stats import Latency, timed

GOAL = 1.3
SIGNING_KEY = "signkey-test-0123456789abcdef"
BASELINE_APP_ID = "bench-baseline"
USER = "bench-steps"
WARMUP = 3
#: llm-generate's steps, each against the baseline's one no-op step; then the request that returns. One
#: step: it starts the job, calls the provider and completes the job (no WEBHOOK_URL, so no notify-client).
OUR_STEPS = ("call-llm",)


def baseline_app() -> Flask:
    """The least an inngest-py app can be: one function, one step that does nothing."""
    client = inngest.Inngest(app_id=BASELINE_APP_ID, is_production=True, signing_key=SIGNING_KEY,
                             event_key="bench", logger=logging.getLogger("bench.baseline"))

    @client.create_function(fn_id="noop", trigger=inngest.TriggerEvent(event="bench/noop"))
    def noop(ctx: inngest.ContextSync) -> None:
        ctx.step.run("noop", _nothing)

    app = Flask("bench-baseline")
    inngest.flask.serve(app, client, [noop])
    return app


def _nothing() -> None:
    return None


def ours_app(ctx: Context) -> tuple[Flask, JobRunner]:
    settings = load_settings(database_url=ctx.db.url, inngest_dev="0", inngest_signing_key=SIGNING_KEY,
                             inngest_event_key="bench", llm_provider="mock", mock_latency_ms=0, use_queue=True,
                             inngest_event_api_base_url=ctx.stand_ins.url)
    container = build_container(settings)
    return create_app(settings, container=container), container.runner


def event(name: str, job_id: str) -> dict[str, Any]:
    return {"name": name, "data": {"job_id": job_id, "user_id": USER}, "id": job_id,
            "ts": int(time.time() * 1000)}


class _Samples:
    def __init__(self) -> None:
        self.ours: dict[str, list[float]] = {name: [] for name in (*OUR_STEPS, "return")}
        self.baseline: dict[str, list[float]] = {"step": [], "return": []}
        self.rows: dict[str, list[float]] = {name: [] for name in OUR_STEPS}

    def add_ours(self, timings: list[StepTiming]) -> None:
        names = [t.name or "return" for t in timings]
        if names != [*OUR_STEPS, "return"]:
            raise RuntimeError(f"llm-generate ran {names}, expected {[*OUR_STEPS, 'return']}")
        for timing, name in zip(timings, names, strict=True):
            self.ours[name].append(timing.seconds)

    def add_baseline(self, timings: list[StepTiming]) -> None:
        if [t.op for t in timings] != ["StepRun", "return"]:
            raise RuntimeError(f"the baseline ran {[t.op for t in timings]}")
        self.baseline["step"].append(timings[0].seconds)
        self.baseline["return"].append(timings[1].seconds)


def run(ctx: Context) -> list[Measurement]:
    app, runner = ours_app(ctx)
    store: JobStore = runner.store
    ours = Executor(app.test_client(), "agentic", SIGNING_KEY)
    baseline = Executor(baseline_app().test_client(), BASELINE_APP_ID, SIGNING_KEY)
    samples = _Samples()

    def new_job() -> str:
        job, _ = store.create(kind=JobKind.GENERATE, user_id=USER, request=STORED_REQUEST, model=SLOW_MODEL,
                              provider="mock")
        return job.id

    for index in range(WARMUP + ctx.sizes.step_runs):
        measured = index >= WARMUP
        job_id = new_job()
        ours_run = ours.run("llm-generate", event(EVENT_GENERATE, job_id), f"run-{job_id}")
        if ours_run.output.get("status") != "completed":
            raise RuntimeError(f"llm-generate ended with {ours_run.output!r}")
        base_run = baseline.run("noop", event("bench/noop", job_id), f"base-{job_id}")
        bare_id = new_job()  # the same work without Inngest: the runner's call, one per step
        bare = [timed(partial(runner.advance, GENERATE, bare_id, 0))]
        if measured:
            samples.add_ours(ours_run.requests)
            samples.add_baseline(base_run.requests)
            for name, seconds in zip(OUR_STEPS, bare, strict=True):
                samples.rows[name].append(seconds)
    return _measurements(ctx.db.name, samples)


def _measurements(db: str, samples: _Samples) -> list[Measurement]:
    base_step = Latency.of(samples.baseline["step"])
    rows: list[Measurement] = []
    for name in OUR_STEPS:
        ours = Latency.of(samples.ours[name])
        work = Latency.of(samples.rows[name])
        allowed = GOAL * base_step.p50 + work.p50
        overhead = (ours.p50 - work.p50) / base_step.p50
        rows.append(Measurement(
            "step", f"{name} step, p50", db, "ms", ours.ms("p50"), base_step.ms("p50"),
            goal=f"<= {GOAL:g}x + row work", met=ours.p50 <= allowed,
            note=f"row work alone {work.ms('p50'):.2f} ms; (ours - row work) / baseline = {overhead:.2f}x; "
                 f"p99 {ours.ms('p99'):.2f} vs {base_step.ms('p99'):.2f} ms"))
    ours_return, base_return = Latency.of(samples.ours["return"]), Latency.of(samples.baseline["return"])
    final = Measurement("step", "final request (function returns), p50", db, "ms", ours_return.ms("p50"),
                        base_return.ms("p50"), goal=f"<= {GOAL:g}x", note="no step runs; all memoised")
    final.met = final.ratio is not None and final.ratio <= GOAL
    rows.append(final)
    for name in OUR_STEPS:
        work = Latency.of(samples.rows[name])
        rows.append(info(Measurement("step", f"row work alone: runner for {name}, p50", db, "ms",
                                     work.ms("p50"), note="the runner's call without Inngest")))
    return rows


SPEC = PathSpec("step", "Step overhead: one llm-generate step vs a no-op inngest-py step", run)
