"""A loopback stand-in for Anthropic's Messages API: a real socket, so any HTTP client (SDK 2.x's httpx2) reaches it.

respx patches ``httpx`` only; the Anthropic SDK 2.x talks through ``httpx2``, so its tests mock the network edge
with a small threaded HTTP/1.1 server on 127.0.0.1 instead. One server runs per test session on a free port.

Fixtures (re-exported by ``tests/conftest.py``, so every test directory can use them):

- ``anthropic_server`` -> :class:`AnthropicStandIn`, reset for the test: no scripted replies, nothing recorded.
  Point a client at ``anthropic_server.base_url`` (e.g. ``ClaudeRepository(key, base_url=...)``).

Scripting: ``anthropic_server.reply(*replies)`` queues replies, answered in order, one per request (any path).
A request with nothing queued gets a 500 ``api_error`` naming the request, so a test never passes by accident.

- :func:`message` ``(*texts, stop_reason=..., input_tokens=..., output_tokens=..., ...)``: a finished message,
  answered in the mode the request asked for: ``"stream": true`` gets the Messages SSE stream (``message_start``,
  ``content_block_start``, ``ping``, one ``content_block_delta`` per text, ``content_block_stop``,
  ``message_delta`` with usage and stop reason, ``message_stop``); otherwise (offloaded, non-streaming calls) the
  JSON ``Message`` with one text block holding the joined texts.
- :func:`stream` ``(*events, delay=, cut_after=, hold_after=, headers=)``: a 200 SSE stream of the given events
  (build them with :func:`sse`, :func:`message_start`, :func:`text_delta`, :func:`message_delta`,
  :func:`error_event`, or take :func:`events_for`). ``delay`` sleeps between events; ``cut_after=n`` drops the
  connection after n events, mid-body; ``hold_after=n`` sends n events then nothing more until the client hangs
  up (a read timeout, or a cancelled reader closing the connection); ``end=False`` ends the body cleanly without
  the events that were not given (a stream that stops before ``message_stop`` is just one without it).
- :func:`api_error` ``(status, error_type, message, headers=)``: Anthropic's JSON error body
  ``{"type": "error", "error": {...}}`` with ``request-id`` and any headers given (``retry-after``,
  ``anthropic-ratelimit-*``).
- :func:`raw` ``(status, body, content_type=, headers=)``: any other body (a gateway's HTML page).
- :func:`hang` ``()``: accept the request and never answer until the client hangs up (read timeout before headers).

Unreachable servers: ``anthropic_server.refusing_url()`` is a port nothing listens on (connection refused);
``anthropic_server.blackhole_url()`` a port whose accept queue is full, so connecting times out.

Records: ``anthropic_server.requests`` lists :class:`Exchange` in arrival order: ``method``, ``path``, ``headers``
(lower-case names), ``body`` (bytes) and ``json`` (parsed); and what the server did: ``events_sent`` and
``wait_disconnected(timeout)``, true once the client closed the connection while the server still held it.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MODEL = "claude-haiku-4-5-20251001"
#: How long a held connection waits for the client to hang up before the server gives up on it.
HOLD_LIMIT = 30.0


# --- events -----------------------------------------------------------------------------------------------


def sse(name: str, **data: Any) -> bytes:
    """One server-sent event as Anthropic frames it: ``event: <name>`` and JSON data with the same ``type``."""
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def message_start(input_tokens: int = 25, cache_read: int = 5, *, id: str = "msg_01XYZ",
                  model: str = MODEL) -> bytes:
    return sse("message_start", message={
        "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": cache_read, "output_tokens": 1}})


def text_delta(text: str, index: int = 0) -> bytes:
    return sse("content_block_delta", index=index, delta={"type": "text_delta", "text": text})


def message_delta(stop_reason: str | None = "end_turn", output_tokens: int = 15, **usage: int) -> bytes:
    return sse("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None},
               usage={**usage, "output_tokens": output_tokens})


def error_event(error_type: str, message: str) -> bytes:
    """The ``error`` event Anthropic sends inside a 200 stream (e.g. ``overloaded_error``)."""
    return sse("error", error={"type": error_type, "message": message})


def events_for(*texts: str, stop_reason: str = "end_turn", input_tokens: int = 25, cache_read: int = 5,
               output_tokens: int = 15, id: str = "msg_01XYZ", model: str = MODEL) -> list[bytes]:
    """The full event sequence of one text message, as the Messages API streams it."""
    return [message_start(input_tokens, cache_read, id=id, model=model),
            sse("content_block_start", index=0, content_block={"type": "text", "text": ""}), sse("ping"),
            *[text_delta(t) for t in texts], sse("content_block_stop", index=0),
            message_delta(stop_reason, output_tokens), sse("message_stop")]


# --- replies ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with :func:`message`, :func:`stream`, :func:`api_error`, :func:`raw`,
    :func:`hang`."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    events: tuple[bytes, ...] | None = None  # an SSE stream instead of a body
    message: dict[str, Any] | None = None  # answered as a stream or as JSON, as the request asks
    texts: tuple[str, ...] = ()
    delay: float = 0.0
    cut_after: int | None = None
    hold_after: int | None = None
    hang: bool = False


def message(*texts: str, stop_reason: str = "end_turn", input_tokens: int = 25, cache_read: int = 5,
            output_tokens: int = 15, id: str = "msg_01XYZ", model: str = MODEL,
            headers: dict[str, str] | None = None) -> Reply:
    """A finished text message: streamed when the request says ``"stream": true``, else the JSON Message."""
    body = {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(texts)}], "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": cache_read, "output_tokens": output_tokens}}
    return Reply(message=body, texts=texts, headers=headers or {})


def stream(*events: bytes, delay: float = 0.0, cut_after: int | None = None, hold_after: int | None = None,
           headers: dict[str, str] | None = None) -> Reply:
    return Reply(events=events, delay=delay, cut_after=cut_after, hold_after=hold_after, headers=headers or {})


def api_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message},
                       "request_id": "req_stand_in"}).encode()
    return Reply(status=status, body=body, headers=headers or {})


def raw(status: int, body: bytes | str, *, content_type: str = "text/html",
        headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=body.encode() if isinstance(body, str) else body, content_type=content_type,
                 headers=headers or {})


def hang() -> Reply:
    return Reply(hang=True)


# --- records ----------------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request the stand-in received, and what it did with it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    events_sent: int = 0
    _disconnected: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def wait_disconnected(self, timeout: float = 10.0) -> bool:
        """True once the client closed the connection while the server was still holding it open."""
        return self._disconnected.wait(timeout)


# --- the server -------------------------------------------------------------------------------------------


class AnthropicStandIn:
    """The scripted server; see the module docstring for its API."""

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Exchange] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="anthropic-stand-in", daemon=True)
        self._blackhole: socket.socket | None = None
        self._blackhole_filler: socket.socket | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def last(self) -> Exchange:
        assert self.requests, "the stand-in received no request"
        return self.requests[-1]

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests = []

    def refusing_url(self) -> str:
        """A loopback port nothing listens on: connecting is refused."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def blackhole_url(self) -> str:
        """A port that listens but never accepts, its one-slot queue already taken: connecting times out."""
        if self._blackhole is None:
            self._blackhole = socket.socket()
            self._blackhole.bind(("127.0.0.1", 0))
            self._blackhole.listen(0)
            self._blackhole_filler = socket.create_connection(self._blackhole.getsockname()[:2])
        return f"http://127.0.0.1:{self._blackhole.getsockname()[1]}"

    def start(self) -> AnthropicStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for sock in (self._blackhole_filler, self._blackhole):
            if sock is not None:
                sock.close()

    def _next(self, exchange: Exchange) -> Reply:
        with self._lock:
            self.requests.append(exchange)
            if self._replies:
                return self._replies.popleft()
        return api_error(500, "api_error", f"anthropic stand-in: no reply scripted for {exchange.method} "
                                           f"{exchange.path}")


