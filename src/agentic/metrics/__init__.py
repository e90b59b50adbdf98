"""Prometheus metrics, one registry per app (so several apps in one process never collide).

Counters and histograms are per process: on a serverless host each instance reports its own. Job counts
and queue depth are read from the database at scrape time, so they are global. prometheus_client is
imported when the first metric is recorded or scraped, not at start-up (:mod:`agentic.metrics.prometheus`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from agentic.metrics.counts import JobCounts

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from agentic.metrics.prometheus import PrometheusMetrics

class Metrics:
    def __init__(self, job_counts: JobCounts | None = None) -> None:
        self._job_counts = job_counts
        self._built: PrometheusMetrics | None = None
        self._lock = threading.Lock()

    @property
    def _prometheus(self) -> PrometheusMetrics:
        built = self._built
        if built is None:
            with self._lock:
                if self._built is None:
                    from agentic.metrics.prometheus import PrometheusMetrics

                    self._built = PrometheusMetrics(self._job_counts)
                built = self._built
        return built

    @property
    def registry(self) -> CollectorRegistry:
        return self._prometheus.registry

    def job_finished(self, kind: str, status: str, seconds: float | None) -> None:
        self._prometheus.job_finished(kind, status, seconds)

    def tokens_used(self, model: str, prompt: int, completion: int) -> None:
        self._prometheus.tokens_used(model, prompt, completion)

    def provider_error(self, provider: str, code: str) -> None:
        self._prometheus.provider_error(provider, code)

    def webhook_delivery(self, outcome: str) -> None:
        self._prometheus.webhook_delivery(outcome)

    def render(self) -> bytes:
        return self._prometheus.render()


__all__ = ["JobCounts", "Metrics"]
