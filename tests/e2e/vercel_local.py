"""Vercel, locally: the pinned CLI's ``vercel build`` on a clean copy of the repo, and the built function served by
Vercel's own Python runtime (reference: long-calls.md, "Vercel, locally").

The copy holds the tracked files less ``.vercelignore``, which is what ``vercel deploy`` uploads (a local build
does not apply ``.vercelignore`` itself), and a ``.vercel/project.json`` with no settings, as a project whose
dashboard detected nothing. Tools come from caches that survive between runs (``$XDG_CACHE_HOME/agentic``):
the npm install of the CLI and the builder's uv cache. Nothing needs an account or Vercel's servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parents[2]
VERCEL_CLI_VERSION = "58.10.0"  # newer releases do not install from the registry these machines reach
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentic"
PROJECT_JSON = {"projectId": "prj_local", "orgId": "team_local", "settings": {}}


class Unavailable(Exception):
    """A tool the build needs cannot be had here (the test skips, saying which)."""


# ---- tools ----------------------------------------------------------------------------------------------


def pinned_python_version() -> str:
    """The version Vercel builds with: ``.python-version``."""
    return (ROOT / ".python-version").read_text().strip()


def find_python(version: str) -> Path:
    """An interpreter of ``version``: pyenv's own folders first (its shims only answer in a folder that selects
    the version), then ``pythonX.Y`` on PATH."""
    roots = [Path.home() / ".pyenv"]
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
        roots = [Path(found), *roots] if found else roots
    candidates = [p for root in roots for p in root.glob(f"versions/{version}.*/bin/python{version}")]
    candidates.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)], reverse=True)
    on_path = shutil.which(f"python{version}")
    candidates += [Path(on_path)] if on_path else []
    for candidate in candidates:
        probe = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               cwd=tempfile.gettempdir(), capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise Unavailable(f"no Python {version} interpreter (pyenv install {version}, or put python{version} on PATH)")


@contextlib.contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """One installer at a time across processes (parallel test runs share the cache)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def vercel_cli() -> Path:
    """The pinned CLI, installed once with ``npm i -E`` into the cache (about a minute the first time)."""
    folder = CACHE / f"vercel-{VERCEL_CLI_VERSION}"
    binary = folder / "node_modules" / ".bin" / "vercel"
    if binary.exists():
        return binary
    if not shutil.which("npm") or not shutil.which("node"):
        raise Unavailable("npm and node are not installed: cannot install the Vercel CLI")
    with _cache_lock("vercel-cli"):
        if not binary.exists():
            scratch = Path(tempfile.mkdtemp(prefix="vercel-cli-", dir=CACHE))
            result = subprocess.run(
                ["npm", "i", "-E", f"vercel@{VERCEL_CLI_VERSION}", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=scratch, capture_output=True, text=True, timeout=600, check=False)
            if result.returncode != 0:
                shutil.rmtree(scratch, ignore_errors=True)
                raise RuntimeError(f"npm i vercel@{VERCEL_CLI_VERSION} failed:\n{result.stdout}\n{result.stderr}")
            shutil.rmtree(folder, ignore_errors=True)
            scratch.rename(folder)  # whole or not at all: a half-done install is never seen as the CLI
    return binary


def uv_binary() -> Path:
    """uv for the builder: the dev extra's (next to this interpreter), else on PATH, else installed into the cache."""
    for candidate in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    venv = CACHE / "uv-venv"
    with _cache_lock("uv"):
        if not (venv / "bin" / "uv").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "uv"], check=True,
                           capture_output=True, timeout=300)
    return venv / "bin" / "uv"


# ---- the clean copy and the build -----------------------------------------------------------------------


def deployed_files() -> list[str]:
    """Tracked files less those ``.vercelignore`` excludes: what ``vercel deploy`` uploads from a clean checkout."""
    if not shutil.which("git") or not (ROOT / ".git").exists():
        raise Unavailable("not a git checkout: the tracked files are unknown")

    def listed(*options: str) -> set[str]:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", *options], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        return {name for name in out.split("\0") if name}

    ignored = listed("--ignored", "--exclude-from=.vercelignore")
    return sorted(name for name in listed() - ignored if (ROOT / name).is_symlink() or (ROOT / name).is_file())


@dataclass
class Build:
    """A finished ``vercel build``: the copy it ran in, what it printed, and its one function."""

    project: Path
    log: str
    seconds: float
    python: Path

    @property
    def output(self) -> Path:
        return self.project / ".vercel" / "output"

    @property
    def function_dirs(self) -> list[Path]:
        return sorted((self.output / "functions").rglob("*.func"))

    @property
    def vc_config(self) -> dict[str, Any]:
        (function,) = self.function_dirs
        loaded: dict[str, Any] = json.loads((function / ".vc-config.json").read_text())
        return loaded

    def materialise(self, into: Path) -> Path:
        """The function as deployed: every ``filePathMap`` entry copied to its place, next to the .func files."""
        (function,) = self.function_dirs
        shutil.copytree(function, into)
        for target, source in self.vc_config["filePathMap"].items():
            (into / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.project / source, into / target, follow_symlinks=False)  # links stay links
        return into