def _handler_for(server: AnthropicStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the real API

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every request

        def do_POST(self) -> None:
            self._answer()

        def do_GET(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            exchange = Exchange(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            reply = server._next(exchange)
            try:
                self._send(reply, exchange)
            except (BrokenPipeError, ConnectionResetError):
                exchange._disconnected.set()
                self.close_connection = True

        def _send(self, reply: Reply, exchange: Exchange) -> None:
            if reply.hang:
                self._hold(exchange)
                return
            events = reply.events
            if reply.message is not None:
                if not _wants_stream(exchange.body):
                    self._whole(reply, json.dumps(reply.message).encode(), "application/json")
                    return
                events = tuple(_message_events(reply))
            if events is None:
                self._whole(reply, reply.body, reply.content_type)
                return
            self._stream(reply, events, exchange)

        def _head(self, reply: Reply, content_type: str, extra: dict[str, str]) -> None:
            self.send_response(reply.status)
            headers = {"content-type": content_type, "request-id": "req_stand_in", **extra, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def _whole(self, reply: Reply, body: bytes, content_type: str) -> None:
            self._head(reply, content_type, {"content-length": str(len(body))})
            self.wfile.write(body)
            self.wfile.flush()

        def _stream(self, reply: Reply, events: tuple[bytes, ...], exchange: Exchange) -> None:
            self._head(reply, "text/event-stream; charset=utf-8",
                       {"transfer-encoding": "chunked", "cache-control": "no-cache"})
            for index, event in enumerate(events):
                if reply.cut_after is not None and index >= reply.cut_after:
                    self.close_connection = True  # drop it mid-body: no terminating chunk
                    return
                if reply.hold_after is not None and index >= reply.hold_after:
                    self._hold(exchange)
                    return
                if index and reply.delay:
                    time.sleep(reply.delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                exchange.events_sent += 1
            if reply.hold_after is not None and reply.hold_after >= len(events):
                self._hold(exchange)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _hold(self, exchange: Exchange) -> None:
            """Send nothing more; return once the client hangs up (or the session ends)."""
            self.close_connection = True
            deadline = time.monotonic() + HOLD_LIMIT
            while not server._stopping.is_set() and time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable:
                    try:
                        closed = self.connection.recv(1, socket.MSG_PEEK) == b""
                    except OSError:
                        closed = True
                    if closed:
                        exchange._disconnected.set()
                        return

    return Handler


def _wants_stream(body: bytes) -> bool:
    try:
        return json.loads(body).get("stream") is True
    except (ValueError, AttributeError):
        return False


def _message_events(reply: Reply) -> Iterator[bytes]:
    assert reply.message is not None
    usage = reply.message["usage"]
    yield from events_for(*reply.texts, stop_reason=reply.message["stop_reason"],
                          input_tokens=usage["input_tokens"], cache_read=usage["cache_read_input_tokens"],
                          output_tokens=usage["output_tokens"], id=reply.message["id"],
                          model=reply.message["model"])


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def anthropic_stand_in() -> Iterator[AnthropicStandIn]:
    """The session's one server (use ``anthropic_server``, which also resets it per test)."""
    server = AnthropicStandIn().start()
    yield server
    with contextlib.suppress(Exception):
        server.stop()


@pytest.fixture
def anthropic_server(anthropic_stand_in: AnthropicStandIn) -> Iterator[AnthropicStandIn]:
    anthropic_stand_in.reset()
    yield anthropic_stand_in
    anthropic_stand_in.reset()
