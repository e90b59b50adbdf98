"""The Prometheus side of :mod:`agentic.metrics`, imported on first use (prometheus_client is start-up time
that most requests never need)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentic.metrics.counts import JobCounts

PROCESSING_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _JobsCollector(Collector):
    def __init__(self, counts: JobCounts) -> None:
        self.counts = counts

    def describe(self) -> Iterator[Metric]:
        """Names only: without this, registering the collector would query the database at start-up."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        jobs, depth = self._families()
        try:
            counts = self.counts()
        except Exception:  # a scrape must not fail because the database blinked
            return
        for (kind, status), value in sorted(counts.items()):
            jobs.add_metric([kind, status], value)
        depth.add_metric([], sum(v for (_, status), v in counts.items() if status == "pending"))
        yield jobs
        yield depth

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("agentic_jobs", "Jobs in the store by kind and status", labels=["kind", "status"]),
                GaugeMetricFamily("agentic_queue_depth", "Jobs waiting to start (status pending)"))


class PrometheusMetrics:
    def __init__(self, job_counts: JobCounts | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.processing_seconds = Histogram(
            "agentic_job_processing_seconds", "Time from a job's start to its end", ["kind", "status"],
            buckets=PROCESSING_BUCKETS, registry=self.registry)
        self.tokens = Counter("agentic_tokens", "Tokens used, by model and type", ["model", "type"],
                              registry=self.registry)
        self.provider_errors = Counter("agentic_provider_errors", "Provider failures by provider and code",
                                       ["provider", "code"], registry=self.registry)
        self.webhook_deliveries = Counter("agentic_webhook_deliveries", "Webhook deliveries by outcome",
                                          ["outcome"], registry=self.registry)
        if job_counts is not None:
            self.registry.register(_JobsCollector(job_counts))

    def job_finished(self, kind: str, status: str, seconds: float | None) -> None:
        if seconds is not None:
            self.processing_seconds.labels(kind=kind, status=status).observe(max(seconds, 0.0))

    def tokens_used(self, model: str, prompt: int, completion: int) -> None:
        self.tokens.labels(model=model, type="prompt").inc(prompt)
        self.tokens.labels(model=model, type="completion").inc(completion)

    def provider_error(self, provider: str, code: str) -> None:
        self.provider_errors.labels(provider=provider, code=code).inc()

    def webhook_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
