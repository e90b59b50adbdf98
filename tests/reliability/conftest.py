"""Fixtures for the reliability suite.

The function-level fixtures of tests/functions are reused as they are (the production app behind the signed
fake executor, OpenRouter's HTTP edge behind respx); the loopback stand-ins live in support.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functions.conftest import (  # noqa: F401  (fixtures, reused by name)
    chat_route,
    make_app,
    make_settings,
    openrouter_settings,
    respx_mock,
)
from tests.reliability.support import EventRecorder


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    """A loopback stand-in for Inngest's event API that records every event it receives."""
    with EventRecorder() as events:
        yield events


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> str:
    """The test's PostgreSQL URL (fresh schema), or a skip saying why there is none."""
    return str(request.getfixturevalue("postgres_url"))
