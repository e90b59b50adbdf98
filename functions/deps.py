"""What the functions need, handed in by the composition root (the web app)."""

from __future__ import annotations

from dataclasses import dataclass

from agentic.config import Settings
from agentic.runner import JobRunner


@dataclass(frozen=True)
class FunctionDeps:
    settings: Settings
    runner: JobRunner
