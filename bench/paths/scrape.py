"""8. Metrics scrape: ``GET /api/metrics`` on a table of 1,000 jobs and on one of 1,000,000 (SQLite: 100,000),
in one run, next to a poll (``GET /api/jobs/<id>``) as the reference that does not depend on the table's size.
Goal: the scrape at the large table within 3x of the small one, and its p99 under 50 ms.

The full ``GROUP BY kind, status`` count the scrape ran before the trigger-kept counters
(store/counts.py) is timed on the same tables, for the before/after. The benchmark gets a database of
its own, so the row counts are exactly those it seeds, whatever ran before it.

``BENCH_SCRAPE_BEFORE_SRC=/path/to/an/older/checkout/src`` also serves that source tree (on the same
database, in the same run) and measures its scrape: a before/after of the whole request.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text

from agentic.domain.jobs import JobKind
from agentic.store import counts
from agentic.store.engine import create_db_engine
from agentic.store.jobs import JobStore
from bench.appserver import AppServer, server_env
from bench.clients import api_key, request_factory
from bench.context import Context
from bench.databases import fresh_like
from bench.load import interleaved
from bench.paths import PathSpec
from bench.paths.cleanup import seed
from bench.paths.poll import completed_job
from bench.results import Measurement, below, info, within_ratio
from bench.stats import Latency, LoadResult

GOAL = 3.0
LIMIT_MS = 50.0
TOKEN = "bench-metrics-token"
USER = "bench-scraper"
FULL_COUNT = "SELECT kind, status, count(*) FROM llm_jobs GROUP BY kind, status"


@dataclass
class Size:
    rows: int
    scrape: LoadResult
    poll: LoadResult
    full_count: Latency  # the query the scrape ran before the counters
    before: LoadResult | None = None  # the scrape of BENCH_SCRAPE_BEFORE_SRC's code


def create_job(store: JobStore) -> str:
    job, _ = store.create(kind=JobKind.GENERATE, user_id="bench-writer", model="mock-slow-bench",
                          request={"model": "mock-slow-bench", "messages": [{"role": "user", "content": "hi"}]})
    return job.id


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM llm_jobs")).scalar_one())


def _grow(ctx: Context, engine: Engine, rows: int) -> None:
    """Finished jobs (completed, failed, cancelled) up to ``rows``, then VACUUM ANALYZE as autovacuum would."""
    missing = rows - _rows(engine)
    began = time.perf_counter()
    if missing > 0:
        seed(engine, missing, f"scrape{rows}_", days=1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE llm_jobs" if engine.dialect.name == "postgresql" else "ANALYZE"))
    ctx.log(f"scrape: {_rows(engine):,} jobs ready in {time.perf_counter() - began:.1f} s")


def _full_count(engine: Engine, repeats: int) -> Latency:
    samples = []
    with engine.connect() as conn:
        conn.execute(text(FULL_COUNT)).all()  # warm the cache, as a table scraped every 15 s would be
        for _ in range(repeats):
            began = time.perf_counter()
            conn.execute(text(FULL_COUNT)).all()
            samples.append(time.perf_counter() - began)
    return Latency.of(samples)


def _measure(ctx: Context, servers: list[AppServer], engine: Engine, token: str, job_id: str, rows: int) -> Size:
    sizes = ctx.sizes
    factories = {
        "scrape": request_factory(servers[0].url, "GET", "/api/metrics", expect=200, token=TOKEN),
        "poll": request_factory(servers[0].url, "GET", f"/api/jobs/{job_id}", expect=200, token=token),
    }
    if len(servers) > 1:
        factories["before"] = request_factory(servers[1].url, "GET", "/api/metrics", expect=200, token=TOKEN)
    results = interleaved(factories, rounds=sizes.load_rounds, clients=1, duration=sizes.load_seconds,
                          max_requests=sizes.load_max_requests, warmup=sizes.load_warmup)
    size = Size(rows, results["scrape"], results["poll"], _full_count(engine, sizes.scrape_full_counts),
                results.get("before"))
    ctx.log(f"scrape at {rows:,} rows: p50 {size.scrape.latency.ms('p50'):.2f} ms p99 "
            f"{size.scrape.latency.ms('p99'):.2f} ms; poll p50 {size.poll.latency.ms('p50'):.2f} ms; "
            f"full count (before) p50 {size.full_count.ms('p50'):.2f} ms"
            + (f"; before's scrape p50 {size.before.latency.ms('p50'):.2f} ms" if size.before else ""))
    return size


def _cycles(store: JobStore, count: int) -> list[float]:
    """Seconds per job for ``count`` jobs taken through create, start, complete (three counted writes)."""
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        job_id = create_job(store)
        store.start(job_id)
        store.complete(job_id, {"content": "ok"})
        samples.append(time.perf_counter() - began)
    return samples


def _set_triggers(engine: Engine, enabled: bool) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE llm_jobs {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER"))
        elif enabled:
            counts.install(conn)
        else:
            for name in counts.TRIGGERS[:3]:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def _write_cost(engine: Engine, cycles: int, rounds: int) -> tuple[Latency, Latency]:
    """A job's writes with the counting triggers and without them, in alternating rounds."""
    store = JobStore(engine)
    on: list[float] = []
    off: list[float] = []
    _cycles(store, 10)  # warm-up
    for index in range(rounds):
        for enabled in ((True, False) if index % 2 == 0 else (False, True)):
            _set_triggers(engine, enabled)
            (on if enabled else off).extend(_cycles(store, max(1, cycles // rounds)))
    _set_triggers(engine, True)
    return Latency.of(on), Latency.of(off)


def run(ctx: Context) -> list[Measurement]:
    sizes = ctx.sizes
    large_rows = sizes.scrape_rows if ctx.db.is_postgres else sizes.scrape_sqlite_rows
    with fresh_like(ctx.db) as db:  # the shared database stays as the other benchmarks left it
        engine = create_db_engine(db.url)
        env = server_env(db.url, ctx.stand_ins.url, METRICS_TOKEN=TOKEN)
        servers = [AppServer(env, ctx.server_options, ctx.workdir / f"server-scrape-{db.name}.log")]
        before_src = os.environ.get("BENCH_SCRAPE_BEFORE_SRC")
        if before_src:
            servers.append(AppServer({**env, "PYTHONPATH": before_src}, ctx.server_options,
                                     ctx.workdir / f"server-scrape-before-{db.name}.log"))
        try:
            for server in servers:
                server.wait_ready()
            token = api_key(engine, USER)
            job_id = completed_job(JobStore(engine), USER)
            _grow(ctx, engine, sizes.scrape_small_rows)
            small = _measure(ctx, servers, engine, token, job_id, sizes.scrape_small_rows)
            _grow(ctx, engine, large_rows)
            large = _measure(ctx, servers, engine, token, job_id, large_rows)
            with_triggers, without = _write_cost(engine, sizes.scrape_write_cycles, sizes.load_rounds)
            ctx.log(f"scrape: create+start+complete p50 {with_triggers.ms('p50'):.2f} ms with the counting "
                    f"triggers, {without.ms('p50'):.2f} ms without")
        finally:
            for server in servers:
                server.close()
            engine.dispose()
    name = ctx.db.name
    case = f"{large.rows:,} vs {small.rows:,} jobs"
    before = []
    if large.before is not None and small.before is not None:
        before.append(info(Measurement(
            "scrape", f"before: {before_src}'s GET /api/metrics p50, {case}", name, "ms",
            large.before.latency.ms("p50"), small.before.latency.ms("p50"),
            note=f"p99 {large.before.latency.ms('p99'):.2f} vs {small.before.latency.ms('p99'):.2f} ms")))
    return [
        *before,
        within_ratio(Measurement("scrape", f"GET /api/metrics p50, {case}", name, "ms",
                                 large.scrape.latency.ms("p50"), small.scrape.latency.ms("p50"),
                                 note=f"p99 {large.scrape.latency.ms('p99'):.2f} vs "
                                      f"{small.scrape.latency.ms('p99'):.2f} ms; "
                                      f"{large.scrape.requests} vs {small.scrape.requests} requests"), GOAL),
        below(Measurement("scrape", f"GET /api/metrics p99 at {large.rows:,} jobs", name, "ms",
                          large.scrape.latency.ms("p99"),
                          note=f"p50 {large.scrape.latency.ms('p50'):.2f} ms"), LIMIT_MS),
        info(Measurement("scrape", f"reference: poll p50, {case}", name, "ms", large.poll.latency.ms("p50"),
                         small.poll.latency.ms("p50"),
                         note=f"p99 {large.poll.latency.ms('p99'):.2f} vs {small.poll.latency.ms('p99'):.2f} ms")),
        info(Measurement("scrape", f"before: the full GROUP BY count the scrape ran, p50, {case}", name, "ms",
                         large.full_count.ms("p50"), small.full_count.ms("p50"),
                         note=f"{large.full_count.count} runs; p99 {large.full_count.ms('p99'):.1f} ms "
                              f"at {large.rows:,}")),
        info(Measurement("scrape", "write cost: a job's create + start + complete, p50, with vs without the "
                         "counting triggers", name, "ms", with_triggers.ms("p50"), without.ms("p50"),
                         note=f"{with_triggers.count} jobs each; mean {with_triggers.ms('mean'):.2f} vs "
                              f"{without.ms('mean'):.2f} ms")),
    ]


SPEC = PathSpec("scrape", "Metrics scrape: GET /api/metrics at 1,000 vs 1,000,000 jobs, a poll as reference", run)
