"""6. Streaming: a long SSE completion from the loopback OpenRouter stand-in, through OpenRouterRepository
with progress saving on (``JobRunner.call_llm`` on a real job row), against reading the same stream with
bare httpx (``iter_lines`` + ``json.loads``). Time (median) and peak memory (tracemalloc) at two lengths.
Goals: time within 1.2x; memory growing with the output no faster than the bare reader's, which keeps only
the text."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from functools import partial

import httpx

from agentic.domain.jobs import JobKind
from agentic.metrics import Metrics
from agentic.providers.openrouter import OpenRouterRepository
from agentic.runner import JobRunner
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from bench.clients import loopback_client
from bench.context import Context
from bench.paths import PathSpec
from bench.results import Measurement, info, within_ratio
from bench.servers import TOKEN
from bench.stats import median, timed

TIME_GOAL = 1.2
MEMORY_GOAL = 1.2
MODEL = "bench/stream"
USER = "bench-stream"
MiB = 1024 * 1024


def bare_read(http: httpx.Client, base_url: str, tokens: int) -> str:
    """The least a client can do: POST, read lines, parse each ``data:`` JSON, keep the text."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "go"}], "stream": True,
            "max_tokens": tokens}
    parts: list[str] = []
    with http.stream("POST", f"{base_url}/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            choices = json.loads(data).get("choices")
            if choices:
                content = choices[0].get("delta", {}).get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


class Ours:
    """``JobRunner.call_llm`` on a processing job whose request asks for ``tokens`` tokens."""

    def __init__(self, ctx: Context) -> None:
        self.store = JobStore(ctx.engine())
        self.repository = ctx.closing(OpenRouterRepository(
            "bench-key", base_url=ctx.stand_ins.chat_base_url, referer="https://bench.invalid",
            title="agentic-bench", connect_timeout=5, read_timeout=60))
        self.runner = JobRunner(store=self.store, llm=self.repository, metrics=Metrics())

    def prepare(self, tokens: int) -> str:
        request = {"model": MODEL, "messages": [{"role": "user", "content": "go"}], "max_tokens": tokens}
        job, _ = self.store.create(kind=JobKind.GENERATE, user_id=USER, request=request, model=MODEL,
                                   provider="openrouter")
        self.store.start(job.id)
        return job.id

    def call(self, job_id: str) -> None:
        summary = self.runner.call(GENERATE, job_id)
        if summary.get("outcome") != "generated":
            raise RuntimeError(f"call_llm said {summary!r}")

    def check(self, job_id: str, tokens: int) -> None:
        job = self.store.get(job_id)
        content = (job.response or {}).get("content") if job else None
        if content != TOKEN * tokens:
            raise RuntimeError(f"job {job_id} holds {len(content or '')} characters, expected {4 * tokens}")


def _peak(call: Callable[[], object]) -> float:
    """Peak traced memory while ``call`` runs, above what was allocated before it, in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return float(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


def run(ctx: Context) -> list[Measurement]:
    ours = Ours(ctx)
    http = ctx.closing(loopback_client())  # one keep-alive client, as the repository keeps one
    base_url = ctx.stand_ins.chat_base_url
    small, large = ctx.sizes.stream_tokens
    warm = ours.prepare(200)  # connections, the engine and caches are set up before anything is measured
    ours.call(warm)
    bare_read(http, base_url, 200)
    rows: list[Measurement] = []
    peaks: dict[tuple[str, int], float] = {}
    for tokens in (small, large):
        times: dict[str, list[float]] = {"ours": [], "bare": []}
        for index in range(ctx.sizes.stream_repeats):
            job_id = ours.prepare(tokens)
            runs: list[tuple[str, Callable[[], object]]] = [
                ("ours", partial(ours.call, job_id)), ("bare", partial(bare_read, http, base_url, tokens))]
            for name, call in runs if index % 2 == 0 else reversed(runs):
                times[name].append(timed(call))
            ours.check(job_id, tokens)
        text = bare_read(http, base_url, tokens)
        if text != TOKEN * tokens:
            raise RuntimeError(f"the bare reader got {len(text)} characters, expected {4 * tokens}")
        job_id = ours.prepare(tokens)
        peaks["ours", tokens] = _peak(partial(ours.call, job_id))
        peaks["bare", tokens] = _peak(partial(bare_read, http, base_url, tokens))
        ours_s, bare_s = median(times["ours"]), median(times["bare"])
        ctx.log(f"stream {tokens} tokens: ours {ours_s:.3f} s, bare {bare_s:.3f} s; peak ours "
                f"{peaks['ours', tokens] / MiB:.1f} MiB, bare {peaks['bare', tokens] / MiB:.1f} MiB")
        label = f"{tokens:,} tokens"
        rows.append(within_ratio(Measurement(
            "streaming", f"time, {label}", ctx.db.name, "ms", ours_s * 1000, bare_s * 1000,
            note=f"median of {len(times['ours'])}; {tokens / ours_s:,.0f} tokens/s through ours"), TIME_GOAL))
        rows.append(info(Measurement(
            "streaming", f"peak memory, {label}", ctx.db.name, "MiB", peaks["ours", tokens] / MiB,
            peaks["bare", tokens] / MiB, note=f"tracemalloc peak; the text itself is {4 * tokens / MiB:.2f} MiB")))
    grow = {name: (peaks[name, large] - peaks[name, small]) / (large - small) for name in ("ours", "bare")}
    rows.append(within_ratio(Measurement(
        "streaming", f"memory growth per token, {small:,} -> {large:,}", ctx.db.name, "B/token", grow["ours"],
        grow["bare"], note=f"the text is {len(TOKEN)} B/token; the bare reader keeps the deltas and joins them"),
        MEMORY_GOAL))
    return rows


SPEC = PathSpec("streaming", "Streaming: OpenRouterRepository + progress saving vs bare httpx reading", run)
