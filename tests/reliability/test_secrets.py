"""No secret leaks: API keys, the provider key, Inngest's signing and event keys, the webhook secret and the
metrics token never appear in a log record, a job row, an API key row, an event, a webhook or any response.

One full run with distinctive fake secrets, every logger captured at DEBUG (httpx, httpcore, the Inngest SDK,
SQLAlchemy's statements with their parameters, ours): a job queued, run and completed; one failed by a
provider that echoes the key back in its error; a direct call whose upstream error echoes it too; the event
API failing; wrong credentials on every door; metrics and health. Then everything recorded is searched.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from flask import Flask
from sqlalchemy import text
from werkzeug.test import TestResponse

from agentic.config import Settings
from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_GENERATE
from agentic.store.engine import init_db
from agentic.web.app import container_of, create_app
from tests.functions.executor import FakeExecutor, RunStatus
from tests.reliability.support import EventRecorder, body_of

OPENROUTER_BASE = "https://openrouter.test/api/v1"
WEBHOOK_URL = "https://receiver.test/hooks/agentic"
SLOW = "deepseek/deepseek-r1"
QUICK = "openai/gpt-4o-mini"
LOGGERS = ("", "httpx", "httpcore", "inngest", "agentic", "agentic.inngest", "functions", "werkzeug",
           "sqlalchemy.engine", "urllib3")


class Secrets:
    def __init__(self) -> None:
        tag = secrets.token_hex(6)
        self.provider_key = f"sk-or-v1-provkey{tag}"
        self.signing_hex = f"5157{tag}"
        self.signing_key = f"signkey-test-{self.signing_hex}"
        self.event_key = f"evtkey{tag}"
        self.webhook_secret = f"whsec_hook{tag}"
        self.metrics_token = f"mtok_metrics{tag}"
        self.api_keys: list[str] = []

    def all(self) -> dict[str, str]:
        found = {"provider key": self.provider_key, "signing key": self.signing_key,
                 "signing key body": self.signing_hex, "event key": self.event_key,
                 "webhook secret": self.webhook_secret, "metrics token": self.metrics_token}
        found.update({f"API key {i}": key for i, key in enumerate(self.api_keys)})
        return found


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + f" args={record.args!r}")


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    levels = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _sse(*deltas: str) -> httpx.Response:
    events: list[dict[str, Any]] = [{"id": "gen-1", "model": SLOW, "choices": [{"index": 0, "delta": {"content": d}}]}
                                    for d in deltas]
    events.append({"id": "gen-1", "model": SLOW, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def test_no_secret_reaches_logs_rows_events_webhooks_or_responses(
        make_settings: Callable[..., Settings], recorder: EventRecorder, capture: Capture) -> None:
    keys = Secrets()
    settings = make_settings(
        inngest_dev="0", inngest_signing_key=keys.signing_key, inngest_event_key=keys.event_key,
        inngest_event_api_base_url=recorder.url, use_queue=True, llm_provider="openrouter",
        openrouter_api_key=keys.provider_key, openrouter_base_url=OPENROUTER_BASE, webhook_url=WEBHOOK_URL,
        webhook_secret=keys.webhook_secret, metrics_token=keys.metrics_token, progress_flush_seconds=0.0,
        event_send_timeout=1.0)
    app: Flask = create_app(settings)
    container = container_of(app)
    init_db(container.engine)
    client = app.test_client()
    executor = FakeExecutor(client, keys.signing_key)
    responses: list[TestResponse] = []

    def call(method: str, path: str, **kwargs: Any) -> TestResponse:
        response = client.open(path, method=method, **kwargs)
        responses.append(response)
        return response

    issued = container.keys.create("alice")
    revoked = container.keys.create("alice")
    keys.api_keys += [issued.secret, revoked.secret]
    assert container.keys.revoke(revoked.key.id)
    auth = {"Authorization": f"Bearer {issued.secret}"}
    # What a provider can echo back is what it was sent: the key, in the message and in the header it read.
    echo = f"Invalid API key {keys.provider_key} (sent as 'Authorization: Bearer {keys.provider_key}')"

    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        chat = router.post(f"{OPENROUTER_BASE}/chat/completions")
        webhook = router.post(WEBHOOK_URL).mock(return_value=httpx.Response(204))

        # 1. queued, run by the executor, completed, webhook delivered
        chat.side_effect = [_sse("All", " good.")]
        queued = call("POST", "/api/llm/generate", headers=auth,
                      json={"model": SLOW, "messages": [{"role": "user", "content": "first"}]})
        assert queued.status_code == 202
        [sent] = recorder.named(EVENT_GENERATE)
        run = executor.drive("llm-generate", sent.raw, retries=3)
        assert run.status is RunStatus.COMPLETED
        completed = container.jobs.get(body_of(queued)["job_id"])
        assert completed is not None and completed.status is JobStatus.COMPLETED

        # 2. the provider refuses the key and echoes it: the job fails at once, the failure handler runs
        chat.side_effect = [httpx.Response(401, json={"error": {"code": 401, "message": echo}})]
        second = call("POST", "/api/llm/generate", headers=auth,
                      json={"model": SLOW, "messages": [{"role": "user", "content": "second"}]})
        failing = executor.drive("llm-generate", recorder.named(EVENT_GENERATE)[-1].raw, retries=3)
        assert failing.status is RunStatus.FAILED
        executor.deliver_failure(failing)
        failed = container.jobs.get(body_of(second)["job_id"])
        assert failed is not None and failed.status is JobStatus.FAILED and failed.error_code == "authentication"

        # 3. a direct call whose upstream error echoes the key
        chat.side_effect = [httpx.Response(500, json={"error": {"code": 500, "message": echo}})]
        direct = call("POST", "/api/llm/generate", headers=auth,
                      json={"model": QUICK, "messages": [{"role": "user", "content": "third"}]})
        assert direct.status_code == 502

        # 4. the event API fails while a job is queued
        recorder.set_mode("error")
        down = call("POST", "/api/llm/generate", headers=auth,
                    json={"model": SLOW, "messages": [{"role": "user", "content": "fourth"}]})
        assert down.status_code == 503
        recorder.set_mode("ok")

        # 5. wrong credentials on every door, and the operational routes
        assert call("GET", "/api/jobs", headers={"Authorization": f"Bearer {revoked.secret}"}).status_code == 401
        assert call("GET", "/api/jobs", headers={"Authorization": f"Bearer {keys.metrics_token}"}).status_code == 401
        assert call("GET", "/api/metrics", headers=auth).status_code == 401
        assert call("GET", "/api/metrics", headers={"Authorization": f"Bearer {keys.metrics_token}"}).status_code == 200
        assert call("GET", "/api/health").status_code == 200
        assert call("GET", "/api/inngest").status_code == 401
        assert call("POST", "/api/inngest?fnId=agentic-llm-generate&stepId=step", data=b"{}",
                    headers={"X-Inngest-Signature": f"t=1&s={keys.signing_hex}"}).status_code == 401
        assert call("GET", f"/api/jobs/{body_of(queued)['job_id']}", headers=auth).status_code == 200
        assert call("GET", "/api/jobs", headers=auth).status_code == 200
        assert webhook.call_count == 2  # the completed job and the failed one

    places: dict[str, list[str]] = {
        "log records": capture.lines,
        "responses": [f"{r.status} {dict(r.headers)!r} {r.get_data(as_text=True)}" for r in responses],
        # (the event API's own URL, /e/<event key>, is where the key belongs: not searched)
        "events sent to Inngest": [json.dumps(e.raw) for e in recorder.snapshot()],
        "webhook deliveries": [call.request.content.decode() + repr(dict(call.request.headers))
                               for call in webhook.calls],
        "executor answers": [json.dumps(c.body) + repr(c.headers) for r in (run, failing) for c in r.calls],
    }
    with container.engine.connect() as conn:
        for table in ("llm_jobs", "api_keys"):
            places[f"{table} rows"] = [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    assert capture.lines and places["llm_jobs rows"]  # the search has something to search
    leaks = [f"{secret_name} in {place}: ...{line[max(0, line.find(value) - 80):line.find(value) + 40]}..."
             for place, lines in places.items() for line in lines
             for secret_name, value in keys.all().items() if value in line]
    assert leaks == [], "\n".join(leaks)
