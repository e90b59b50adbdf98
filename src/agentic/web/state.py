"""Per-app API state: the stream limiter and the things built on first use (job watcher, OpenAPI document).

Nothing here does I/O when the app is created, so a serverless cold start stays cheap: the PostgreSQL
listener thread starts with the first SSE request, not before.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app

from agentic.bootstrap import Container
from agentic.store.watch import JobWatcher, watcher_for
from agentic.web.sse import StreamLimiter
from agentic.web.tokens import JobTokens

STATE_KEY = "agentic.api"


class ApiState:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.limiter = StreamLimiter(container.settings.sse_max_streams_per_key,
                                     container.settings.sse_max_streams)
        self._lock = threading.Lock()
        self._watcher: JobWatcher | None = None
        self._openapi: dict[str, Any] | None = None
        secret = container.settings.job_token_secret
        #: None when JOB_TOKEN_SECRET is unset: no token is issued and every token is refused.
        self.tokens: JobTokens | None = (
            JobTokens(secret.get_secret_value(), ttl_seconds=container.settings.job_token_ttl_seconds)
            if secret is not None else None)

    def watcher(self) -> JobWatcher:
        if self._watcher is None:
            with self._lock:
                if self._watcher is None:
                    settings = self.container.settings
                    self._watcher = watcher_for(self.container.engine, poll_seconds=settings.sse_poll_seconds,
                                                listen_url=settings.database_listen_url)
        return self._watcher

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            from agentic.web.openapi import build_openapi

            self._openapi = build_openapi()
        return self._openapi


def api_state() -> ApiState:
    state: ApiState = current_app.extensions[STATE_KEY]
    return state


__all__ = ["STATE_KEY", "ApiState", "api_state"]
