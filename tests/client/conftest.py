"""The client against the real app: served on a loopback port (tests.e2e.live), jobs run in threads."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agentic.domain.llm import LLMRequest, Message  # noqa: E402
from agentic.providers.mock import MockLLMRepository  # noqa: E402
from tests.e2e.live import LiveStack, live_stack  # noqa: E402

SLOW = "mock-slow-1"
QUICK = "mock-quick"


def mock_answer(prompt: str, model: str, max_tokens: int | None = None) -> str:
    """What the mock provider answers (deterministic), to compare streamed text with."""
    request = LLMRequest(messages=[Message(role="user", content=prompt)], model=model, max_tokens=max_tokens)
    return MockLLMRepository().generate(request).content


@pytest.fixture
def make_stack(sqlite_url: str) -> Iterator[Callable[..., LiveStack]]:
    """Start a live stack on SQLite; keyword arguments override settings (``hold=`` holds jobs pending)."""
    with ExitStack() as stacks:
        def make(database_url: str | None = None, *, hold: bool = False, **overrides: Any) -> LiveStack:
            return stacks.enter_context(live_stack(database_url or sqlite_url, hold=hold, **overrides))

        yield make


@pytest.fixture
def stack(make_stack: Callable[..., LiveStack]) -> LiveStack:
    return make_stack()
