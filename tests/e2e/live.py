"""A live stack for end-to-end tests: the real app on a real port, with the Inngest executor played here.

There is no Inngest server in tests, so the app's event sends go to a respx route, and that route starts
a thread that runs the job through the real ``JobRunner`` the way the generate function's steps would
(mark-processing, call-llm, store-result). Requests to the app's own port pass through respx untouched,
so httpx clients in the test (the CLI) reach the server; browsers do not use httpx at all.

``hold=True`` keeps each queued job pending until the test calls ``release()``, so a test can look at the
pending state for as long as it needs, then watch the job run.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from agentic.bootstrap import Container, build_container
from agentic.config import load_settings
from agentic.inngest.events import EVENT_CANCEL, EVENT_GENERATE
from agentic.service.kinds import GENERATE
from agentic.store.engine import init_db
from agentic.web.app import create_app

USER_ID = "e2e-user"


class _QuietHandler(WSGIRequestHandler):
    """No access log: it would land in the output the tests read."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class LiveStack:
    url: str
    app: Flask
    container: Container
    api_key: str
    hold: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)
    _runs: list[threading.Thread] = field(default_factory=list)

    def release(self) -> None:
        """Let held jobs start."""
        self._release.set()

    def event_names(self) -> list[str]:
        return [str(e.get("name")) for e in self.events]

    def on_event(self, request: httpx.Request) -> httpx.Response:
        """The Inngest event API: record the events, and run each generate request as Inngest would."""
        sent = json.loads(request.content)
        for event in sent:
            self.events.append(event)
            if event.get("name") == EVENT_GENERATE:
                run = threading.Thread(target=self._run_job, args=(event["data"]["job_id"],),
                                       name="fake-inngest-run", daemon=True)
                self._runs.append(run)
                run.start()
            # EVENT_CANCEL needs nothing here: the recorded request stops the run at its next check.
        return httpx.Response(200, json={"ids": [e.get("id") or "evt" for e in sent], "status": 200})

    def _run_job(self, job_id: str) -> None:
        runner = self.container.runner
        try:
            if self.hold and not self._release.wait(timeout=60):
                self.errors.append(f"{job_id}: never released")
                return
            began = runner.begin(job_id)
            if not began["started"]:
                return
            result = runner.call(GENERATE, job_id, 0)
            if result["outcome"] == "generated":
                runner.finish(job_id)
        except Exception:
            self.errors.append(traceback.format_exc())

    def join(self, timeout: float = 30) -> None:
        for run in self._runs:
            run.join(timeout)


@contextmanager
def live_stack(database_url: str, *, hold: bool = False, **overrides: Any) -> Iterator[LiveStack]:
    """Serve the app (mock provider, queue on) on 127.0.0.1 at a free port, with jobs run in threads."""
    settings = load_settings(**{
        "database_url": database_url, "llm_provider": "mock", "use_queue": True, "inngest_dev": "1",
        "mock_tokens_per_second": 50.0, "progress_flush_seconds": 0.05, "sse_poll_seconds": 0.05,
        "sse_heartbeat_seconds": 5.0, "event_send_timeout": 5.0, **overrides})
    container = build_container(settings)
    init_db(container.engine)
    app = create_app(settings, container=container)
    api_key = container.keys.create(USER_ID, label="e2e").secret
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True,
                                          request_handler=_QuietHandler)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                               name="live-app", daemon=True)
    serving.start()
    stack = LiveStack(url=f"http://127.0.0.1:{server.server_port}", app=app, container=container,
                      api_key=api_key, hold=hold)
    try:
        with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
            router.route(host="127.0.0.1", port=server.server_port).pass_through()
            router.post(url__regex=r"/e/[^/]+$").mock(side_effect=stack.on_event)
            yield stack
    finally:
        stack.release()
        stack.join()
        server.shutdown()
        serving.join(10)
        server.server_close()
        container.engine.dispose()


__all__ = ["EVENT_CANCEL", "EVENT_GENERATE", "USER_ID", "LiveStack", "live_stack"]
