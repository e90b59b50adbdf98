"""A closed-loop load generator: N client threads, each calling as fast as its last call returns.

Every run is bounded by a duration and by a request count, whichever comes first, and stops early when
calls keep failing; warm-up calls are not measured.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from bench.stats import Latency, LoadResult

#: Makes one client's call (its own connection, say): a context manager yielding a zero-argument callable.
ClientFactory = Callable[[int], AbstractContextManager[Callable[[], None]]]

MAX_ERRORS = 50


class _Run:
    def __init__(self, clients: int, duration: float, max_requests: int) -> None:
        self.duration = duration
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.issued = 0
        self.errors = 0
        self.first_error: BaseException | None = None
        self.began = 0.0
        self.deadline = 0.0
        self.gate = threading.Barrier(clients + 1, action=self._open)
        self.latencies: list[list[float]] = [[] for _ in range(clients)]

    def _open(self) -> None:
        self.began = time.perf_counter()
        self.deadline = self.began + self.duration

    def take(self) -> bool:
        """Whether another measured call may start."""
        with self.lock:
            if self.issued >= self.max_requests or self.errors >= MAX_ERRORS:
                return False
            self.issued += 1
        return time.perf_counter() < self.deadline

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            self.errors += 1
            self.first_error = self.first_error or exc

    def client(self, index: int, factory: ClientFactory, warmup: int) -> None:
        try:
            with factory(index) as call:
                for _ in range(warmup):
                    call()
                self.gate.wait(120)
                samples = self.latencies[index]
                while self.take():
                    began = time.perf_counter()
                    try:
                        call()
                    except Exception as exc:
                        self.failed(exc)
                        continue
                    samples.append(time.perf_counter() - began)
        except threading.BrokenBarrierError:
            return
        except Exception as exc:
            self.failed(exc)
            self.gate.abort()


def closed_loop(factory: ClientFactory, *, clients: int, duration: float, max_requests: int,
                warmup: int = 3) -> LoadResult:
    run = _Run(clients, duration, max_requests)
    threads = [threading.Thread(target=run.client, args=(i, factory, warmup), name=f"bench-client-{i}",
                                daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        run.gate.wait(180)
    for thread in threads:
        thread.join(duration + 120)
    elapsed = time.perf_counter() - run.began if run.began else 0.0
    samples = [s for per_client in run.latencies for s in per_client]
    if not samples:
        raise RuntimeError(f"no call succeeded ({run.first_error!r})" if run.first_error else "no call was made")
    return LoadResult(clients=clients, requests=len(samples), errors=run.errors, seconds=elapsed,
                      latency=Latency.of(samples), samples=tuple(samples))


def interleaved(factories: dict[str, ClientFactory], *, rounds: int, clients: int, duration: float,
                max_requests: int, warmup: int = 3) -> dict[str, LoadResult]:
    """Run each factory ``rounds`` times, alternating, and merge each one's rounds.

    On a shared machine load comes in bursts; alternating short rounds gives every contender the same share
    of them, where one long run each would hand a burst to whoever ran at that moment.
    """
    runs: dict[str, list[LoadResult]] = {name: [] for name in factories}
    for index in range(rounds):
        order = list(factories.items()) if index % 2 == 0 else list(reversed(factories.items()))
        for name, factory in order:
            runs[name].append(closed_loop(factory, clients=clients, duration=duration / rounds,
                                          max_requests=max(1, max_requests // rounds),
                                          warmup=warmup if index == 0 else min(warmup, 1)))
    return {name: LoadResult.merge(results) for name, results in runs.items()}
