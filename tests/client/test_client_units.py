"""The client's own rules, at the network edge (respx): resets keep exactly the text they say, events cut
mid-way are never half-delivered, problems map to their families, and importing it loads no server code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx

from agentic.client import AgenticClient, ApiError, Event, ServerError
from agentic.client.errors import (
    AuthenticationError,
    InvalidRequestError,
    JobFinishedError,
    RateLimitError,
    UnavailableError,
    error_from_response,
)

BASE = "http://agentic.test"
ROOT = Path(__file__).resolve().parents[2]


def sse(*events: tuple[str, dict[str, object], str]) -> bytes:
    return "".join(f"id: {eid}\nevent: {name}\ndata: {json.dumps(data)}\n\n" for name, data, eid in events).encode()


def test_a_reset_keeps_its_offset_or_nothing() -> None:
    body = sse(("delta", {"text": "Hello wor"}, "processing.1.9"),
               ("reset", {"attempts": 2, "offset": 6}, "processing.2.6"),
               ("delta", {"text": "there"}, "processing.2.11"),
               ("reset", {"attempts": 3}, "processing.3.0"),
               ("delta", {"text": "Hi"}, "processing.3.2"),
               ("done", {"id": "job_1", "status": "completed"}, "done.3.2"))
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{BASE}/api/jobs/job_1/events").mock(
            return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))
        with AgenticClient(BASE, "agk_x") as client:
            texts, text = [], ""
            for event in client.stream("job_1"):
                text = event.apply(text)
                texts.append(text)
    assert texts == ["Hello wor", "Hello ", "Hello there", "", "Hi", "Hi"]


def test_an_event_cut_off_mid_way_is_not_delivered_and_the_reconnect_resumes_after_the_last_whole_one() -> None:
    whole = sse(("status", {"status": "processing"}, "processing.1.0"), ("delta", {"text": "abc"}, "processing.1.3"))
    cut = b'id: processing.1.6\nevent: delta\ndata: {"text": "de'  # the connection dies here

    class Cut(httpx.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield whole + cut
            raise httpx.RemoteProtocolError("dropped")

    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Last-Event-ID"))
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Cut())
        rest = sse(("delta", {"text": "def"}, "processing.1.6"), ("done", {"id": "j", "status": "completed"}, "done"))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=rest)

    with respx.mock() as router:
        router.get(f"{BASE}/api/jobs/j/events").mock(side_effect=answer)
        with AgenticClient(BASE, "agk_x") as client:
            text = ""
            for event in client.stream("j"):
                text = event.apply(text)
    assert seen == [None, "processing.1.3"]
    assert text == "abcdef"


def test_an_event_applies_only_what_it_carries() -> None:
    assert Event("status", {"status": "processing"}).apply("abc") == "abc"
    assert Event("reset", {"attempts": 2, "offset": 0}).apply("abc") == ""
    assert Event("done", {"id": "j", "status": "completed"}).job is not None


@pytest.mark.parametrize(("status", "code", "family"), [
    (401, "invalid_token", AuthenticationError),
    (400, "invalid_json", InvalidRequestError),
    (413, "request_too_large", InvalidRequestError),
    (409, "job_finished", JobFinishedError),
    (429, "rate_limited", RateLimitError),
    (503, "database_unavailable", UnavailableError),
    (500, "internal_error", ServerError),
])
def test_problems_map_to_their_family(status: int, code: str, family: type[ApiError]) -> None:
    response = httpx.Response(status, headers={"Retry-After": "3"},
                              json={"status": status, "code": code, "detail": "d", "field": None})
    error = error_from_response(response)
    assert type(error) is family
    assert (error.status, error.code, error.detail, error.retry_after) == (status, code, "d", 3.0)


def test_importing_the_client_loads_no_server_code() -> None:
    code = ("import sys, agentic.client; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flask', 'werkzeug', 'sqlalchemy', 'sqlmodel', 'inngest', 'pydantic', 'anthropic', 'gunicorn'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout
