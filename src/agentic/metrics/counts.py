"""What the metrics read from the database at scrape time (kept apart so the facade and the Prometheus
backend both depend on it, not on each other)."""

from __future__ import annotations

from collections.abc import Callable

#: ``(kind, status) -> number of jobs``, read at scrape time.
JobCounts = Callable[[], dict[tuple[str, str], int]]

__all__ = ["JobCounts"]
