"""Service tests send events through the real Inngest client to a mocked event API."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_send_outlives_its_test() -> Iterator[None]:
    """A send the service gave up on keeps retrying in its thread (the SDK retries for seconds); let it end
    here, so it never reaches the event API route another test mocks."""
    yield
    for thread in threading.enumerate():
        if thread.name == "inngest-send":
            thread.join(timeout=30)
