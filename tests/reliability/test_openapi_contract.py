"""The OpenAPI document is the API's exact contract: schemathesis, with every check, finds no failure.

The app is served on a loopback port (werkzeug's threaded server, in this process) with a stand-in for
Inngest's event API that accepts events, on SQLite and PostgreSQL, and the schemathesis CLI runs against it
exactly as a user would: ``schemathesis run <url>/api/openapi.json --checks all`` with a fixed seed and a
bounded number of examples, every phase (coverage, fuzzing, and the stateful phase that follows the
document's links from a created job to its routes). So a response that breaks its schema, an SSE event that
breaks its ``itemSchema``, a schema-valid request refused or a schema-violating one accepted, a 5xx, all fail
this test, with schemathesis's own report (and a curl line to reproduce) as the message.

tests/reliability/test_fuzz_openapi.py keeps the properties schemathesis does not know about (a refused
request stores no job and sends no event; every error is a problem document).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from agentic.web.app import container_of
from tests.functions.conftest import AppHarness
from tests.reliability.support import HOST, ROOT, EventRecorder

MakeApp = Callable[..., AppHarness]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

pytest.importorskip("schemathesis", minversion="4.32",
                    reason="schemathesis is not installed (pip install 'schemathesis>=4.32,<5')")

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
#: Fixed, so a failure found in CI reproduces locally with the same command.
SEED = 16
#: Per operation and phase: enough to reach every validator and link, bounded so both databases take ~1 minute.
MAX_EXAMPLES = 15
METRICS_TOKEN = "metrics-token-contract"
PHASES = ("coverage", "fuzzing", "stateful")
_JOB = re.compile(r"^/api/jobs/job_[A-Za-z0-9_-]+(/events|/cancel)?$")


@dataclass
class Served:
    """The app on a loopback port, and what it answered (method, route, status) to every request."""

    url: str
    key: str
    recorder: EventRecorder
    answered: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, app: WsgiApp) -> WsgiApp:
        def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                path = environ.get("PATH_INFO", "")
                match = _JOB.match(path)
                route = f"/api/jobs/<job id>{match.group(1) or ''}" if match else path
                with self._lock:
                    self.answered[environ["REQUEST_METHOD"], route, int(status.split(maxsplit=1)[0])] += 1
                return start_response(status, headers, *args)

            return app(environ, start)

        return recording

    def statuses(self, method: str, route: str) -> set[int]:
        return {status for (m, r, status) in self.answered if (m, r) == (method, route)}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def served(make_app: MakeApp, recorder: EventRecorder) -> Iterator[Served]:
    # Slow models become jobs (events reach the stand-in); quick ones are answered by the mock provider.
    harness = make_app(use_queue=True, default_route="queue", inngest_event_key="evt-key-contract",
                       inngest_event_api_base_url=recorder.url, inngest_base_url=recorder.url,
                       metrics_token=METRICS_TOKEN, event_send_timeout=2.0,
                       sse_max_seconds=0.5, sse_heartbeat_seconds=0.2)
    key = container_of(harness.app).keys.create("contract").secret
    served = Served("", key, recorder)
    server = make_server(HOST, 0, served.record(harness.app), threaded=True, request_handler=_QuietHandler)
    served.url = f"http://{HOST}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _config(path: Path, served: Served) -> Path:
    """The repository's schemathesis.toml (what a user running the CLI here gets), plus the credentials: the
    API key, and METRICS_TOKEN for /api/metrics."""
    path.write_text(
        f'headers = {{ Authorization = "Bearer {served.key}" }}\n\n'
        + (ROOT / "schemathesis.toml").read_text()
        + f'\n[[operations]]\ninclude-path = "/api/metrics"\n'
        f'headers = {{ Authorization = "Bearer {METRICS_TOKEN}" }}\n')
    return path


def _phases(report: Path) -> dict[str, str]:
    finished: dict[str, str] = {}
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "PhaseFinished" in event:
            finished[event["PhaseFinished"]["phase"]["name"]] = event["PhaseFinished"]["status"]
    return finished


@pytest.mark.timeout(600)
def test_schemathesis_with_every_check_finds_no_failure(served: Served, tmp_path: Path) -> None:
    report = tmp_path / "run.ndjson"
    command = [str(SCHEMATHESIS), "--config-file", str(_config(tmp_path / "schemathesis.toml", served)),
               "run", f"{served.url}/api/openapi.json", "--checks", "all", "--seed", str(SEED),
               "--max-examples", str(MAX_EXAMPLES), "--phases", ",".join(PHASES), "--workers", "1",
               "--generation-database", "none", "--report", "ndjson", "--report-ndjson-path", str(report),
               "--no-color"]

    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=540, check=False)

    output = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis found failures:\n{output[-20000:]}"
    assert "No issues found" in output, output[-5000:]
    phases = _phases(report)
    assert all(phases.get(phase) == "success" for phase in PHASES), phases
    # It reached both sides of the API and followed the links to jobs it created (not just 404s).
    assert 202 in served.statuses("POST", "/api/llm/generate"), served.answered
    assert {200, 422} <= served.statuses("GET", "/api/jobs"), served.answered
    assert 200 in served.statuses("GET", "/api/jobs/<job id>"), served.answered
    assert 200 in served.statuses("GET", "/api/jobs/<job id>/events"), served.answered
    assert 202 in served.statuses("POST", "/api/jobs/<job id>/cancel"), served.answered
    assert 200 in served.statuses("GET", "/api/metrics"), served.answered
    assert served.recorder.named("llm/generate.request"), "no job reached the event API stand-in"
