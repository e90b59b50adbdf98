"""How much each benchmark does: the default run (minutes) and ``--quick`` (a smoke test, seconds)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    # enqueue and poll: closed-loop HTTP load, per concurrency level
    enqueue_clients: tuple[int, ...]
    poll_clients: tuple[int, ...]
    #: seconds each contender (ours, the baseline) is measured per level, split into alternating rounds
    load_seconds: float
    load_rounds: int
    load_max_requests: int
    load_warmup: int  # unmeasured calls each client makes first
    # result delivery
    sse_trials: int
    polling_trials: int
    polling_window: float  # seconds over which the polled jobs complete, at random moments
    # step overhead
    step_runs: int
    # cold start
    coldstart_repeats: int
    coldstart_profile: bool  # also break the import time down by package (two more interpreters)
    # streaming: two output lengths, to see how memory grows with the length
    stream_tokens: tuple[int, int]
    stream_repeats: int
    # cleanup
    cleanup_rows: int
    cleanup_sqlite_rows: int
    cleanup_sweep_rows: int
    cleanup_sqlite_sweep_rows: int
    cleanup_sweep_batches: tuple[int, ...]
    cleanup_baseline_seconds: float
    cleanup_time_limit: float
    # metrics scrape: a small and a large table (PostgreSQL; SQLite's large one is smaller)
    scrape_small_rows: int
    scrape_rows: int
    scrape_sqlite_rows: int
    scrape_full_counts: int  # timed runs of the full count the scrape used to do
    scrape_write_cycles: int  # jobs written with and without the counting triggers


DEFAULT = Sizes(
    enqueue_clients=(1, 8, 32), poll_clients=(1, 8), load_seconds=6.0, load_rounds=4,
    load_max_requests=20_000, load_warmup=3,
    sse_trials=60, polling_trials=30, polling_window=3.0,
    step_runs=200,
    coldstart_repeats=10, coldstart_profile=True,
    stream_tokens=(25_000, 100_000), stream_repeats=5,
    cleanup_rows=1_000_000, cleanup_sqlite_rows=100_000, cleanup_sweep_rows=100_000, cleanup_sqlite_sweep_rows=20_000,
    cleanup_sweep_batches=(100, 1000, 5000, 20_000), cleanup_baseline_seconds=5.0, cleanup_time_limit=150.0,
    scrape_small_rows=1_000, scrape_rows=1_000_000, scrape_sqlite_rows=100_000, scrape_full_counts=20,
    scrape_write_cycles=1000,
)

QUICK = Sizes(
    enqueue_clients=(1, 8, 32), poll_clients=(1, 8), load_seconds=0.4, load_rounds=2,
    load_max_requests=300, load_warmup=1,
    sse_trials=5, polling_trials=4, polling_window=1.5,
    step_runs=10,
    coldstart_repeats=1, coldstart_profile=False,
    stream_tokens=(2_500, 10_000), stream_repeats=1,
    cleanup_rows=5_000, cleanup_sqlite_rows=2_000, cleanup_sweep_rows=2_000, cleanup_sqlite_sweep_rows=1_000,
    cleanup_sweep_batches=(100, 1000), cleanup_baseline_seconds=0.5, cleanup_time_limit=20.0,
    scrape_small_rows=1_000, scrape_rows=5_000, scrape_sqlite_rows=3_000, scrape_full_counts=3,
    scrape_write_cycles=40,
)
