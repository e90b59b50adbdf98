"""Loopback stand-ins for the services agentic talks to: Inngest's event API and OpenRouter.

They run in a subprocess of their own (``python -m bench.servers``), so their work neither competes with
the measured code for the GIL nor shows up in its ``tracemalloc`` peak. Both bind 127.0.0.1 only.

- ``POST /e/<key>``: the event API; answers ``{"ids": [...], "status": 200}``, one id per event.
- ``POST /api/v1/chat/completions``: an OpenAI-style SSE stream of ``max_tokens`` deltas ``"tok "``, then
  a finish reason, a usage chunk and ``[DONE]``.
- ``GET /stats``: how many events were received (lets a benchmark check every request sent its event).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import httpx

from bench.proc import spawn, stop

HOST = "127.0.0.1"
CHAT_PATH = "/api/v1/chat/completions"
#: SSE events written per HTTP chunk: about 600 bytes, the size real providers flush at under load.
EVENTS_PER_WRITE = 8
TOKEN = "tok "


def sse_chunks(tokens: int, events_per_write: int = EVENTS_PER_WRITE) -> Iterator[bytes]:
    """The stream's bytes, ``events_per_write`` SSE events at a time."""
    head = '{"id":"gen-bench","model":"bench/stream","choices":[{"index":0,"delta":{"content":"tok "}}]}'
    event = f"data: {head}\n\n".encode()
    last = json.dumps({"id": "gen-bench", "model": "bench/stream",
                       "choices": [{"index": 0, "delta": {"content": TOKEN}, "finish_reason": "stop"}]})
    usage = json.dumps({"id": "gen-bench", "model": "bench/stream", "choices": [],
                        "usage": {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}})
    full, rest = divmod(max(tokens - 1, 0), events_per_write)
    group = event * events_per_write
    for _ in range(full):
        yield group
    tail = event * rest + f"data: {last}\n\n".encode() + f"data: {usage}\n\n".encode() + b"data: [DONE]\n\n"
    yield tail


@lru_cache(maxsize=4)
def _stream_body(tokens: int) -> tuple[bytes, ...]:
    """The chunked-encoded stream, built once per size (so the stand-in is never the bottleneck)."""
    return (*(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in sse_chunks(tokens)), b"0\r\n\r\n")


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = 0
        self.requests = 0


COUNTERS = _Counters()


class StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services
    disable_nagle_algorithm = True  # else a small answer waits ~40 ms for a delayed ACK

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with COUNTERS.lock:
                self._json(200, {"events": COUNTERS.events, "requests": COUNTERS.requests})
            return
        self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path.startswith("/e/"):
            events = json.loads(body or b"[]")
            count = len(events) if isinstance(events, list) else 1
            with COUNTERS.lock:
                COUNTERS.events += count
                COUNTERS.requests += 1
            self._json(200, {"ids": [f"evt-{COUNTERS.requests}-{i}" for i in range(count)], "status": 200})
        elif self.path == CHAT_PATH:
            request = json.loads(body or b"{}")
            self._stream(int(request.get("max_tokens") or 16))
        else:
            self._json(404, {"error": "not found"})

    def _stream(self, tokens: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in _stream_body(tokens):
            self.wfile.write(piece)


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def serve(port: int, out: IO[str]) -> None:
    server = StandInServer((HOST, port), StandInHandler)
    out.write(f"{server.server_address[1]}\n")
    out.flush()
    server.serve_forever(poll_interval=0.2)


class StandIns:
    """The stand-in subprocess: ``url`` is its origin; ``close()`` ends it (also at parent exit)."""

    def __init__(self, process: subprocess.Popen[str] | None, port: int) -> None:
        self.process = process
        self.url = f"http://{HOST}:{port}"
        self.chat_base_url = f"{self.url}/api/v1"

    @classmethod
    def start(cls, timeout: float = 15.0) -> StandIns:
        root = Path(__file__).resolve().parent.parent
        process = spawn([sys.executable, "-m", "bench.servers", "--port", "0"], cwd=root,
                        stdout=subprocess.PIPE)
        assert process.stdout is not None
        line = _readline(process.stdout, timeout)
        if not line.strip().isdigit():
            stop(process)
            raise RuntimeError(f"the stand-in server did not start (said {line!r})")
        return cls(process, int(line))

    @classmethod
    def attach(cls, url: str) -> StandIns:
        """Stand-ins another process started (``close()`` leaves them running)."""
        return cls(None, int(url.rsplit(":", 1)[1]))

    def events_received(self) -> int:
        return int(httpx.get(f"{self.url}/stats", timeout=5).json()["events"])

    def close(self) -> None:
        if self.process is not None:
            stop(self.process)

    def __enter__(self) -> StandIns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _readline(stream: IO[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve(args.port, sys.stdout)


if __name__ == "__main__":
    main()
