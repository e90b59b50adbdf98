"""Fixtures for the HTTP API: a real app on each database, with the Inngest event API mocked (respx).

The respx router is active for every test here and refuses unmocked requests, so no test reaches a network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import respx

from agentic.bootstrap import Container
from agentic.config import load_settings
from agentic.store.engine import init_db
from agentic.web.app import container_of, create_app
from tests.web.support import EVENT_API, Api, EventLog


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def events(router: respx.MockRouter) -> EventLog:
    log = EventLog()
    router.post(EVENT_API).mock(side_effect=log)
    return log


@pytest.fixture
def make_api(database_url: str, events: EventLog) -> Iterator[Callable[..., Api]]:
    """Build an app on this test's database; keyword arguments override settings."""
    built: list[Container] = []

    def make(**overrides: Any) -> Api:
        values: dict[str, Any] = {
            "database_url": database_url, "llm_provider": "mock", "use_queue": False, "inngest_dev": "1",
            "openrouter_api_key": None, "anthropic_api_key": None, "metrics_token": None,
            "inngest_event_key": None, "inngest_signing_key": None, "inngest_base_url": None,
            "inngest_event_api_base_url": None, "webhook_url": None, "webhook_secret": None,
            "event_send_timeout": 2.0, "sse_poll_seconds": 0.02, "sse_heartbeat_seconds": 0.1,
            "sse_max_seconds": 15.0, "progress_flush_seconds": 0.01, "max_request_bytes": 4096,
        }
        values.update(overrides)
        app = create_app(load_settings(**values))
        container = container_of(app)
        init_db(container.engine)
        built.append(container)
        return Api(app=app, container=container, client=app.test_client())

    yield make
    for container in built:
        container.engine.dispose()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def queued_api(make_api: Callable[..., Api]) -> Api:
    return make_api(use_queue=True)
