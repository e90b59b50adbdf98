"""8. Continuation: what splitting one long answer into segments costs (issue 11, STEP_TIME_BUDGET_SECONDS).

The same answer (the mock provider, streaming at a fixed rate, on a real job row) is generated once in one
step and once under a step budget that cuts it into segments, each continued by assistant prefill. Reported:
the wall time of the whole answer, the number of provider requests, and the prompt tokens paid (each
continuation re-sends the prompt plus the text so far). Informational: the cost is the price of outliving a
host's request limit, with no goal of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentic.domain.jobs import JobKind
from agentic.metrics import Metrics
from agentic.providers.mock import MockLLMRepository
from agentic.runner import JobRunner, SoFar
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from bench.context import Context
from bench.paths import PathSpec
from bench.results import Measurement, info
from bench.stats import median, timed

MODEL = "bench/continue"
USER = "bench-continue"
TOKENS_PER_SECOND = 400.0
#: (answer tokens, step budget in seconds): a 2 s answer cut every 0.5 s and every 1 s (--quick: 0.5 s answers).
CASES = ((800, 0.5), (800, 1.0))
QUICK_CASES = ((200, 0.2),)
PROMPT = "Write at length. " * 200  # ~850 prompt tokens by the mock's estimate: each segment re-sends it


@dataclass
class Answer:
    seconds: float
    requests: int
    prompt_tokens: int


class Runner:
    def __init__(self, ctx: Context) -> None:
        self.store = JobStore(ctx.engine())
        self.provider = Counting(tokens_per_second=TOKENS_PER_SECOND)

    def answer(self, tokens: int, budget: float | None) -> Answer:
        runner = JobRunner(store=self.store, llm=self.provider, metrics=Metrics(), step_budget=budget,
                           max_continuations=500)
        request = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens}
        job, _ = self.store.create(kind=JobKind.GENERATE, user_id=USER, request=request, model=MODEL,
                                   provider="mock")
        self.store.start(job.id)
        self.provider.requests = 0

        def run() -> None:
            so_far: SoFar | None = None
            while True:
                summary = runner.call(GENERATE, job.id, 0, so_far)
                if summary["outcome"] != "paused":
                    break
                so_far = summary.get("so_far")
            if summary["outcome"] != "generated":
                raise RuntimeError(f"the answer ended {summary!r}")

        seconds = timed(run)
        done = self.store.get(job.id)
        if done is None or done.response is None or len(done.response["content"].split()) != tokens:
            raise RuntimeError("the joined answer is not the whole answer")
        return Answer(seconds, self.provider.requests, done.prompt_tokens or 0)


class Counting(MockLLMRepository):
    """The mock provider, counting its requests."""

    requests = 0

    def generate(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        self.requests += 1
        return super().generate(*args, **kwargs)  # type: ignore[arg-type]


def run(ctx: Context) -> list[Measurement]:
    ours = Runner(ctx)
    ours.answer(50, None)  # warm up: engine, caches
    rows: list[Measurement] = []
    repeats = max(1, ctx.sizes.stream_repeats // 2)
    for tokens, budget in CASES if ctx.sizes.stream_repeats > 1 else QUICK_CASES:
        whole = [ours.answer(tokens, None) for _ in range(repeats)]
        split = [ours.answer(tokens, budget) for _ in range(repeats)]
        one, many = whole[0], split[0]
        whole_s, split_s = median([a.seconds for a in whole]), median([a.seconds for a in split])
        extra = many.requests - one.requests
        label = f"{tokens} tokens at {TOKENS_PER_SECOND:g}/s, budget {budget:g} s"
        ctx.log(f"continuation {label}: {many.requests} segments {split_s:.3f} s vs one {whole_s:.3f} s; "
                f"prompt tokens {many.prompt_tokens} vs {one.prompt_tokens}")
        rows.append(info(Measurement(
            "continuation", f"time, {label}", ctx.db.name, "ms", split_s * 1000, whole_s * 1000,
            note=f"{many.requests} segments; {(split_s - whole_s) * 1000 / max(extra, 1):.0f} ms per extra "
                 f"segment (median of {repeats})")))
        rows.append(info(Measurement(
            "continuation", f"prompt tokens, {label}", ctx.db.name, "tokens", many.prompt_tokens,
            one.prompt_tokens,
            note=f"+{(many.prompt_tokens - one.prompt_tokens) / max(extra, 1):.0f} per extra segment "
                 "(the prompt again, plus the text so far)")))
    return rows


SPEC = PathSpec("continuation", "Continuation: one answer in segments under a step budget vs in one step", run)
