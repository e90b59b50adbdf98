"""``agentic serve`` (defaults: one worker, 16 threads) keeps answering under the two thread-starving attacks of
issue 19: sixteen idle event streams from two keys (10 + 6), and sixteen slow clients (a header line and then
nothing, or a body announced and never finished). The real server in a subprocess, on a loopback port.

Each test prints how long ``/api/health`` took under the attack (``-s`` shows it); it asserts only that it
answered, with a generous client timeout: timing figures belong in bench/.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agentic.store.engine import create_db_engine, init_db
from agentic.store.keys import ApiKeyStore
from tests.reliability.support import HOST, EventRecorder, ServedApp

ATTACKERS = 16
CLIENT_TIMEOUT = 5.0


@dataclass
class Served:
    server: ServedApp
    keys: ApiKeyStore


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'capacity.db'}"
    engine = create_db_engine(url)
    init_db(engine)
    with EventRecorder() as recorder, ServedApp({
        "DATABASE_URL": url, "LLM_PROVIDER": "mock", "USE_QUEUE": "true", "INNGEST_DEV": "1",
        "INNGEST_EVENT_API_BASE_URL": recorder.url, "SSE_HEARTBEAT_SECONDS": "1", "SSE_POLL_SECONDS": "0.2",
    }, workers=1, threads=16, cwd=tmp_path) as server:
        server.wait_ready()
        yield Served(server, ApiKeyStore(engine))
    engine.dispose()


def _timed_health(base_url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(f"{base_url}/api/health", timeout=CLIENT_TIMEOUT)
    return response, time.monotonic() - started


def _open_stream(port: int, job_id: str, secret: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((HOST, port), timeout=CLIENT_TIMEOUT)
    sock.sendall((f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {HOST}\r\n"
                  f"Authorization: Bearer {secret}\r\nAccept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_sixteen_idle_event_streams_leave_the_api_and_the_inngest_endpoint_answering(served: Served) -> None:
    base = served.server.base_url
    alice, bob = served.keys.create("alice").secret, served.keys.create("bob").secret
    jobs = {}
    for user, secret in (("alice", alice), ("bob", bob)):
        created = httpx.post(f"{base}/api/llm/generate", headers={"Authorization": f"Bearer {secret}"},
                             json={"model": "mock-slow-1", "messages": [{"role": "user", "content": "wait"}]},
                             timeout=CLIENT_TIMEOUT)
        assert created.status_code == 202, created.text
        jobs[user] = created.json()["job_id"]
    opened: list[socket.socket] = []
    statuses: list[int] = []
    try:
        for user, secret, count in (("alice", alice, 10), ("bob", bob, 6)):
            for _ in range(count):
                sock, head = _open_stream(served.server.port, jobs[user], secret)
                opened.append(sock)
                statuses.append(int(head.split(b"\r\n", 1)[0].split()[1]))
                if statuses[-1] == 503:
                    assert b"retry-after:" in head.lower()

        health, elapsed = _timed_health(base)
        inngest = httpx.get(f"{base}/api/inngest", timeout=CLIENT_TIMEOUT)  # where Inngest reaches the steps
    finally:
        for sock in opened:
            sock.close()

    print(f"\n/api/health under {ATTACKERS} idle streams ({statuses.count(200)} open, "
          f"{statuses.count(503)} refused 503): {elapsed * 1000:.0f} ms")
    assert health.status_code == 200
    assert inngest.status_code == 200
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 503}
    assert statuses.count(503) >= 1, "every stream was admitted: nothing keeps threads for the API"


@pytest.mark.parametrize("attack", ["a header line, then nothing", "a body announced, then nothing"])
def test_sixteen_slow_clients_do_not_hold_the_servers_threads(served: Served, attack: str) -> None:
    if attack.startswith("a header"):
        opening = f"GET /api/health HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    else:
        # /api/inngest reads its body at once (dev mode: no signature to check first)
        opening = (f"POST /api/inngest?fnId=agentic-llm-cleanup&stepId=step HTTP/1.1\r\nHost: {HOST}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"event\": ").encode()
    slow = [socket.create_connection((HOST, served.server.port), timeout=CLIENT_TIMEOUT) for _ in range(ATTACKERS)]
    try:
        for sock in slow:
            sock.sendall(opening)
        time.sleep(0.5)  # let the server take them all in

        health, elapsed = _timed_health(served.server.base_url)
    finally:
        for sock in slow:
            sock.close()

    print(f"\n/api/health under {ATTACKERS} slow clients ({attack}): {elapsed * 1000:.0f} ms")
    assert health.status_code == 200
