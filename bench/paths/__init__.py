"""One module per measured path; each exposes ``SPEC``: its name, title and ``run(ctx)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.context import Context
    from bench.results import Measurement


@dataclass(frozen=True)
class PathSpec:
    name: str
    title: str
    run: Callable[[Context], list[Measurement]]
    #: The databases it runs on; an empty tuple means it needs none (runs once).
    databases: tuple[str, ...] = ("sqlite", "postgres")


def all_paths() -> list[PathSpec]:
    from bench.paths import cleanup, coldstart, continuation, delivery, enqueue, poll, queue, scrape, step, streaming

    return [enqueue.SPEC, poll.SPEC, delivery.SPEC, step.SPEC, queue.SPEC, coldstart.SPEC, streaming.SPEC,
            continuation.SPEC, cleanup.SPEC, scrape.SPEC]
