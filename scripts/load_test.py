#!/usr/bin/env python3
"""Load runner: agentic serve (waitress) on PostgreSQL, with a loopback stand-in for Inngest's event API.

Phase 1, generate: ``--requests`` POST /api/llm/generate for a slow model (queued) from ``--clients`` concurrent
clients, each request with its own Idempotency-Key and every other one retried once. Afterwards every 202 must
map to exactly one job row and one event (event id == job id; an id sent twice is allowed only for a retried
request, whose replay re-sends the event of a still-pending job by design and which Inngest deduplicates by
id), no answer may be a 5xx, and every retry must return the same job.

Phase 2, streams: ``--sse-clients`` jobs, each watched by its own Server-Sent Events client, then driven to
completion by a fake Inngest executor POSTing the recorded events to /api/inngest. Every client must get its
``done`` (status completed) and the text it assembled from ``delta``/``reset`` events must equal the stored
response.

The server runs as ``agentic serve`` (waitress worker processes) in a schema of its own, dropped afterwards.
Everything binds 127.0.0.1; every loop is bounded in count and time, so the run stops by itself. A markdown
summary goes to stdout (progress to stderr); the exit status is 1 when an invariant is broken.

    scripts/load                       # 5,000 requests / 64 clients / 500 SSE clients
    scripts/load --requests 300 --clients 16 --sse-clients 40 --workers 2 --threads 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EVENT_GENERATE = "llm/generate.request"
APP_ID = "agentic"
INNGEST_PATH = "/api/inngest"


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the stand-in for Inngest's event API ---------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    id: str
    data: dict[str, Any]
    raw: dict[str, Any]
    path: str


class EventRecorder:
    """A threaded HTTP server on 127.0.0.1 playing Inngest's event API (``POST /e/<event key>``).

    It records every event it receives and answers as Inngest does (``{"ids": [...], "status": 200}``).
    ``mode`` makes it misbehave: ``"hang"`` accepts and never answers (until released or stopped), ``"error"``
    answers 500, ``"delay"`` answers after ``delay`` seconds (recording the events only then, as an event API
    that was slow to accept them). Hung requests are released when the recorder stops.
    """

    def __init__(self) -> None:
        self.events: list[ReceivedEvent] = []
        self.requests = 0
        self.received: list[tuple[str, bytes]] = []  # (path, body) of every request, events or not
        self.mode = "ok"
        self.delay = 0.0
        self.max_hang_seconds = 120.0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="event-recorder", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def __enter__(self) -> EventRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def release(self) -> None:
        """Let hung requests answer (200, recording their events)."""
        self._release.set()

    def set_mode(self, mode: str, *, delay: float = 0.0) -> None:
        if mode not in ("ok", "hang", "error", "delay"):
            raise ValueError(mode)
        with self._lock:
            self.mode, self.delay = mode, delay
            if mode == "hang":
                self._release.clear()

    def named(self, name: str) -> list[ReceivedEvent]:
        with self._lock:
            return [e for e in self.events if e.name == name]

    def snapshot(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self.events)

    def _record(self, path: str, batch: object) -> list[str]:
        ids: list[str] = []
        with self._lock:
            for raw in batch if isinstance(batch, list) else []:
                if not isinstance(raw, dict):
                    continue
                event_id = str(raw.get("id") or secrets.token_hex(8))
                data: dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
                self.events.append(ReceivedEvent(str(raw.get("name")), event_id, data, raw, path))
                ids.append(event_id)
        return ids

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder.requests += 1
                    recorder.received.append((self.path, body))
                    mode, delay = recorder.mode, recorder.delay
                if mode == "hang":
                    recorder._release.wait(recorder.max_hang_seconds)
                elif mode == "delay":
                    time.sleep(delay)
                elif mode == "error":
                    self._answer(500, {"error": "stand-in event API failing on purpose", "status": 500})
                    return
                try:
                    batch = json.loads(body or b"[]")
                except ValueError:
                    self._answer(400, {"error": "invalid JSON", "status": 400})
                    return
                self._answer(200, {"ids": recorder._record(self.path, batch), "status": 200})

            def _answer(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    self.close_connection = True

        return Handler


# ---- the app under agentic serve -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _setting_names() -> set[str]:
    try:
        from agentic.config import Settings
    except ImportError:  # pragma: no cover - the runner always runs inside the project's venv
        return set()
    return {name.upper() for name in Settings.model_fields}


def server_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The process environment less every agentic / Inngest variable, plus ``settings``."""
    ours = _setting_names()
    env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("INNGEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


class ServedApp:
    """``agentic serve`` in a subprocess of its own session, on a free loopback port."""

    def __init__(self, settings: Mapping[str, str], *, workers: int = 1, threads: int = 16,
                 port: int | None = None, cwd: Path | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.workers = workers
        self._log = tempfile.NamedTemporaryFile(prefix="agentic-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self._own_cwd = cwd is None
        self._cwd = cwd or Path(tempfile.mkdtemp(prefix="agentic-serve-"))
        command = [sys.executable, "-m", "agentic.cli", "serve", "--host", HOST, "--port", str(self.port),
                   "--workers", str(workers), "--threads", str(threads)]
        self.process = subprocess.Popen(command, cwd=self._cwd, env=server_env(settings),  # noqa: S603
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def output(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker answers /api/health (any status: the database may be down on purpose)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agentic serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                httpx.get(f"{self.base_url}/api/health", timeout=2)
                if len(self.worker_pids()) >= self.workers:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agentic serve did not answer within {timeout:g}s:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        return _children(self.process.pid)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGQUIT (quick), then SIGKILL for the server's own process group."""
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        if self._own_cwd:
            shutil.rmtree(self._cwd, ignore_errors=True)


# ---- a fake Inngest executor over HTTP (dev mode: unsigned) ---------------------------------------------


@dataclass
class DriveResult:
    ok: bool
    requests: int
    seconds: float
    output: Any = None
    error: str | None = None


def drive_run(client: httpx.Client, event: Mapping[str, Any], *, fn_id: str = "llm-generate",
              max_attempts: int = 4, max_requests: int = 40) -> DriveResult:
    """Run one function to its end the way Inngest's executor does (reference §8): POST, memoise the step
    ops of each 206, retarget planned or failed steps, stop at 200 or a final 500."""
    run_id = "run_" + secrets.token_hex(8)
    steps: dict[str, Any] = {}
    stack: list[str] = []
    attempt, target, planned = 0, None, False
    started = time.monotonic()
    for request_number in range(1, max_requests + 1):
        body = {"event": dict(event), "events": [dict(event)], "steps": steps, "use_api": False,
                "ctx": {"run_id": run_id, "attempt": attempt, "disable_immediate_execution": planned,
                        "stack": {"stack": list(stack)}, "max_attempts": max_attempts}}
        try:
            response = client.post(INNGEST_PATH, params={"fnId": f"{APP_ID}-{fn_id}", "stepId": target or "step"},
                                   content=json.dumps(body, separators=(",", ":")),
                                   headers={"Content-Type": "application/json", "X-Inngest-Server-Kind": "dev"})
        except httpx.TransportError as exc:  # as Inngest does: the request is retried as a new attempt
            attempt += 1
            if attempt >= max_attempts:
                return DriveResult(False, request_number, time.monotonic() - started, error=repr(exc))
            continue
        if response.status_code == 200:
            return DriveResult(True, request_number, time.monotonic() - started, output=response.json())
        if response.status_code == 206:
            for op in response.json():
                kind, step = op["op"], op["id"]
                if kind in ("StepRun", "StepFailed", "Sleep"):
                    steps[step] = {"data": op.get("data")} if kind == "StepRun" else (
                        {"error": op.get("error")} if kind == "StepFailed" else None)
                    stack.append(step)
                    attempt, target, planned = 0, None, False
                elif kind == "StepPlanned":
                    target, planned = step, True
                elif kind == "StepError":
                    attempt, target = attempt + 1, step
                else:
                    return DriveResult(False, request_number, time.monotonic() - started,
                                       error=f"unexpected op {kind}")
            continue
        if response.status_code == 500 and response.headers.get("x-inngest-no-retry") != "true" \
                and attempt + 1 < max_attempts:
            attempt += 1
            continue
        return DriveResult(False, request_number, time.monotonic() - started,
                           error=f"HTTP {response.status_code}: {response.text[:300]}")
    return DriveResult(False, max_requests, time.monotonic() - started, error="too many requests")


# ---- Server-Sent Events ---------------------------------------------------------------------------------


@dataclass
class SSEMessage:
    event: str
    data: str
    id: str | None


def sse_messages(lines: Iterator[str]) -> Iterator[SSEMessage]:
    """Events from the lines of a text/event-stream (comments and retry-only blocks skipped)."""
    name, event_id = "", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SSEMessage(name or "message", "\n".join(data), event_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "data":
            data.append(value)
        elif key == "event":
            name = value
        elif key == "id":
            event_id = value


@dataclass
class WatchResult:
    job_id: str
    connected: bool = False
    done: dict[str, Any] | None = None
    text: str = ""
    events: int = 0
    reconnects: int = 0
    statuses: list[int] = field(default_factory=list)
    done_at: float | None = None
    error: str | None = None


def watch_job(client: httpx.Client, job_id: str, api_key: str, *, deadline: float,
              on_connected: Callable[[], None] = lambda: None, max_connects: int = 6) -> WatchResult:
    """Follow a job's event stream until ``done`` (reconnecting with Last-Event-ID), or the deadline.

    ``client`` (with the server as its base URL) may be shared by many watchers: httpx clients are
    thread-safe, and building one costs tens of milliseconds of CPU."""
    result = WatchResult(job_id)
    last_id: str | None = None
    for connect in range(max_connects):
        if time.monotonic() >= deadline or result.done is not None:
            break
        result.reconnects = connect
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            with client.stream("GET", f"/api/jobs/{job_id}/events", headers=headers) as response:
                result.statuses.append(response.status_code)
                if response.status_code == 204:  # the server says we saw done already
                    break
                if response.status_code != 200:
                    time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
                    continue
                for message in sse_messages(response.iter_lines()):
                    result.events += 1
                    last_id = message.id or last_id
                    payload = json.loads(message.data)
                    if message.event == "status" and not result.connected:
                        result.connected = True
                        on_connected()
                    elif message.event == "delta":
                        result.text += payload["text"]
                    elif message.event == "reset":
                        result.text = ""
                    elif message.event == "done":
                        result.done, result.done_at = payload, time.monotonic()
                        break
                    if time.monotonic() >= deadline:
                        break
        except (httpx.TransportError, ValueError, KeyError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
    if not result.connected:
        on_connected()  # never leave the phase waiting for a client that gave up
    return result


# ---- the run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    database_url: str = DEFAULT_DATABASE_URL
    requests: int = 5000
    clients: int = 64
    retry_every: int = 2  # every n-th request is retried once (2: half of them)
    sse_clients: int = 500
    drivers: int = 16  # concurrent executor runs in the streams phase
    workers: int = 4
    threads: int = 224  # streams are capped at three quarters of the threads per worker (168 x 4 > 500)
    pool_size: int = 5
    model: str = "mock-slow-1"
    max_tokens: int = 8
    mock_tokens_per_second: float = 50.0
    time_limit: float = 540.0  # the whole run, server start to verification
    keep_schema: bool = False


@dataclass
class RequestRecord:
    index: int
    user_id: str
    idempotency_key: str
    status: int = 0
    seconds: float = 0.0
    job_id: str | None = None
    content_type: str = ""
    retried: bool = False
    retry_status: int = 0
    retry_seconds: float = 0.0
    retry_job_id: str | None = None
    retry_replayed: bool = False
    error: str | None = None
    codes: list[str] = field(default_factory=list)  # the problem code of each answer that was not a 202
    refused_job_ids: list[str] = field(default_factory=list)  # jobs named by a refusal (queue_unavailable)


@dataclass
class LoadReport:
    config: LoadConfig
    generate: dict[str, Any] = field(default_factory=dict)
    streams: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    server_log: list[str] = field(default_factory=list)  # the server's distinct warnings and errors

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> str:
        return json.dumps({"config": asdict(self.config), "generate": self.generate, "streams": self.streams,
                           "violations": self.violations, "server_log": self.server_log}, indent=2, default=str)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        remaining = max(self.at - time.monotonic(), 0.0)
        return remaining if cap is None else min(remaining, cap)


def run_load(config: LoadConfig) -> LoadReport:
    """Start the stack, run both phases, check the invariants, tear everything down."""
    from sqlalchemy import create_engine, text

    from agentic.store.engine import create_db_engine, init_db
    from agentic.store.keys import ApiKeyStore

    if not config.database_url.startswith("postgresql"):
        raise ValueError("the load run needs PostgreSQL (a postgresql+psycopg:// URL)")
    report = LoadReport(config)
    deadline = _Deadline(config.time_limit)
    schema = "load_" + secrets.token_hex(5)
    admin = create_engine(config.database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(config.database_url, schema)
    engine = create_db_engine(url, pool_size=4)
    try:
        init_db(engine)
        keys = ApiKeyStore(engine)
        users = [f"load-user-{i:03d}" for i in range(config.clients)]
        api_keys = {user: keys.create(user, label="load").secret for user in users}
        with EventRecorder() as recorder:
            settings = {
                "DATABASE_URL": url, "DATABASE_POOL_SIZE": str(config.pool_size), "USE_QUEUE": "true",
                "LLM_PROVIDER": "mock", "MOCK_TOKENS_PER_SECOND": str(config.mock_tokens_per_second),
                "INNGEST_DEV": "1", "INNGEST_BASE_URL": recorder.url, "INNGEST_EVENT_API_BASE_URL": recorder.url,
                "EVENT_SEND_TIMEOUT": "5", "PROGRESS_FLUSH_SECONDS": "0.1", "SSE_HEARTBEAT_SECONDS": "5",
                "SSE_MAX_SECONDS": "120",
                "SSE_MAX_STREAMS_PER_KEY": str(max(10, math.ceil(config.sse_clients / config.clients) + 5)),
            }
            log(f"starting agentic serve ({config.workers} workers x {config.threads} threads) on schema {schema}")
            with ServedApp(settings, workers=config.workers, threads=config.threads) as server:
                server.wait_ready(timeout=deadline.left(60))
                log(f"serving on {server.base_url}; events go to {recorder.url}")
                stack = _Stack(config, server.base_url, users, api_keys, recorder, engine, report, deadline)
                _generate_phase(stack)
                _streams_phase(stack)
                health = httpx.get(f"{server.base_url}/api/health", timeout=5)
                if health.status_code != 200:
                    report.violations.append(f"health after the run: {health.status_code} {health.text[:200]}")
                if server.process.poll() is not None:
                    report.violations.append("the server died during the run")
                report.server_log = _distinct_problems(server.output())
    finally:
        engine.dispose()
        if not config.keep_schema:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return report


@dataclass
class _Stack:
    """What both phases work against."""

    config: LoadConfig
    base_url: str
    users: list[str]
    api_keys: dict[str, str]
    recorder: EventRecorder
    engine: Any
    report: LoadReport
    deadline: _Deadline

    def violation(self, message: str) -> None:
        self.report.violations.append(message)


# ---- phase 1: generate ----------------------------------------------------------------------------------


def _distinct_problems(output: str, limit: int = 12) -> list[str]:
    """The server's WARNING/ERROR lines, job ids and numbers blanked so that each kind shows once."""
    import re

    seen: dict[str, str] = {}
    for line in output.splitlines():
        if "WARNING" in line or "ERROR" in line or "Traceback" in line:
            kind = re.sub(r"job_[\w-]+|\d+", "#", line)
            seen.setdefault(kind, line.strip()[:300])
    return list(seen.values())[:limit]


def _generate_phase(stack: _Stack) -> None:
    config = stack.config
    run_tag = secrets.token_hex(4)
    records = [RequestRecord(i, stack.users[i % len(stack.users)], f"load-{run_tag}-{i:05d}",
                             retried=config.retry_every > 0 and i % config.retry_every == 0)
               for i in range(config.requests)]
    log(f"generate phase: {config.requests} requests from {config.clients} clients "
        f"(1 in {config.retry_every} retried)")
    events_before = len(stack.recorder.snapshot())
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=config.clients, thread_name_prefix="load-client") as pool:
        futures = [pool.submit(_client_loop, stack, [r for r in records if r.user_id == user])
                   for user in stack.users]
        for future in futures:
            future.result(timeout=stack.deadline.left() + 60)
    elapsed = time.monotonic() - started
    time.sleep(0.2)  # margin for the recorder's bookkeeping (each event is sent before its 202)
    _check_generate(stack, records, run_tag, stack.recorder.snapshot()[events_before:], elapsed)
    log(f"generate phase done in {elapsed:.1f}s: {dict(Counter(r.status for r in records))}")


def _client_loop(stack: _Stack, records: list[RequestRecord]) -> None:
    """One client: its requests one after the other on a keep-alive connection, retries right after."""
    if not records:
        return
    headers = {"Authorization": f"Bearer {stack.api_keys[records[0].user_id]}"}
    with httpx.Client(base_url=stack.base_url, timeout=httpx.Timeout(30.0, connect=10.0)) as client:
        for record in records:
            if stack.deadline.left() <= 0:
                record.error = "not sent: time limit"
                continue
            body = {"model": stack.config.model, "max_tokens": stack.config.max_tokens,
                    "messages": [{"role": "user", "content": f"load request {record.index}"}]}
            request_headers = {**headers, "Idempotency-Key": record.idempotency_key}
            for retry in (False, True) if record.retried else (False,):
                started = time.perf_counter()
                try:
                    response = client.post("/api/llm/generate", json=body, headers=request_headers)
                except httpx.TransportError as exc:
                    record.error = f"{type(exc).__name__}: {exc}"
                    break
                seconds = time.perf_counter() - started
                job_id = response.json().get("job_id") if response.status_code == 202 else None
                if response.status_code != 202:
                    record.codes.append(f"{response.status_code} {_problem_code(response)}")
                    refused = _problem_job_id(response)
                    if refused:
                        record.refused_job_ids.append(refused)
                if retry:
                    record.retry_status, record.retry_seconds, record.retry_job_id = \
                        response.status_code, seconds, job_id
                    record.retry_replayed = response.headers.get("Idempotent-Replayed") == "true"
                else:
                    record.status, record.seconds, record.job_id = response.status_code, seconds, job_id
                    record.content_type = response.headers.get("content-type", "")


def _problem_job_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("job_id") if isinstance(body, dict) and isinstance(body.get("job_id"), str) else None


def _problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    return str(body.get("code")) if isinstance(body, dict) else "(not an object)"


def _check_generate(stack: _Stack, records: list[RequestRecord], run_tag: str,
                    received: list[ReceivedEvent], elapsed: float) -> None:
    """Every answer against the rows and the events.

    - 202: the job exists, is pending (nothing ran phase-1 jobs) and has its event (event id == job id);
    - a refusal naming a job (503 queue_unavailable) left that job failed, never pending (no orphan);
    - no pending job of this run that no 202 announced (an orphan the client was told failed);
    - a job id sent more than once only for a replayed request (Inngest deduplicates by id), never more
      often than it was requested; an event for a refused job only after its refusal (a late send).
    """
    config = stack.config
    statuses = Counter(r.status for r in records)
    retried = [r for r in records if r.retried]
    answers = [(r, r.status, r.job_id) for r in records] + [(r, r.retry_status, r.retry_job_id) for r in retried]
    accepted = {job_id for _, status, job_id in answers if status == 202 and job_id}
    refused = {job_id for r in records for job_id in r.refused_job_ids}
    errors = [r for r in records if r.error]
    if errors:
        stack.violation(f"generate: {len(errors)} requests failed at the transport level (first: {errors[0].error})")
    server_errors = sum(1 for _, status, _ in answers if status >= 500)
    if server_errors:
        stack.violation(f"generate: {server_errors} answers were 5xx "
                        f"({dict(Counter(code for r in records for code in r.codes))})")
    if statuses.get(202, 0) != config.requests:
        stack.violation(f"generate: only {statuses.get(202, 0)} of {config.requests} requests answered 202 "
                        f"({dict(statuses)})")
    if len({r.job_id for r in records if r.status == 202}) != statuses.get(202, 0):
        stack.violation("generate: two requests with different Idempotency-Keys got the same job")
    bad_retries = [r for r in retried if r.status == 202 and (
        r.retry_status != 202 or r.retry_job_id != r.job_id or not r.retry_replayed)]
    if bad_retries:
        first = bad_retries[0]
        stack.violation(f"generate: {len(bad_retries)} retries did not return the same job (first: key "
                        f"{first.idempotency_key}: {first.retry_status} {first.codes} {first.retry_job_id} != "
                        f"{first.job_id})")
    bad_type = [r for r in records if r.status == 202 and not r.content_type.startswith("application/json")]
    if bad_type:
        stack.violation(f"generate: {len(bad_type)} answers 202 were not application/json")

    events = [e for e in received if e.name == EVENT_GENERATE]
    rows, orphans, late, unexplained = _check_jobs_and_events(stack, answers, accepted=accepted, refused=refused,
                                                              run_tag=run_tag, events=events)
    sent = Counter(e.id for e in events)
    first_latencies = [r.seconds for r in records if r.status]
    retry_latencies = [r.retry_seconds for r in retried if r.retry_status]
    stack.report.generate = {
        "requests": config.requests, "clients": config.clients, "retried": len(retried),
        "answers_202": statuses.get(202, 0), "other_statuses": {str(k): v for k, v in statuses.items() if k != 202},
        "other_answers": dict(Counter(code for r in records for code in r.codes)),
        "answers_5xx": server_errors, "transport_errors": len(errors),
        "retries_same_job": sum(1 for r in retried if r.retry_job_id == r.job_id and r.retry_replayed),
        "job_rows": len(rows), "accepted_jobs": len(accepted), "refused_jobs_failed": sum(
            1 for job_id in refused if job_id in rows and rows[job_id].status == "failed"),
        "orphans": orphans, "events": len(events), "distinct_event_ids": len(sent),
        "resent_ids": sum(1 for n in sent.values() if n > 1), "late_events": late,
        "unexplained_duplicates": unexplained,
        "seconds": round(elapsed, 2), "throughput_rps": round(len(answers) / elapsed, 1),
        "latency_ms": _percentiles(first_latencies, ("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)),
        "retry_latency_ms": _percentiles(retry_latencies, ("p50", 50), ("p99", 99)),
    }


Answer = tuple[RequestRecord, int, str | None]


def _check_jobs_and_events(stack: _Stack, answers: list[Answer], *, accepted: set[str], refused: set[str],
                           run_tag: str, events: list[ReceivedEvent]) -> tuple[dict[str, Any], int, int, int]:
    """Rows and events against the answers; returns (rows by id, orphans, late events, unexplained duplicates)."""
    from sqlalchemy import bindparam, text

    sent = Counter(e.id for e in events)
    query = text("SELECT id, user_id, idempotency_key, status, error_code FROM llm_jobs "
                 "WHERE idempotency_key LIKE :tag OR id IN :ids").bindparams(bindparam("ids", expanding=True))
    with stack.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(query, {"tag": f"load-{run_tag}-%",
                                                            "ids": sorted(accepted | refused | set(sent)) or ["-"]})}
    missing = accepted - set(rows)
    if missing:
        stack.violation(f"generate: {len(missing)} jobs answered 202 have no row")
    not_pending = [job_id for job_id in accepted & set(rows) if rows[job_id].status != "pending"]
    if not_pending:
        row = rows[not_pending[0]]
        stack.violation(f"generate: {len(not_pending)} jobs answered 202 are no longer pending (first: {row.id} "
                        f"{row.status} {row.error_code})")
    orphans = [row.id for row in rows.values() if row.status == "pending" and row.id not in accepted]
    if orphans:
        stack.violation(f"generate: {len(orphans)} pending jobs were never answered 202 (orphans)")
    keys = Counter((row.user_id, row.idempotency_key) for row in rows.values() if row.idempotency_key)
    if any(n > 1 for n in keys.values()):
        stack.violation("generate: an idempotency key has more than one job row")

    without_event = accepted - set(sent)
    if without_event:
        stack.violation(f"generate: {len(without_event)} jobs answered 202 have no event")
    unknown = set(sent) - set(rows)
    if unknown:
        stack.violation(f"generate: {len(unknown)} events name no job")
    late = {event_id for event_id in set(sent) - accepted if event_id in rows and rows[event_id].status == "failed"}
    if set(sent) - accepted - late - unknown:
        stack.violation("generate: an event was sent for a job that was neither accepted nor failed")
    if any(e.data.get("job_id") != e.id for e in events):
        stack.violation("generate: an event's id is not its job_id")
    if any(e.id in rows and rows[e.id].user_id != e.data.get("user_id") for e in events):
        stack.violation("generate: an event carries another user's id")
    requested = Counter(job_id for _, _, job_id in answers if job_id)
    resent = {event_id for event_id, n in sent.items() if n > 1}
    unexplained = {event_id for event_id in resent if sent[event_id] > max(requested[event_id], 1)}
    if unexplained:
        stack.violation(f"generate: {len(unexplained)} job ids were sent more often than they were requested "
                        "(a duplicate event outside an idempotent replay)")
    return rows, len(orphans), len(late), len(unexplained)


def _rows(stack: _Stack, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    with stack.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _client(base_url: str, *, connections: int, read_timeout: float) -> httpx.Client:
    """One client shared by many threads (each httpx client costs tens of milliseconds of CPU to build)."""
    return httpx.Client(base_url=base_url, timeout=httpx.Timeout(read_timeout, connect=10.0),
                        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


def _percentiles(seconds: Sequence[float], *points: tuple[str, float]) -> dict[str, float]:
    return {name: round(percentile(seconds, pct) * 1000, 1) for name, pct in points}


# ---- phase 2: streams -----------------------------------------------------------------------------------


def _streams_phase(stack: _Stack) -> None:
    config = stack.config
    if config.sse_clients <= 0:
        return
    owners = [stack.users[i % len(stack.users)] for i in range(config.sse_clients)]
    log(f"streams phase: creating {config.sse_clients} jobs")
    jobs = _create_jobs(stack, owners)
    events = {e.id: e.raw for e in stack.recorder.named(EVENT_GENERATE)}

    connected = threading.Semaphore(0)
    watch_deadline = time.monotonic() + stack.deadline.left()
    log(f"streams phase: opening {len(jobs)} SSE clients")
    sse_client = _client(stack.base_url, connections=len(jobs) + 8, read_timeout=30.0)
    watchers = ThreadPoolExecutor(max_workers=max(len(jobs), 1), thread_name_prefix="load-sse")
    watches = [watchers.submit(watch_job, sse_client, job_id, stack.api_keys[owner], deadline=watch_deadline,
                               on_connected=connected.release) for owner, job_id in jobs]
    waiting_since = time.monotonic()
    for _ in jobs:
        if not connected.acquire(timeout=stack.deadline.left(120)):
            break
    connect_seconds = time.monotonic() - waiting_since

    log(f"streams phase: driving {len(jobs)} runs through {INNGEST_PATH} ({config.drivers} at a time)")
    drive_started = time.monotonic()

    executor_client = _client(stack.base_url, connections=config.drivers + 4, read_timeout=60.0)

    def drive(job_id: str) -> DriveResult:
        event = events.get(job_id)
        if event is None:
            return DriveResult(False, 0, 0.0, error="no event was recorded for this job")
        return drive_run(executor_client, event)

    try:
        with ThreadPoolExecutor(max_workers=config.drivers, thread_name_prefix="load-driver") as pool:
            runs = list(pool.map(drive, [job_id for _, job_id in jobs], timeout=stack.deadline.left() + 30))
        watchers.shutdown(wait=False)
        results = [w.result(timeout=stack.deadline.left() + 45) for w in watches]
    finally:
        executor_client.close()
        sse_client.close()
    elapsed = time.monotonic() - drive_started
    _check_streams(stack, [job_id for _, job_id in jobs], runs, results, drive_started)
    stack.report.streams.update(connect_seconds=round(connect_seconds, 2), seconds=round(elapsed, 2))
    log(f"streams phase done in {elapsed:.1f}s")


def _create_jobs(stack: _Stack, owners: list[str]) -> list[tuple[str, str]]:
    """Queue one job per owner; returns (owner, job id) for each job created."""
    job_ids: list[str | None] = [None] * len(owners)
    errors: list[str] = []

    workers = min(stack.config.clients, 32)
    client = _client(stack.base_url, connections=workers, read_timeout=30.0)

    def create(index: int) -> None:
        body = {"model": stack.config.model, "max_tokens": stack.config.max_tokens,
                "messages": [{"role": "user", "content": f"streamed load job {index}"}]}
        try:
            response = client.post("/api/llm/generate", json=body,
                                   headers={"Authorization": f"Bearer {stack.api_keys[owners[index]]}"})
        except httpx.TransportError as exc:
            errors.append(repr(exc))
            return
        if response.status_code == 202:
            job_ids[index] = response.json()["job_id"]
        else:
            errors.append(f"{response.status_code} {response.text[:200]}")

    with client, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load-create") as pool:
        list(pool.map(create, range(len(owners)), timeout=stack.deadline.left() + 30))
    if errors:
        stack.violation(f"streams: {len(errors)} jobs could not be created (first: {errors[0]})")
    return [(owners[i], job_id) for i, job_id in enumerate(job_ids) if job_id]


def _check_streams(stack: _Stack, job_ids: list[str], runs: list[DriveResult], results: list[WatchResult],
                   drive_started: float) -> None:
    rows = {row.id: row for row in _rows(
        stack, "SELECT id, status, response FROM llm_jobs WHERE id = ANY(:ids)", ids=job_ids)}
    failed_runs = [r for r in runs if not r.ok]
    if failed_runs:
        stack.violation(f"streams: {len(failed_runs)} runs did not complete (first: {failed_runs[0].error})")
    not_completed = [job_id for job_id in job_ids if job_id not in rows or rows[job_id].status != "completed"]
    if not_completed:
        stack.violation(f"streams: {len(not_completed)} jobs did not end completed")
    no_done = [r for r in results if r.done is None]
    if no_done:
        first = no_done[0]
        stack.violation(f"streams: {len(no_done)} of {len(results)} SSE clients never got `done` (first: "
                        f"{first.job_id} statuses {first.statuses} events {first.events} error {first.error})")
    wrong_done = [r for r in results if r.done is not None and r.done.get("status") != "completed"]
    if wrong_done:
        stack.violation(f"streams: {len(wrong_done)} `done` events did not say completed")
    mismatched = [r for r in results if r.done is not None and r.job_id in rows
                  and r.text != (rows[r.job_id].response or {}).get("content")]
    if mismatched:
        stack.violation(f"streams: {len(mismatched)} clients assembled text that differs from the stored "
                        f"response (first: {mismatched[0].job_id}: {mismatched[0].text!r})")
    if any(not (row.response or {}).get("content") for row in rows.values()):
        stack.violation("streams: a completed job has no response text")
    to_done = [r.done_at - drive_started for r in results if r.done_at is not None]
    stack.report.streams = {
        "sse_clients": len(results), "connected": sum(1 for r in results if r.connected),
        "done_received": len(results) - len(no_done), "done_completed": len(results) - len(no_done) - len(wrong_done),
        "text_matches": len(results) - len(no_done) - len(mismatched),
        "reconnects": sum(r.reconnects for r in results), "runs_completed": len(runs) - len(failed_runs),
        "executor_requests": sum(r.requests for r in runs),
        "run_ms": _percentiles([r.seconds for r in runs if r.ok], ("p50", 50), ("p99", 99)),
        "time_to_done_ms": _percentiles(to_done, ("p50", 50), ("p99", 99), ("max", 100)),
    }


# ---- the summary ----------------------------------------------------------------------------------------


def markdown(report: LoadReport) -> str:
    c, g, s = report.config, report.generate, report.streams
    lines = [
        f"### Load: {c.requests:,} generate requests / {c.clients} clients / {c.sse_clients} SSE clients",
        "",
        f"agentic serve (waitress, {c.workers} workers x {c.threads} threads) on PostgreSQL, "
        f"`LLM_PROVIDER=mock`, model `{c.model}`, `USE_QUEUE=true`, events to a loopback stand-in of Inngest's "
        "event API; the load runner on the same 2-core machine.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    if g:
        lat, rlat = g["latency_ms"], g["retry_latency_ms"]
        lines += [
            f"| generate requests (+ retries, 1 in {c.retry_every}) | {g['requests']:,} (+ {g['retried']:,}) |",
            f"| answered 202 / 5xx / transport errors | {g['answers_202']:,} / {g['answers_5xx']} / "
            f"{g['transport_errors']} |",
            f"| retries returning the same job (Idempotent-Replayed) | {g['retries_same_job']:,} of {g['retried']:,} |",
            f"| jobs answered 202 / their rows / distinct event ids (event id == job id) | {g['accepted_jobs']:,} / "
            f"{g['job_rows']:,} / {g['distinct_event_ids']:,} |",
            f"| orphans (pending, never answered 202) | {g['orphans']} |",
            f"| events received (ids re-sent by a replay, deduplicated by id) | {g['events']:,} "
            f"({g['resent_ids']:,}) |",
            f"| duplicate events outside a replay | {g['unexplained_duplicates']} |",
            f"| generate latency p50 / p90 / p99 / max | {lat['p50']} / {lat['p90']} / {lat['p99']} / "
            f"{lat['max']} ms |",
            f"| replay latency p50 / p99 | {rlat['p50']} / {rlat['p99']} ms |",
            f"| throughput | {g['throughput_rps']} requests/s over {g['seconds']} s |",
        ]
    if s:
        ttd, run = s["time_to_done_ms"], s["run_ms"]
        lines += [
            f"| SSE clients connected / got `done` / `done` completed | {s['connected']} / {s['done_received']} / "
            f"{s['done_completed']} of {s['sse_clients']} |",
            f"| streamed text equal to the stored response | {s['text_matches']} of {s['sse_clients']} |",
            f"| stream reconnects | {s['reconnects']} |",
            f"| runs driven through /api/inngest (requests) | {s['runs_completed']} ({s['executor_requests']}) |",
            f"| run duration p50 / p99 | {run['p50']} / {run['p99']} ms |",
            f"| time to `done` from the first run, p50 / p99 / max | {ttd['p50']} / {ttd['p99']} / {ttd['max']} ms |",
        ]
    if g.get("other_answers"):
        lines.insert(lines.index("|---|---|") + 3, "| answers other than 202, by problem code | " + ", ".join(
            f"{code}: {n}" for code, n in sorted(g["other_answers"].items())) + " |")
    lines += ["", "Invariants: " + ("all held." if report.ok else "BROKEN:")]
    lines += [f"- {violation}" for violation in report.violations]
    if report.server_log and not report.ok:
        lines += ["", "Server warnings and errors (one of each kind):", ""]
        lines += [f"    {line}" for line in report.server_log]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--retry-every", type=int, default=defaults.retry_every)
    parser.add_argument("--sse-clients", type=int, default=defaults.sse_clients)
    parser.add_argument("--drivers", type=int, default=defaults.drivers)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--pool-size", type=int, default=defaults.pool_size)
    parser.add_argument("--time-limit", type=float, default=defaults.time_limit)
    parser.add_argument("--json", type=Path, help="also write the full report as JSON here")
    parser.add_argument("--keep-schema", action="store_true", help="keep the database schema for inspection")
    args = parser.parse_args(argv)
    if min(args.requests, args.clients, args.drivers, args.workers, args.threads) < 1 or args.sse_clients < 0:
        parser.error("sizes must be positive")
    stream_slots = args.workers * (args.threads - max(1, args.threads // 4))  # agentic.server.stream_cap
    if args.sse_clients + 32 > stream_slots:
        parser.error(f"{args.sse_clients} SSE clients need more than the {stream_slots} event streams that "
                     "--workers x --threads allow (three quarters of each worker's threads)")
    config = LoadConfig(database_url=args.database_url, requests=args.requests, clients=args.clients,
                        retry_every=args.retry_every, sse_clients=args.sse_clients, drivers=args.drivers,
                        workers=args.workers, threads=args.threads, pool_size=args.pool_size,
                        time_limit=args.time_limit, keep_schema=args.keep_schema)
    report = run_load(config)
    if args.json:
        args.json.write_text(report.to_json())
    sys.stdout.write(markdown(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
