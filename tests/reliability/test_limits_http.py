"""Size and stream limits over real sockets, against the app under ``agentic serve`` (waitress).

- A body announced larger than any route takes (``max(MAX_REQUEST_BYTES, MAX_INNGEST_REQUEST_BYTES)``) is
  refused with 413 from its Content-Length, before any of it is read: the client sends the headers and a few
  bytes of a 10 GiB body and gets its answer at once. A chunked body that keeps coming is cut off past that
  limit, not read to its end. A body over MAX_REQUEST_BYTES but under it is read by the server (never on an
  application thread) and refused by the app, 413 with the API's own limit.
- Each API key may hold SSE_MAX_STREAMS_PER_KEY open event streams (429 too_many_streams beyond); a stream
  whose client vanishes, or that ends, gives its slot back.

The test client versions of these are in tests/web: test_api_generate.py::test_an_oversized_body_is_413_before_parsing
and ::test_an_oversized_chunked_body_is_413, test_api_events.py::
test_open_streams_are_capped_per_key_and_released_on_disconnect. Here nothing is simulated: the server's own
reading of the socket is what is tested.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agentic.store.engine import create_db_engine, init_db
from agentic.store.keys import ApiKeyStore
from tests.reliability.support import HOST, EventRecorder, ServedApp, wait_until

MAX_BYTES = 4096
SERVER_MAX_BYTES = 65_536  # MAX_INNGEST_REQUEST_BYTES, the largest body a route takes
STREAMS_PER_KEY = 2
HUGE = 10 * 1024**3


@dataclass
class Served:
    server: ServedApp
    keys: ApiKeyStore
    recorder: EventRecorder

    def key(self, user: str = "alice") -> str:
        return self.keys.create(user).secret


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("limits")
    url = f"sqlite:///{folder / 'limits.db'}"
    engine = create_db_engine(url)
    init_db(engine)
    with EventRecorder() as recorder, ServedApp({
        "DATABASE_URL": url, "LLM_PROVIDER": "mock", "USE_QUEUE": "true", "INNGEST_DEV": "1",
        "INNGEST_EVENT_API_BASE_URL": recorder.url, "MAX_REQUEST_BYTES": str(MAX_BYTES),
        "MAX_INNGEST_REQUEST_BYTES": str(SERVER_MAX_BYTES),
        "SSE_MAX_STREAMS_PER_KEY": str(STREAMS_PER_KEY), "SSE_HEARTBEAT_SECONDS": "0.2", "SSE_POLL_SECONDS": "0.05",
    }, workers=1, threads=16, cwd=folder) as server:
        server.wait_ready()
        yield Served(server, ApiKeyStore(engine), recorder)
    engine.dispose()


def _raw_request(port: int, head: str, body_parts: list[bytes], *, pause: float = 0.0,
                 timeout: float = 5.0) -> tuple[bytes, float]:
    """Send ``head`` and the body parts, keep the connection open, and read the answer's head and body."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has answered and stopped reading: the rest never needed to be sent
            if pause:
                time.sleep(pause)
        data = b""
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data, time.monotonic() - started


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def _status_and_json(data: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    is_json = "json" in headers.get("content-type", "")
    return int(lines[0].split()[1]), headers, json.loads(body) if body and is_json else {}


@pytest.mark.parametrize("path", ["/api/llm/generate", "/api/previews"])
def test_a_huge_content_length_is_refused_before_the_body_is_read(served: Served, path: str) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {served.key()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n")

    answer, elapsed = _raw_request(served.server.port, head, [b'{"model": "mock-slow-1", "messages": ['])

    status, headers, problem = _status_and_json(answer)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert problem["code"] == "request_too_large" and problem["max_bytes"] == SERVER_MAX_BYTES
    assert elapsed < 3  # answered from the headers: 10 GiB were never going to arrive
    assert served.recorder.named("llm/generate.request") == []


def test_a_body_over_the_api_limit_is_refused_with_the_apis_limit(served: Served) -> None:
    body = b'{"model": "mock-slow-1", "messages": [{"role": "user", "content": "' + b"x" * MAX_BYTES + b'"}]}'
    head = (f"POST /api/llm/generate HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {served.key()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")

    answer, _ = _raw_request(served.server.port, head, [body])

    status, headers, problem = _status_and_json(answer)
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert problem["code"] == "request_too_large" and problem["max_bytes"] == MAX_BYTES
    assert served.recorder.named("llm/generate.request") == []


def test_a_huge_content_length_to_the_inngest_endpoint_is_refused_too(served: Served) -> None:
    head = (f"POST /api/inngest?fnId=agentic-llm-generate&stepId=step HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n")

    answer, elapsed = _raw_request(served.server.port, head, [b'{"event": '])

    assert _status_and_json(answer)[0] == 413  # the SDK's endpoint keeps werkzeug's own answer
    assert elapsed < 3


def test_an_endless_chunked_body_is_cut_off_past_the_limit(served: Served) -> None:
    head = (f"POST /api/llm/generate HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {served.key()}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 1024
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (SERVER_MAX_BYTES // len(chunk) + 2)  # never ended

    answer, elapsed = _raw_request(served.server.port, head, parts, pause=0.001)

    status, _, problem = _status_and_json(answer)
    assert status == 413 and problem["code"] == "request_too_large"
    assert elapsed < 3  # the server did not wait for a terminating chunk that never comes


def _queue(served: Served, secret: str) -> str:
    response = httpx.post(f"{served.server.base_url}/api/llm/generate", timeout=10,
                          headers={"Authorization": f"Bearer {secret}"},
                          json={"model": "mock-slow-1", "messages": [{"role": "user", "content": "watch me"}]})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


class RawStream:
    """An event stream on a socket of its own; ``drop`` vanishes without a goodbye (RST)."""

    def __init__(self, served: Served, job_id: str, secret: str) -> None:
        self.sock = socket.create_connection((HOST, served.server.port), timeout=5)
        self.sock.sendall((f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {HOST}\r\n"
                           f"Authorization: Bearer {secret}\r\nAccept: text/event-stream\r\n\r\n").encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.head += chunk

    @property
    def status(self) -> int:
        return int(self.head.split(b"\r\n", 1)[0].split()[1])

    def drop(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


def test_streams_are_capped_per_key_and_a_vanished_client_frees_its_slot(served: Served) -> None:
    secret, other = served.key("carol"), served.key("carol")
    job_id = _queue(served, secret)
    streams = [RawStream(served, job_id, secret) for _ in range(STREAMS_PER_KEY)]
    assert [s.status for s in streams] == [200] * STREAMS_PER_KEY

    refused = httpx.get(f"{served.server.base_url}/api/jobs/{job_id}/events", timeout=5,
                        headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "too_many_streams" and refused.headers.get("Retry-After")
    another_key = RawStream(served, job_id, other)  # the cap is per key
    assert another_key.status == 200

    streams[0].drop()  # the client vanishes; the server notices at its next heartbeat
    reopened: list[RawStream] = []

    def slot_free() -> bool:
        attempt = RawStream(served, job_id, secret)
        if attempt.status == 200:
            reopened.append(attempt)
            return True
        attempt.drop()
        return False

    wait_until(slot_free, timeout=10, interval=0.2, what="the vanished stream's slot being released")
    for stream in [*streams[1:], *reopened, another_key]:
        stream.drop()
    wait_until(lambda: RawStream(served, job_id, secret).status == 200, timeout=10, interval=0.2,
               what="every slot being released")
