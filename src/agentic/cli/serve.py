"""agentic serve: the app under waitress worker processes, with the URLs and the dev-server command printed first."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from agentic.cli.base import DEFAULT_PORT, _create_tables, _safe_url, _settings, main

if TYPE_CHECKING:
    from agentic.config import Settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, envvar="PORT", type=click.IntRange(1, 65535),
              help="Port to listen on (env PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes [default: 2; 1 for an in-memory SQLite database].")
@click.option("--threads", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Threads per worker: each request being answered holds one (an Inngest step, an SSE stream).")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(*, host: str, port: int, workers: int | None, threads: int, access_log: bool) -> None:
    """Serve the API, playground and Inngest endpoint (waitress worker processes).

    A request reaches a thread only once it has fully arrived, so slow clients hold no thread; open event
    streams are capped (SSE_MAX_STREAMS, at most three quarters of the threads) so the API and Inngest's
    calls always find one. Creates missing tables first, so a fresh database works at once. On Vercel no
    server is started: `vercel deploy --prod` serves app.py (README, "Deploying to Vercel").
    """
    from agentic.server import ServerOptions, default_workers, stream_cap
    from agentic.server import serve as run_server
    from agentic.store.engine import is_in_memory_sqlite
    from agentic.web.app import container_of, create_app

    settings = _settings()
    _create_tables(settings)
    cap = min(settings.sse_max_streams or threads, stream_cap(threads))
    settings = settings.model_copy(update={"sse_max_streams": cap})
    app = create_app(settings)  # builds everything once, so a config error stops us here, not in a worker

    workers = workers or default_workers(in_memory_database=is_in_memory_sqlite(settings.database_url))
    base = f"http://{_display_host(host)}:{port}"
    for line in _serve_banner(base, settings, workers, threads):
        click.echo(line)
    _log_server_to_stderr()
    if access_log:
        from agentic.server import access_logged

        app.wsgi_app = access_logged(app.wsgi_app)  # type: ignore[method-assign]
    options = ServerOptions(host=host, port=port, workers=workers, threads=threads,
                            max_body_bytes=max(settings.max_request_bytes, settings.max_inngest_request_bytes))
    # Connections opened before the fork must not be shared by the workers: drop them in each child.
    sys.exit(run_server(app, options, after_fork=lambda: container_of(app).engine.dispose(close=False)))


def _log_server_to_stderr() -> None:
    """The server's own lines (start, workers, access log) at INFO; the app's loggers keep their levels."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(levelname)s %(name)s: %(message)s"))
    for name in ("agentic.server", "agentic.access", "waitress"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (display only: a wildcard bind is reachable locally)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _serve_banner(base: str, settings: Settings, workers: int, threads: int) -> list[str]:
    inngest_url = f"{base}/api/inngest"
    mode = "dev mode" if settings.inngest_is_dev else "production mode: signed requests only"
    lines = [
        f"agentic on {base}  (database {_safe_url(settings.database_url)}, "
        f"{workers} worker(s) x {threads} threads, at most {settings.sse_max_streams} event streams each)",
        f"  API:        {base}/api   (health {base}/api/health, spec {base}/api/openapi.json)",
        f"  Playground: {base}/",
        f"  Inngest:    {inngest_url}   ({mode})",
        "Start the Inngest dev server against it (in another terminal):",
        f"  npx --ignore-scripts=false inngest-cli@latest dev -u {inngest_url}",
    ]
    if not settings.inngest_is_dev:
        lines.append("  (the dev server only talks to an app started with INNGEST_DEV=1)")
        lines.append("Serverless instead: `vercel deploy --prod` serves app.py with vercel.json's settings "
                     "(README: Deploying to Vercel)")
    return lines
