"""``agentic serve``'s server: waitress worker processes on one listening socket, restarted if one dies.

Why waitress: it reads each request (headers and body) on its event loop and hands it to an application
thread only once it is complete, so a client that sends a header line and stops, or trickles its body, costs
a socket and a buffer but never a thread (gunicorn's gthread worker parses on the thread, with no deadline).
What still holds a thread is a request being answered: an Inngest step for its duration, an event stream
until it ends; ``SSE_MAX_STREAMS`` keeps streams to a share of the threads (see ``stream_cap``).

The parent binds the socket, forks ``workers`` children that each serve it with ``threads`` threads, starts a
new child when one dies (a killed worker's in-flight step is retried by Inngest), and on SIGTERM / SIGINT
stops them and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger("agentic.server")

#: Idle seconds before waitress closes a connection that sends nothing (a slow client's socket).
CHANNEL_TIMEOUT_SECONDS = 60
#: Seconds a stopping worker gives requests in flight.
GRACEFUL_SECONDS = 10


def stream_cap(threads: int) -> int:
    """Event streams one process may hold: three quarters of its threads (at least one), the rest kept for
    the API and for Inngest's calls, which running jobs depend on."""
    return max(1, threads - max(1, threads // 4))


def default_workers(*, in_memory_database: bool) -> int:
    """Worker processes when not told: two, so one busy or dying worker leaves the other serving, and the GIL
    of one process does not cap the server (on SQLite too: WAL and the busy timeout let two processes share
    the file, and two doubled the throughput of one at 8 clients; BENCHMARKS.md, F10). An in-memory SQLite
    database lives in one process, so it gets one."""
    return 1 if in_memory_database else 2


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    workers: int
    threads: int
    max_body_bytes: int
    connection_limit: int = 1000


def serve(app: Any, options: ServerOptions, *, after_fork: Callable[[], None] = lambda: None) -> int:
    """Serve ``app`` until SIGTERM / SIGINT; the exit status."""
    listener = socket.create_server((options.host, options.port), family=_family(options.host), backlog=1024,
                                    reuse_port=False)
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("agentic serving on %s:%d (%d worker(s) x %d threads, waitress)", options.host, options.port,
             options.workers, options.threads)
    while True:
        while not stopping and len(children) < options.workers:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child, measured by the tests that serve for real
                os._exit(_child(app, listener, options, after_fork))
            children.add(pid)
            log.info("worker %d started", pid)
        if not children:
            break
        try:
            pid, status = os.wait()
        except ChildProcessError:
            children.clear()
            continue
        children.discard(pid)
        if not stopping:
            log.warning("worker %d exited (%s); starting another", pid, _describe(status))
            time.sleep(0.1)  # a worker that dies at start must not spin the parent
    listener.close()
    return 0


def _child(app: Any, listener: socket.socket, options: ServerOptions, after_fork: Callable[[], None]) -> int:
    import waitress.channel
    import waitress.server

    # This process only serves: its own refusals (a body over the cap, a malformed request) become problems too.
    waitress.channel.HTTPChannel.error_task_class = _problem_error_task(options.max_body_bytes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    after_fork()
    server = waitress.server.create_server(
        app, sockets=[listener], threads=options.threads, channel_timeout=CHANNEL_TIMEOUT_SECONDS,
        max_request_body_size=options.max_body_bytes, connection_limit=options.connection_limit,
        asyncore_use_poll=True, ident="agentic", clear_untrusted_proxy_headers=True)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except SystemExit:
        pass
    except Exception:
        log.exception("worker %d failed", os.getpid())
        return 1
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=GRACEFUL_SECONDS)
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _problem_error_task(max_body_bytes: int) -> type:
    """waitress's answer to a request it refuses itself (before the app sees it), as application/problem+json."""
    import json

    from waitress.task import ErrorTask

    from agentic.web.problems import PROBLEM_MIME, ApiProblem

    class ProblemErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            if error.code == 413:
                problem = ApiProblem(413, "request_too_large", f"the request body exceeds {max_body_bytes} bytes",
                                     extra={"max_bytes": max_body_bytes})
            else:
                problem = ApiProblem(error.code, "bad_request" if error.code == 400 else "server_error",
                                     str(error.reason))
            body = json.dumps(problem.body()).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", PROBLEM_MIME))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return ProblemErrorTask


def access_logged(app: Any) -> Any:
    """``app`` with one log line per request: method, path (no query: it may hold a cursor) and status."""
    access = logging.getLogger("agentic.access")

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            access.info("%s %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return logged


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.waitstatus_to_exitcode(status)}"


__all__ = ["ServerOptions", "access_logged", "serve", "stream_cap"]
