"""Helpers for the reliability suite: loopback stand-ins (Inngest's event API, a scripted OpenRouter that can
hang or stream slowly, a TCP proxy that can cut the database off), the app under agentic serve, and an httpx
adapter so the fake executor of tests/functions drives a real server.

The event API recorder and the server launcher are the load runner's own (scripts/load_test.py), so the
small load test in CI and the long run share one implementation. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def load_runner() -> ModuleType:
    """scripts/load_test.py as a module (imported once)."""
    name = "agentic_load_test"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "load_test.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


_runner = load_runner()
EventRecorder = _runner.EventRecorder
ServedApp = _runner.ServedApp
LoadConfig = _runner.LoadConfig
run_load = _runner.run_load
markdown = _runner.markdown
free_port = _runner.free_port


def body_of(response: Any) -> dict[str, Any]:
    """A test response's JSON object body (werkzeug types it as Any | None)."""
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"not a JSON object: {response.get_data(as_text=True)[:300]}"
    return body


def wait_until(condition: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02,
               what: str = "the condition") -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g}s")
        time.sleep(interval)


# ---- a scripted OpenRouter on a loopback port -----------------------------------------------------------


@dataclass
class Reply:
    """One answer of :class:`FakeProvider`.

    ``hang_after`` chunks are sent, then the connection is held open and silent until the server stops
    (``0``: not even the status line). ``chunk_delay`` spaces the chunks out.
    """

    status: int = 200
    chunks: Sequence[bytes] = ()
    content_type: str = "text/event-stream"
    chunk_delay: float = 0.0
    hang_after: int | None = None
    sent: int = 0


@dataclass
class ProviderCall:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeProvider:
    """OpenRouter's chat completions endpoint over a real socket: each request takes the next scripted
    :class:`Reply` (the last one repeats). HTTP/1.0 answers, so the body ends when the connection closes."""

    def __init__(self, replies: Sequence[Reply], *, max_hang_seconds: float = 60.0) -> None:
        self.replies = list(replies)
        self.calls: list[ProviderCall] = []
        self.max_hang_seconds = max_hang_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-provider", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/api/v1"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _next(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                with provider._lock:
                    provider.calls.append(ProviderCall(self.path, dict(self.headers), json.loads(raw or b"{}")))
                reply = provider._next()
                try:
                    self._answer(reply)
                except OSError:  # the client went away (a killed worker, a timeout): nothing more to send
                    self.close_connection = True

            def _answer(self, reply: Reply) -> None:
                if reply.hang_after == 0:
                    provider._stop.wait(provider.max_hang_seconds)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.end_headers()
                self.wfile.flush()
                for index, chunk in enumerate(reply.chunks):
                    if reply.hang_after is not None and index >= reply.hang_after:
                        provider._stop.wait(provider.max_hang_seconds)
                        return
                    if reply.chunk_delay and provider._stop.wait(reply.chunk_delay):
                        return
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    reply.sent = index + 1
                if reply.hang_after is not None and reply.hang_after >= len(reply.chunks):
                    provider._stop.wait(provider.max_hang_seconds)

        return Handler


# ---- a TCP proxy that can cut the database off ----------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``cut()`` drops every open connection and refuses new ones
    (accepted, then closed at once: the driver sees the server go away) until ``restore()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._stop = threading.Event()
        self.refused = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        self._drop_all()

    def cut(self) -> None:
        with self._lock:
            self._down = True
        self._drop_all()

    def restore(self) -> None:
        with self._lock:
            self._down = False

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def through_proxy(url: str, proxy: TcpProxy) -> str:
    """``url`` (a PostgreSQL URL) pointed at the proxy instead of the server."""
    return make_url(url).set(host=HOST, port=proxy.port).render_as_string(hide_password=False)


# ---- PostgreSQL: killing the app's connections ----------------------------------------------------------


@dataclass
class ConnectionKiller:
    """Terminates the server process behind the app's connection just before a chosen statement runs, so
    that statement fails the way a dropped connection makes it fail (a real backend termination)."""

    engine: Engine
    admin_url: str
    armed: str | None = None  # substring of the UPDATE statement to kill before
    killed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._admin = create_engine(self.admin_url, poolclass=None)
        event.listen(self.engine, "before_cursor_execute", self._before)

    def arm(self, statement_part: str) -> None:
        self.armed = statement_part

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        self._admin.dispose()

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        armed = self.armed
        if armed is None or not statement.lstrip().upper().startswith("UPDATE") or armed not in statement:
            return
        self.armed = None
        pid = conn.connection.dbapi_connection.info.backend_pid
        terminate(self._admin, [pid])
        self.killed.append(statement)


def terminate(admin: Engine, pids: Sequence[int]) -> int:
    """pg_terminate_backend each pid and wait (up to 5 s) until it is gone; returns how many were killed."""
    killed = 0
    with admin.connect() as conn:
        for pid in pids:
            killed += bool(conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar())
        conn.commit()
    return killed


def backends_named(admin: Engine, application_name: str) -> list[int]:
    with admin.connect() as conn:
        return [int(pid) for pid in conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"),
            {"name": application_name}).scalars()]


def with_application_name(url: str, name: str) -> str:
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


# ---- the fake executor of tests/functions, against a real server ----------------------------------------


class HttpResponse:
    """The parts of werkzeug's TestResponse the fake executor reads, for an httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self._content = response.content

    def get_json(self, silent: bool = False) -> Any:
        try:
            return json.loads(self._content)
        except ValueError:
            if silent:
                return None
            raise

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self._content.decode() if as_text else self._content


class HttpClient:
    """Stands in for a FlaskClient in tests.functions.executor.FakeExecutor, over real HTTP."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def post(self, path: str, *, data: bytes, headers: Mapping[str, str]) -> HttpResponse:
        return HttpResponse(self._client.post(path, content=data, headers=dict(headers)))

    def close(self) -> None:
        self._client.close()


# ---- provider streams -----------------------------------------------------------------------------------


def stream_of(*deltas: str, finish: str | None = "stop") -> list[bytes]:
    """OpenRouter's SSE stream for ``deltas`` (as tests/functions/conftest.sse_chunks, for raw sockets)."""
    from tests.functions.conftest import sse_chunks

    return sse_chunks(*deltas, finish=finish)


def flatten(chunks: Iterator[bytes] | Sequence[bytes]) -> bytes:
    return b"".join(chunks)
