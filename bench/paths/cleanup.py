"""7. Cleanup: deleting expired jobs with ``JobStore.delete_finished_batch`` in a loop (as llm-cleanup does,
``CLEANUP_BATCH_SIZE`` rows a batch) while inserts continue. Reports the total time, and insert latency during
cleanup against without it; then the same at other batch sizes. Goal: insert p99 within 2x.

Rows are seeded in one ``INSERT ... SELECT`` over ``generate_series`` (a recursive CTE on SQLite), never
through the ORM. Live jobs and recently finished ones are seeded too, and must survive.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, text

from agentic.config import Settings
from agentic.domain.jobs import JobKind
from agentic.store.jobs import JobStore
from agentic.store.tables import utcnow
from bench.context import Context
from bench.paths import PathSpec
from bench.results import Measurement, info, within_ratio
from bench.stats import Latency

GOAL = 2.0
#: The pause between two inserts of the writer running alongside: a steady ~150 jobs/s, like busy API traffic.
INSERT_PAUSE = 0.005
SURVIVORS = 1000  # live and recently finished jobs seeded next to the expired ones
REQUEST_JSON = '{"model": "mock-slow-bench", "messages": [{"role": "user", "content": "hi"}]}'
COLUMNS = ("id, kind, user_id, status, provider, model, request, partial_output, attempts, "
           "created_at, updated_at, started_at, finished_at")

PG_SEED = f"""
INSERT INTO llm_jobs ({COLUMNS})
SELECT :prefix || g, 'generate', 'user_' || (g % 1000), (ARRAY['completed','failed','cancelled'])[1 + g % 3],
       'mock', 'mock-slow-bench', CAST(:request AS jsonb), '', 1, t, t, t, t
FROM generate_series(1, :n) AS g,
     LATERAL (SELECT now() - make_interval(days => :days) + g * interval '1 millisecond' AS t) AS ts
"""
SQLITE_SEED = f"""
INSERT INTO llm_jobs ({COLUMNS})
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
SELECT :prefix || x, 'generate', 'user_' || (x % 1000),
       CASE x % 3 WHEN 0 THEN 'completed' WHEN 1 THEN 'failed' ELSE 'cancelled' END,
       'mock', 'mock-slow-bench', :request, '', 1, t, t, t, t
FROM (SELECT x, strftime('%Y-%m-%d %H:%M:%S', 'now', '-' || :days || ' days', '+' || (x / 1000) || ' seconds')
             || '.000000' AS t FROM g)
"""
PG_LIVE = "UPDATE llm_jobs SET status = 'processing', finished_at = NULL WHERE id LIKE :prefix || '%'"


def seed(engine: Engine, rows: int, prefix: str, *, days: int, status: str | None = None) -> None:
    """``rows`` finished jobs that finished ``days`` ago (``status`` turns them into live ones)."""
    sql = PG_SEED if engine.dialect.name == "postgresql" else SQLITE_SEED
    with engine.begin() as conn:
        conn.execute(text(sql), {"prefix": prefix, "n": rows, "days": days, "request": REQUEST_JSON})
        if status is not None:
            conn.execute(text("UPDATE llm_jobs SET status = :status, finished_at = NULL "
                              "WHERE id LIKE :prefix || '%'"), {"status": status, "prefix": prefix})
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE llm_jobs"))


def count(engine: Engine, prefix: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM llm_jobs WHERE id LIKE :p || '%'"),
                                {"p": prefix}).scalar_one())


class Inserter:
    """A writer creating jobs through JobStore (as the API does) every INSERT_PAUSE, timing each."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-inserter", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            self.store.create(kind=JobKind.GENERATE, user_id="bench-inserter", model="mock-slow-bench",
                              request={"model": "mock-slow-bench", "messages": [{"role": "user", "content": "hi"}]})
            self.latencies.append(time.perf_counter() - began)
            self._stop.wait(INSERT_PAUSE)

    def __enter__(self) -> Inserter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@dataclass
class CleanupRun:
    deleted: int
    batches: int
    seconds: float
    complete: bool
    batch_seconds: list[float]
    inserts: Latency


def clean(store: JobStore, batch_size: int, time_limit: float) -> CleanupRun:
    """The cleanup function's loop, with the inserter running; bounded by ``time_limit``."""
    cutoff = utcnow() - timedelta(days=Settings().job_retention_days)
    deleted, batch_times, complete = 0, [], False
    with Inserter(store) as inserter:
        began = time.perf_counter()
        while time.perf_counter() - began < time_limit:
            started = time.perf_counter()
            removed = store.delete_finished_batch(cutoff, batch_size)
            batch_times.append(time.perf_counter() - started)
            deleted += removed
            if removed < batch_size:
                complete = True
                break
        seconds = time.perf_counter() - began
    return CleanupRun(deleted, len(batch_times), seconds, complete, batch_times, Latency.of(inserter.latencies))


