"""``python -m bench.ab --candidate DIR``: before/after of a proposed fix, measured side by side.

A is the working tree; B is the same with DIR (a copy of ``src/`` holding the fix) first on PYTHONPATH. Both
run against the same database and stand-ins at the same time, and their rounds alternate, so load on a
shared machine falls on both alike. HTTP paths (enqueue, poll) go through two app servers; in-process
paths (step, streaming) run in two child processes driven in lockstep. Each row also shows the bare
baseline of the main suite, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from agentic.domain.jobs import JobKind
from agentic.inngest.events import EVENT_GENERATE
from agentic.service.kinds import GENERATE
from agentic.store.jobs import JobStore
from bench.appserver import CONST_PATH, AppServer, ServerOptions, server_env
from bench.clients import api_key, loopback_client, request_factory
from bench.context import Context, log
from bench.databases import DEFAULT_PG_URL, Database, postgres_database, sqlite_database
from bench.executor import Executor
from bench.load import interleaved
from bench.paths import enqueue, poll, step, streaming
from bench.proc import spawn, stop
from bench.servers import StandIns
from bench.sizes import DEFAULT
from bench.stats import timed

ROOT = Path(__file__).resolve().parent.parent
Row = tuple[str, str, str, float | None, float, float]  # path, case, unit, bare, A, B


def _env_b(candidate: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(candidate), os.environ.get("PYTHONPATH", "")]))}


# ---- HTTP paths: two servers -----------------------------------------------------------------------------


def http_rows(db: Database, stand_ins: StandIns, candidate: Path, workdir: Path, args: argparse.Namespace
              ) -> list[Row]:
    options = ServerOptions(workers=2)  # agentic serve's default, said outright for a candidate from before it
    servers = {name: AppServer(server_env(db.url, stand_ins.url, **extra), options, workdir / f"ab-{name}.log")
               for name, extra in (("A", {}), ("B", _env_b(candidate)))}
    ctx = Context(sizes=DEFAULT, db=db, stand_ins=stand_ins, workdir=workdir)
    try:
        for server in servers.values():
            server.wait_ready()
        engine = ctx.engine(pool_size=32)
        token = api_key(engine, enqueue.USER)
        job_id = poll.completed_job(JobStore(engine), enqueue.USER)
        event_url = f"{stand_ins.url}/e/{enqueue.DEV_EVENT_KEY}"
        rows: list[Row] = []
        for clients in args.clients:
            load = {"rounds": args.rounds, "clients": clients, "duration": args.seconds, "max_requests": 100_000}
            factories = {"bare": enqueue.bare_factory(engine, event_url)} | {
                name: request_factory(s.url, "POST", "/api/llm/generate", expect=202, token=token, json=enqueue.BODY)
                for name, s in servers.items()}
            r = interleaved(factories, **load)
            rows += [("enqueue", f"throughput, {clients} clients", "req/s", r["bare"].throughput,
                      r["A"].throughput, r["B"].throughput),
                     ("enqueue", f"p50 latency, {clients} clients", "ms", r["bare"].latency.ms("p50"),
                      r["A"].latency.ms("p50"), r["B"].latency.ms("p50")),
                     ("enqueue", f"p99 latency, {clients} clients", "ms", r["bare"].latency.ms("p99"),
                      r["A"].latency.ms("p99"), r["B"].latency.ms("p99"))]
            factories = {"bare": request_factory(servers["A"].url, "GET", CONST_PATH, expect=200)} | {
                name: request_factory(s.url, "GET", f"/api/jobs/{job_id}", expect=200, token=token)
                for name, s in servers.items()}
            r = interleaved(factories, **load)
            rows += [("poll", f"throughput, {clients} clients", "req/s", r["bare"].throughput,
                      r["A"].throughput, r["B"].throughput),
                     ("poll", f"p50 latency, {clients} clients", "ms", r["bare"].latency.ms("p50"),
                      r["A"].latency.ms("p50"), r["B"].latency.ms("p50")),
                     ("poll", f"p99 latency, {clients} clients", "ms", r["bare"].latency.ms("p99"),
                      r["A"].latency.ms("p99"), r["B"].latency.ms("p99"))]
            log(f"{db.name}: A/B at {clients} clients done")
        return rows
    finally:
        ctx.close()
        for server in servers.values():
            server.close()


# ---- in-process paths: two children in lockstep ----------------------------------------------------------


class Child:
    def __init__(self, kind: str, db: Database, stand_ins: StandIns, extra_env: dict[str, str],
                 tokens: int) -> None:
        env = {**os.environ, **extra_env}
        self.process = spawn([sys.executable, "-m", "bench.ab", "child", kind, db.name, db.url, stand_ins.url,
                              str(tokens)], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, count: int) -> dict[str, list[float]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("an A/B child died; see its output above")
        result: dict[str, list[float]] = json.loads(line)
        return result

    def close(self) -> None:
        stop(self.process)


def lockstep_rows(kind: str, db: Database, stand_ins: StandIns, candidate: Path, args: argparse.Namespace
                  ) -> list[Row]:
    children = {"A": Child(kind, db, stand_ins, {}, args.tokens),
                "B": Child(kind, db, stand_ins, _env_b(candidate), args.tokens)}
    samples: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    try:
        for child in children.values():
            child.run(2)  # warm-up
        per_round = 1 if kind == "stream" else max(1, args.step_runs // args.rounds)
        for index in range(args.rounds):
            for name in ("A", "B") if index % 2 == 0 else ("B", "A"):
                for key, values in children[name].run(per_round).items():
                    samples[name].setdefault(key, []).extend(values)
    finally:
        for child in children.values():
            child.close()

    def med(name: str, key: str) -> float:
        return statistics.median(samples[name][key]) * 1000

    if kind == "stream":
        return [("streaming", f"time, {args.tokens:,} tokens", "ms", med("A", "bare"), med("A", "ours"),
                 med("B", "ours"))]
    return [("step", f"{name} step, p50", "ms", med("A", "baseline"), med("A", name), med("B", name))
            for name in step.OUR_STEPS] + [
        ("step", f"row work alone: {name}, p50", "ms", None, med("A", f"row:{name}"), med("B", f"row:{name}"))
        for name in step.OUR_STEPS]


def child_main(kind: str, db_name: str, url: str, stand_ins_url: str, tokens: int) -> None:
    """Serve ``N`` lines on stdin: run N iterations, answer one JSON line of samples (seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        ctx = Context(sizes=DEFAULT, db=Database(db_name, url, ""), stand_ins=StandIns.attach(stand_ins_url),
                      workdir=Path(folder))
        iterate = _step_iterations(ctx) if kind == "step" else _stream_iterations(ctx, tokens)
        for line in sys.stdin:
            result: dict[str, list[float]] = {}
            for _ in range(int(line)):
                for key, value in next(iterate).items():
                    result.setdefault(key, []).append(value)
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
        ctx.close()


def _step_iterations(ctx: Context) -> Iterator[dict[str, float]]:
    app, runner = step.ours_app(ctx)
    ours = Executor(app.test_client(), "agentic", step.SIGNING_KEY)
    base = Executor(step.baseline_app().test_client(), step.BASELINE_APP_ID, step.SIGNING_KEY)

    def new_job() -> str:
        job, _ = runner.store.create(kind=JobKind.GENERATE, user_id=step.USER, request=enqueue.STORED_REQUEST,
                                     model=enqueue.SLOW_MODEL, provider="mock")
        return job.id

    while True:
        job_id = new_job()
        ours_run = ours.run("llm-generate", step.event(EVENT_GENERATE, job_id), f"run-{job_id}")
        base_run = base.run("noop", step.event("bench/noop", job_id), f"base-{job_id}")
        bare_id = new_job()
        result = {t.name or "return": t.seconds for t in ours_run.requests}
        result["baseline"] = base_run.requests[0].seconds
        for name, call in zip(step.OUR_STEPS, (partial(runner.advance, GENERATE, bare_id, 0),), strict=True):
            result[f"row:{name}"] = timed(call)
        yield result


def _stream_iterations(ctx: Context, tokens: int) -> Iterator[dict[str, float]]:
    ours = streaming.Ours(ctx)
    http = ctx.closing(loopback_client())
    base_url = ctx.stand_ins.chat_base_url
    while True:
        job_id = ours.prepare(tokens)
        yield {"ours": timed(partial(ours.call, job_id)),
               "bare": timed(partial(streaming.bare_read, http, base_url, tokens))}


# ---- main ------------------------------------------------------------------------------------------------


@contextmanager
def _database(name: str, pg_url: str) -> Iterator[Database]:
    with (sqlite_database() if name == "sqlite" else postgres_database(pg_url)) as db:
        yield db


def table(rows: list[tuple[str, Row]]) -> str:
    lines = ["| db | path | case | unit | bare baseline | A: working tree | B: candidate | B vs A |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for db, (path, case, unit, bare, a, b) in rows:
        change = (b / a if unit == "req/s" else a / b) if a and b else 0.0
        shown = "-" if bare is None else f"{bare:,.2f}"
        lines.append(f"| {db} | {path} | {case} | {unit} | {shown} | {a:,.2f} | {b:,.2f} | {change:.2f}x faster |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        child_main(argv[1], argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidate", type=Path, required=True, help="a copy of src/ holding the fix")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG_URL)
    parser.add_argument("--only", default="http,step,stream")
    parser.add_argument("--clients", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6.0, help="per contender and level, over all rounds")
    parser.add_argument("--step-runs", type=int, default=120)
    parser.add_argument("--tokens", type=int, default=100_000)
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    rows: list[tuple[str, Row]] = []
    with ExitStack() as stack:
        stand_ins = stack.enter_context(StandIns.start())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentic-ab-")))
        for name in args.db.split(","):
            with _database(name, args.pg_url) as db:
                if "http" in only:
                    rows += [(name, r) for r in http_rows(db, stand_ins, args.candidate.resolve(), workdir, args)]
                for kind in ("step", "stream"):
                    if kind in only:
                        rows += [(name, r) for r in lockstep_rows(kind, db, stand_ins, args.candidate.resolve(),
                                                                  args)]
                        log(f"{name}: A/B {kind} done")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
