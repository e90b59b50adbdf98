"""agentic's Flask app served the way it is deployed off-serverless (``agentic serve``: waitress worker
processes, ``bench.serve``), on loopback."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.proc import free_port, spawn, stop

ROOT = Path(__file__).resolve().parent.parent
#: The bare route ``bench.wsgi`` adds: constant JSON, the poll benchmark's baseline and the readiness probe.
CONST_PATH = "/bench/const"


@dataclass(frozen=True)
class ServerOptions:
    workers: int | None = None  # agentic serve's default (2)
    threads: int = 16

    def describe(self) -> str:
        workers = "agentic serve's default workers (2)" if self.workers is None else f"{self.workers} workers"
        return f"waitress (`agentic serve`'s server), {workers} x {self.threads} threads, 127.0.0.1"


def server_env(database_url: str, event_api_url: str, **extra: str) -> dict[str, str]:
    """The app's settings for a benchmark: a queue with the mock provider and the stand-in event API."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INNGEST_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        INNGEST_DEV="1",
        INNGEST_EVENT_API_BASE_URL=event_api_url,
        USE_QUEUE="true",
        LLM_PROVIDER="mock",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class AppServer:
    """``python -m bench.serve`` on 127.0.0.1; ``url`` is its origin."""

    def __init__(self, env: dict[str, str], options: ServerOptions, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        args = [sys.executable, "-m", "bench.serve", "--port", str(self.port), "--threads", str(options.threads)]
        if options.workers is not None:
            args += ["--workers", str(options.workers)]
        self.process = spawn(args, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app server exited ({self.process.returncode}); see {self.log_path}")
            try:
                if httpx.get(self.url + CONST_PATH, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the app server did not answer within {timeout:g}s; see {self.log_path}")

    def close(self) -> None:
        stop(self.process)
        self._log.close()