def vercel_build(workdir: Path) -> Build:
    """``vercel build --yes`` on a clean copy in ``workdir``, as a project with no settings."""
    python = find_python(pinned_python_version())
    cli, uv = vercel_cli(), uv_binary()
    project = workdir / "project"
    for name in deployed_files():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name, follow_symlinks=False)  # a deploy uploads links as links
    (project / ".vercel").mkdir()
    (project / ".vercel" / "project.json").write_text(json.dumps(PROJECT_JSON))
    # The builder keeps uv's cache in .vercel/python/cache: point it at one that outlives this copy.
    shared = CACHE / "vercel-python-cache"
    shared.mkdir(parents=True, exist_ok=True)
    (project / ".vercel" / "python").mkdir()
    (project / ".vercel" / "python" / "cache").symlink_to(shared, target_is_directory=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VERCEL", "INNGEST_", "UV_", "PYTHON", "VIRTUAL_ENV", "PYENV_VERSION"))}
    env.update(PATH=os.pathsep.join([str(python.parent), str(uv.parent), env.get("PATH", "")]),
               VERCEL_TELEMETRY_DISABLED="1", NO_UPDATE_NOTIFIER="1", UV_PYTHON_DOWNLOADS="never")
    started = time.monotonic()
    result = subprocess.run([str(cli), "build", "--yes"], cwd=project, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"vercel build failed ({result.returncode}):\n{log}")
    return Build(project=project, log=log, seconds=seconds, python=python)


# ---- serving the function with Vercel's runtime ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serve_function(function: Path, python: Path, app_env: dict[str, str], *, timeout: float = 60
                   ) -> Iterator[Served]:
    """Serve a materialised function as ``vercel dev`` does: ``vercel_runtime.dev`` (Werkzeug, with a reloader)
    in the function's folder, with the function's environment from ``.vc-config.json``."""
    config = json.loads((function / ".vc-config.json").read_text())
    # Bytecode caches change nothing but start-up time: let later starts of this copy reuse them.
    environment = {k: v for k, v in config.get("environment", {}).items() if k != "PYTHONDONTWRITEBYTECODE"}
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home()), "LANG": "C.UTF-8",
           **environment, "PORT": str(port), "NO_COLOR": "1",
           "VERCEL_DEV_MODULE_NAME": "app", "VERCEL_DEV_ENTRY_ABS": str(function / "app.py"),
           "VERCEL_DEV_FRAMEWORK": "flask", "VERCEL_DEV_VARIABLE_NAME": "app", **app_env}
    log_path = function.parent / f"{function.name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(python), "-c", "from vercel_runtime.dev import main; main()"],
                                   cwd=function, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: the reloader's child goes with it
    served = Served(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the function exited ({process.returncode}):\n{served.log()}")
            try:
                httpx.get(f"{served.url}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the function did not answer within {timeout} s:\n{served.log()}"
                                         ) from None
                time.sleep(0.2)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def run_bundled(function: Path, python: Path, env: dict[str, str], *args: str) -> str:
    """The ``agentic`` command as installed in the bundle (``_vendor``), run with its Python."""
    result = subprocess.run(
        [str(python), "-c", "from agentic.cli import main; main()", *args], cwd=function, capture_output=True,
        text=True, timeout=120, check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home()), "PYTHONPATH": "_vendor", **env})
    if result.returncode != 0:
        raise AssertionError(f"agentic {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# ---- stand-ins for Inngest Cloud -------------------------------------------------------------------------


@dataclass
class EventApi:
    """A loopback stand-in for Inngest's event API (``POST /e/<event key>``): records what the app sends."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


@contextlib.contextmanager
def event_api() -> Iterator[EventApi]:
    recorder = EventApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"[]")
            sent = body if isinstance(body, list) else [body]
            recorder.keys.append(self.path.rsplit("/", 1)[-1])
            recorder.events.extend(sent)
            answer = json.dumps({"ids": [e.get("id") or f"evt-{len(recorder.events)}" for e in sent],
                                 "status": 200}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield recorder
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


class HttpClient:
    """What ``FakeExecutor`` uses of a Flask test client, over real HTTP to a served function."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def post(self, url: str, *, data: bytes, headers: dict[str, str]) -> Response:
        answer = self.http.post(url, content=data, headers=headers)
        return Response(answer.content, status=answer.status_code, headers=list(answer.headers.multi_items()))

    def close(self) -> None:
        self.http.close()
