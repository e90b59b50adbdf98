"""Summaries of timing samples: percentiles, means and rates."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """Latencies in seconds, summarised (reported in milliseconds)."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        return cls(count=len(samples), mean=statistics.fmean(samples), p50=percentile(samples, 50),
                   p90=percentile(samples, 90), p99=percentile(samples, 99), max=max(samples))

    def ms(self, name: str) -> float:
        value: float = getattr(self, name)
        return value * 1000


@dataclass(frozen=True)
class LoadResult:
    """A closed-loop load run: completed requests, wall time and their latencies."""

    clients: int
    requests: int
    errors: int
    seconds: float
    latency: Latency
    samples: tuple[float, ...] = ()

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def merge(cls, runs: Sequence[LoadResult]) -> LoadResult:
        samples = tuple(s for run in runs for s in run.samples)
        return cls(clients=runs[0].clients, requests=sum(r.requests for r in runs),
                   errors=sum(r.errors for r in runs), seconds=sum(r.seconds for r in runs),
                   latency=Latency.of(samples), samples=samples)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def timed(call: Callable[[], object]) -> float:
    """Seconds ``call()`` took."""
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` leaves the elapsed seconds in ``t[0]``."""
    holder: list[float] = []
    start = time.perf_counter()
    try:
        yield holder
    finally:
        holder.append(time.perf_counter() - start)