def inserts_alone(store: JobStore, seconds: float) -> Latency:
    with Inserter(store) as inserter:
        time.sleep(seconds)
    return Latency.of(inserter.latencies)


def _prepare(ctx: Context, engine: Engine, rows: int, tag: str) -> None:
    began = time.perf_counter()
    seed(engine, rows, f"old{tag}_", days=30)
    seed(engine, SURVIVORS, f"recent{tag}_", days=1)
    seed(engine, SURVIVORS, f"live{tag}_", days=30, status="processing")
    ctx.log(f"cleanup: seeded {rows:,} expired jobs in {time.perf_counter() - began:.1f} s")


def _verify(engine: Engine, tag: str, run: CleanupRun) -> None:
    survivors = count(engine, f"recent{tag}_") + count(engine, f"live{tag}_")
    if survivors != 2 * SURVIVORS:
        raise RuntimeError(f"cleanup deleted jobs it must keep ({2 * SURVIVORS - survivors} of them)")
    if run.complete and count(engine, f"old{tag}_"):
        raise RuntimeError("cleanup stopped with expired jobs left")


def _trend(run: CleanupRun) -> str:
    tenth = max(1, len(run.batch_seconds) // 10)
    first = sum(run.batch_seconds[:tenth]) / tenth * 1000
    last = sum(run.batch_seconds[-tenth:]) / tenth * 1000
    return f"batch time {first:.1f} ms (first tenth) -> {last:.1f} ms (last tenth)"


def run(ctx: Context) -> list[Measurement]:
    sizes = ctx.sizes
    engine = ctx.engine()
    store = JobStore(engine)
    default_batch = Settings().cleanup_batch_size
    rows_main = sizes.cleanup_rows if ctx.db.is_postgres else sizes.cleanup_sqlite_rows
    rows_sweep = sizes.cleanup_sweep_rows if ctx.db.is_postgres else sizes.cleanup_sqlite_sweep_rows
    _prepare(ctx, engine, rows_main, "m")
    alone = inserts_alone(store, sizes.cleanup_baseline_seconds)
    main = clean(store, default_batch, sizes.cleanup_time_limit)
    _verify(engine, "m", main)
    ctx.log(f"cleanup: {main.deleted:,} rows in {main.seconds:.1f} s ({main.batches} batches; {_trend(main)}); "
            f"insert p99 {main.inserts.ms('p99'):.1f} ms vs {alone.ms('p99'):.1f} ms alone")
    scope = f"{main.deleted:,} of {rows_main:,} rows" + ("" if main.complete else
                                                          f" (stopped at the {sizes.cleanup_time_limit:g} s bound)")
    rows = [
        within_ratio(Measurement("cleanup", f"insert p99 during cleanup, batch {default_batch}", ctx.db.name, "ms",
                                 main.inserts.ms("p99"), alone.ms("p99"),
                                 note=f"p50 {main.inserts.ms('p50'):.2f} vs {alone.ms('p50'):.2f} ms; "
                                      f"{main.inserts.count} inserts during cleanup"), GOAL),
        info(Measurement("cleanup", f"total time, {scope}, batch {default_batch}", ctx.db.name, "s", main.seconds,
                         note=f"{main.deleted / main.seconds:,.0f} rows/s; {_trend(main)}")),
    ]
    for index, batch in enumerate(sizes.cleanup_sweep_batches):
        tag = f"s{index}"
        _prepare(ctx, engine, rows_sweep, tag)
        alone = inserts_alone(store, sizes.cleanup_baseline_seconds / 2)
        swept = clean(store, batch, sizes.cleanup_time_limit)
        _verify(engine, tag, swept)
        ctx.log(f"cleanup batch {batch}: {swept.deleted:,} rows in {swept.seconds:.1f} s; insert p99 "
                f"{swept.inserts.ms('p99'):.1f} ms vs {alone.ms('p99'):.1f} ms alone")
        rows.append(within_ratio(Measurement(
            "cleanup", f"sweep: batch {batch}, {swept.deleted:,} rows: insert p99", ctx.db.name, "ms",
            swept.inserts.ms("p99"), alone.ms("p99"),
            note=f"{swept.seconds:.2f} s total, {swept.deleted / swept.seconds:,.0f} rows/s; {_trend(swept)}"),
            GOAL))
    return rows


SPEC = PathSpec("cleanup", "Cleanup: delete_finished_batch over expired jobs while inserts continue", run)
