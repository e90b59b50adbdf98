"""agentic serve: the app under gunicorn, with the URLs and the dev-server command printed first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from agentic.cli.base import DEFAULT_PORT, _create_tables, _safe_url, _settings, main

if TYPE_CHECKING:
    from flask import Flask

    from agentic.config import Settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, envvar="PORT", type=click.IntRange(1, 65535),
              help="Port to listen on (env PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes [default: 1 on SQLite, 2 on PostgreSQL].")
@click.option("--threads", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Threads per worker: each open SSE stream or Inngest step holds one.")
@click.option("--timeout", type=click.IntRange(30, 3600), default=None,
              help="Seconds a request may run [default: the longest SSE stream or provider read, plus 60].")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(*, host: str, port: int, workers: int | None, threads: int, timeout: int | None,
          access_log: bool) -> None:
    """Serve the API, playground and Inngest endpoint (gunicorn).

    Runs gunicorn with threaded workers (an SSE stream or an Inngest step holds a thread).
    Creates missing tables first, so a fresh database works at once. On Vercel no server is started:
    `vercel deploy --prod` serves app.py (README, "Deploying to Vercel").
    """
    from agentic.web.app import create_app

    settings = _settings()
    _create_tables(settings)
    app = create_app(settings)  # builds everything once, so a config error stops us here, not in a worker

    if workers is None:
        # SQLite serialises writers; one process (with threads) avoids lock contention between processes.
        workers = 2 if settings.is_postgres else 1
    if timeout is None:
        timeout = int(max(settings.sse_max_seconds, settings.provider_read_timeout, 300)) + 60
    base = f"http://{_display_host(host)}:{port}"
    for line in _serve_banner(base, settings, workers, threads):
        click.echo(line)
    server = _gunicorn_app(app, {
        "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
        "timeout": timeout, "graceful_timeout": 30, "keepalive": 5,
        "accesslog": "-" if access_log else None, "errorlog": "-", "proc_name": "agentic",
    })
    server.run()


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (display only: a wildcard bind is reachable locally)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _serve_banner(base: str, settings: Settings, workers: int, threads: int) -> list[str]:
    inngest_url = f"{base}/api/inngest"
    mode = "dev mode" if settings.inngest_is_dev else "production mode: signed requests only"
    lines = [
        f"agentic on {base}  (database {_safe_url(settings.database_url)}, "
        f"{workers} worker(s) x {threads} threads)",
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


def _gunicorn_app(app: Flask, options: dict[str, Any]) -> Any:
    """A gunicorn application serving ``app`` with ``options``, as ``gunicorn`` itself would from a config."""
    from gunicorn.app.base import BaseApplication

    from agentic.web.app import container_of

    class AgenticServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if value is not None:
                    self.cfg.set(name, value)
            # Connections opened before the fork must not be shared by the workers: drop them in each child.
            self.cfg.set("post_fork", lambda _server, _worker: container_of(app).engine.dispose(close=False))
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 24 opens a control socket at one fixed path in $HOME: two servers would collide.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    return AgenticServer()
