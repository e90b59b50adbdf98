"""Job tokens never reach a log: not the access log of `agentic serve --access-log` (tokens travel in query
strings, Referer headers and bearer headers), not werkzeug's development-server log."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agentic.web.tokens import JobTokens, install_log_redaction

ROOT = Path(__file__).resolve().parents[2]
SECRET = "t" * 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_serve_access_log_never_prints_tokens(tmp_path: Path) -> None:
    token = JobTokens(SECRET, ttl_seconds=60).issue("job_abc", "alice")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "LLM_PROVIDER": "mock",
           "INNGEST_DEV": "1", "JOB_TOKEN_SECRET": SECRET,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen([sys.executable, "-m", "agentic.cli", "serve", "--port", str(port),
                                "--access-log"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.communicate(timeout=5)[0]}")
                time.sleep(0.2)
        answers = [
            httpx.get(f"{base}/api/jobs/job_abc?token={token}", headers={"Referer": f"{base}/?token={token}"}),
            httpx.get(f"{base}/api/jobs/job_abc/events?last_event_id=x&token={token}"),
            httpx.get(f"{base}/api/jobs/job_abc", headers={"Authorization": f"Bearer {token}"}),
        ]
        assert [a.status_code for a in answers] == [404, 404, 404]  # good tokens; the job does not exist
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert "/api/jobs/job_abc" in output  # the access log was on and printed the requests
    assert token not in output and token.split(".")[1] not in output


def test_werkzeug_request_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    token = JobTokens(SECRET, ttl_seconds=60).issue("job_abc", "alice")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        # exactly how werkzeug's request handler logs a request
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                                           f"GET /api/jobs/job_abc/events?token={token} HTTP/1.1", "200", "-")
    [record] = caplog.records
    assert token not in record.getMessage()
    assert "token=[redacted]" in record.getMessage()
