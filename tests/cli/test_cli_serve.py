"""``agentic serve``: waitress worker processes, tables created first, and the URLs a developer needs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from agentic.cli import main
from agentic.store.engine import create_db_engine
from agentic.web.app import container_of
from tests.cli.cli_support import cli_env

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Stop the server from actually starting; record the app and options it would have run with."""
    import agentic.server

    runs: list[tuple[Any, Any]] = []

    def serve(app: Any, options: Any, **_kwargs: Any) -> int:
        runs.append((app, options))
        return 0

    monkeypatch.setattr(agentic.server, "serve", serve)
    return runs


def _serve(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["serve", *args], env=cli_env(database_url), catch_exceptions=False)
    return result.exit_code, result.output


def test_serve_creates_the_tables_and_prints_the_urls_and_the_dev_server_command(
        sqlite_url: str, server_runs: list[tuple[Any, Any]]) -> None:
    code, output = _serve(sqlite_url, "--port", "8123")
    assert code == 0, output
    base = "http://127.0.0.1:8123"
    assert f"API:        {base}/api" in output
    assert f"Playground: {base}/" in output
    assert f"Inngest:    {base}/api/inngest" in output
    assert f"npx --ignore-scripts=false inngest-cli@latest dev -u {base}/api/inngest" in output.splitlines()[-1]
    engine = create_db_engine(sqlite_url)
    try:
        assert {"llm_jobs", "api_keys"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_serve_in_production_mode_points_to_the_vercel_deployment(sqlite_url: str, server_runs: list[tuple[Any, Any]]
                                                                  ) -> None:
    """The advice matches the README's deployment: `vercel deploy --prod` of app.py, configured by vercel.json."""
    env = {**cli_env(sqlite_url), "INNGEST_DEV": "0", "INNGEST_SIGNING_KEY": "signkey-prod-" + "ab" * 32}
    result = CliRunner().invoke(main, ["serve", "--port", "8125"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "vercel deploy --prod" in result.output.splitlines()[-1]
    readme = (ROOT / "README.md").read_text()
    assert "`vercel deploy --prod`" in readme and '"framework": "flask"' in (ROOT / "vercel.json").read_text()
    assert (ROOT / "app.py").exists()


def test_an_in_memory_database_is_served_by_one_process(server_runs: list[tuple[Any, Any]]) -> None:
    """Each worker process would hold a database of its own: jobs queued in one could not be read in another."""
    assert _serve("sqlite://", "--port", "8126")[0] == 0
    assert server_runs[0][1].workers == 1
    assert _serve("sqlite://", "--port", "8126", "--workers", "3")[0] == 0
    assert server_runs[1][1].workers == 3  # told: as told


def test_serve_runs_threaded_workers_and_keeps_threads_from_event_streams(
        sqlite_url: str, server_runs: list[tuple[Any, Any]]) -> None:
    assert _serve(sqlite_url, "--host", "0.0.0.0", "--port", "8124")[0] == 0
    app, options = server_runs[0]
    assert (options.host, options.port) == ("0.0.0.0", 8124)
    assert (options.workers, options.threads) == (2, 16)  # a SQLite file is shared by two processes
    assert options.max_body_bytes == 4_718_592  # the largest body any route takes (/api/inngest's)
    assert container_of(app).settings.sse_max_streams == 12  # a quarter of the threads kept for the API


def test_sse_max_streams_is_lowered_to_leave_threads_free(sqlite_url: str,
                                                          server_runs: list[tuple[Any, Any]]) -> None:
    result = CliRunner().invoke(main, ["serve", "--threads", "8"], catch_exceptions=False,
                                env=cli_env(sqlite_url, SSE_MAX_STREAMS="100"))
    assert result.exit_code == 0, result.output
    assert container_of(server_runs[0][0]).settings.sse_max_streams == 6


def test_serve_uses_two_workers_on_postgres(postgres_url: str, server_runs: list[tuple[Any, Any]]) -> None:
    code, output = _serve(postgres_url, "--threads", "8")
    assert code == 0, output
    options = server_runs[0][1]
    assert (options.workers, options.threads) == (2, 8)


def test_serve_with_a_bad_configuration_exits_2_before_starting(sqlite_url: str,
                                                                server_runs: list[tuple[Any, Any]]) -> None:
    result = CliRunner().invoke(main, ["serve"], env=cli_env(sqlite_url, MOCK_TOKENS_PER_SECOND="-1"))
    assert result.exit_code == 2
    assert "MOCK_TOKENS_PER_SECOND" in result.stderr
    assert server_runs == []


def test_serve_really_serves(tmp_path: Path) -> None:
    """The real thing in a subprocess: it answers the API and the Inngest endpoint, then stops cleanly."""
    port = _free_port()
    env = {**os.environ, **cli_env(f"sqlite:///{tmp_path / 'serve.db'}"), "LLM_PROVIDER": "mock",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen([sys.executable, "-m", "agentic.cli", "serve", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.communicate(timeout=5)[0]}")
                time.sleep(0.2)
        assert health.status_code == 200
        assert httpx.get(f"{base}/api/inngest", timeout=5).status_code == 200  # dev mode inspection
        assert httpx.get(f"{base}/api/jobs", timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f"-u http://127.0.0.1:{port}/api/inngest" in output
    assert "waitress" in output  # the server's start-up log names it
