"""Vercel: the config is valid for Vercel's Python runtime, and the repo alone makes a correct deployment.

Static checks first: Vercel's zero-config Flask support serves the module-level ``app`` of ``app.py`` as one
function that receives every path; ``framework`` is declared so no dashboard setting is needed; ``functions``
patterns must match a real file ("unmatched function pattern") and must not be mixed with the legacy ``builds``.

Then the real thing (tests/e2e/vercel_local.py): the pinned Vercel CLI builds a clean copy of the repo with no
project settings, the function's ``.vc-config.json`` is checked, and the materialised function, served by Vercel's
own Python runtime, runs a direct generation and a queued job (signed by the fake executor) to ``completed``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.vercel_local import (
    Build,
    HttpClient,
    Unavailable,
    deployed_files,
    event_api,
    pinned_python_version,
    run_bundled,
    serve_function,
    vercel_build,
)
from tests.functions.executor import FakeExecutor, RunStatus, response_signature_valid

ROOT = Path(__file__).resolve().parents[2]
VERCEL_JSON = ROOT / "vercel.json"

#: Top-level keys of vercel.json that Vercel documents (https://openapi.vercel.sh/vercel.json).
KNOWN_KEYS = frozenset({
    "$schema", "buildCommand", "bunVersion", "cleanUrls", "crons", "devCommand", "fluid", "framework",
    "functions", "git", "github", "headers", "ignoreCommand", "images", "installCommand", "outputDirectory",
    "public", "redirects", "regions", "functionFailoverRegions", "rewrites", "trailingSlash",
    # legacy (still accepted)
    "builds", "routes", "env", "build", "version", "name", "alias", "scope",
})
FUNCTION_KEYS = frozenset({"maxDuration", "memory", "runtime", "includeFiles", "excludeFiles", "regions",
                           "supportsCancellation", "functionFailoverRegions", "architecture"})
#: Where Vercel's Flask preset looks for the module-level ``app``.
FLASK_ENTRYPOINTS = ("app.py", "index.py", "server.py", "main.py", "src/app.py", "src/index.py", "src/server.py",
                     "app/app.py", "app/index.py", "app/server.py")
HOBBY_MAX_SECONDS, PRO_MAX_SECONDS = 300, 800
#: What a deployment uploads: the function (app.py, src/, functions/) and what its build reads.
SHIPPED = frozenset({"app.py", "src", "functions", "pyproject.toml", "uv.lock", ".python-version", "vercel.json",
                     "README.md"})
#: Only the dev extra needs these; a function that ships them was installed with the wrong options.
DEV_ONLY = ("pytest", "respx", "mypy", "ruff", "hypothesis", "selenium", "schemathesis", "uv")
BUILD_TIMEOUT = 900  # a fresh machine installs the CLI (about a minute) and resolves from PyPI once


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VERCEL_JSON.read_text())
    return loaded


def _repo_files() -> list[str]:
    skip = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis", "tests"}
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip]
        files += [str((Path(dirpath) / f).relative_to(ROOT)) for f in filenames]
    return files


def _entry(config: dict[str, Any]) -> str:
    patterns = list(config.get("functions", {}))
    matches = sorted({f for f in _repo_files() for p in patterns if fnmatch.fnmatch(f, p) and f.endswith(".py")})
    assert len(matches) == 1, f"expected one Python entry among the functions patterns, got {matches}"
    return matches[0]


def test_only_known_top_level_keys(config: dict[str, Any]) -> None:
    assert set(config) <= KNOWN_KEYS, set(config) - KNOWN_KEYS
    assert config.get("$schema") == "https://openapi.vercel.sh/vercel.json"


def test_functions_and_builds_are_not_mixed(config: dict[str, Any]) -> None:
    assert "functions" in config
    assert "builds" not in config, "Vercel refuses `builds` together with `functions`"
    assert "routes" not in config or "rewrites" not in config, "`routes` cannot be combined with `rewrites`"


def test_every_functions_pattern_matches_an_existing_file(config: dict[str, Any]) -> None:
    files = _repo_files()
    for pattern, options in config["functions"].items():
        assert any(fnmatch.fnmatch(f, pattern) for f in files), f"unmatched function pattern {pattern!r}"
        assert set(options) <= FUNCTION_KEYS, set(options) - FUNCTION_KEYS


def test_the_entry_may_run_long_enough_for_inngest_steps_and_sse(config: dict[str, Any]) -> None:
    entry = _entry(config)
    seconds = config["functions"][next(p for p in config["functions"] if fnmatch.fnmatch(entry, p))]["maxDuration"]
    assert isinstance(seconds, int)
    assert 1 <= seconds <= PRO_MAX_SECONDS
    assert seconds >= HOBBY_MAX_SECONDS  # shorter would cut SSE streams and LLM steps needlessly


def test_every_path_reaches_the_flask_entry(config: dict[str, Any]) -> None:
    entry = _entry(config)
    rewrites = config.get("rewrites", [])
    if not rewrites:
        # Zero-config Flask: the detected entry receives every path (/, /api/*, /api/inngest).
        assert entry in FLASK_ENTRYPOINTS, f"{entry} is not where Vercel's Flask preset looks for an app"
        assert "app = create_app()" in (ROOT / entry).read_text()
        return
    target = "/" + entry.removesuffix(".py")
    catch_all = [r for r in rewrites if r["source"] in ("/(.*)", "/:path*") and r["destination"] == target]
    assert catch_all, f"no catch-all rewrite to {target}"
    assert rewrites[-1] in catch_all, "the catch-all rewrite must come last"


def test_no_settings_secrets_in_vercel_json() -> None:
    text = VERCEL_JSON.read_text().lower()
    assert "signkey" not in text and "database_url" not in text and "api_key" not in text


def test_the_entry_imports_and_exposes_the_wsgi_app(config: dict[str, Any], tmp_path: Path) -> None:
    """Import the entry as Vercel would: a fresh interpreter, the repo as working directory, no PYTHONPATH."""
    entry = _entry(config)
    module = entry.removesuffix(".py").replace("/", ".")
    probe = textwrap.dedent(f"""
        import importlib, json
        mod = importlib.import_module({module!r})
        app = mod.app
        rules = sorted(rule.rule for rule in app.url_map.iter_rules())
        print(json.dumps({{"wsgi": callable(app.wsgi_app), "rules": rules, "name": app.name}}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "PYTHONPATH"))}
    env.update(INNGEST_DEV="1", DATABASE_URL=f"sqlite:///{tmp_path / 'vercel.db'}", LLM_PROVIDER="mock")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["wsgi"] is True
    assert "/api/inngest" in shown["rules"]
    assert "/api/llm/generate" in shown["rules"]


def test_importing_the_entry_does_no_database_io(tmp_path: Path) -> None:
    """A cold start pays only for imports; the database is first reached by a request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "PYTHONPATH"))}
    env.update(INNGEST_DEV="1", DATABASE_URL=f"sqlite:///{tmp_path / 'vercel.db'}", LLM_PROVIDER="mock")
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "vercel.db").exists(), "importing the entry connected to the database"


def test_the_entry_refuses_production_without_a_signing_key(tmp_path: Path) -> None:
    """On Vercel the Inngest integration sets INNGEST_SIGNING_KEY; without it the import fails loudly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "PYTHONPATH"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'vercel.db'}")
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "INNGEST_SIGNING_KEY" in result.stderr


# ---- what Vercel reads from the repo -------------------------------------------------------------------


def test_the_framework_is_declared_so_no_project_setting_is_needed(config: dict[str, Any]) -> None:
    # Without it a project whose dashboard detected nothing fails: "The pattern "app.py" defined in functions
    # doesn't match any Serverless Functions inside the api directory".
    assert config["framework"] == "flask"


def test_vercel_builds_with_a_pinned_python_and_the_project_still_supports_3_11() -> None:
    # Vercel reads .python-version before requires-python; its runtime package needs Python >= 3.12.
    version = pinned_python_version()
    assert re.fullmatch(r"3\.(1[2-9])", version), version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"


def test_a_deployment_uploads_only_the_function_and_its_build_inputs() -> None:
    """A new top-level entry must be shipped on purpose (SHIPPED) or listed in .vercelignore."""
    tops = {name.split("/", 1)[0] for name in deployed_files()}
    assert tops == SHIPPED, f"shipped but not expected: {tops - SHIPPED}; expected but missing: {SHIPPED - tops}"


def test_the_lock_covers_every_declared_dependency() -> None:
    """Cheap and offline; scripts/lint runs `uv lock --check`, which also catches changed version ranges."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = {_norm(p["name"]) for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    missing = {_norm(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in declared} - locked
    assert not missing, f"uv.lock lacks {missing}: run .venv/bin/uv lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- vercel build, for real -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    try:
        return vercel_build(tmp_path_factory.mktemp("vercel"))
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_vercel_build_succeeds_with_no_project_settings(build: Build, config: dict[str, Any]) -> None:
    print(f"vercel build took {build.seconds:.1f} s:\n{build.log}")
    assert f"Using Python {pinned_python_version()} from .python-version" in build.log
    assert "Installing required dependencies from uv.lock" in build.log
    assert "Build Completed" in build.log
    (function,) = build.function_dirs
    routes = json.loads((build.output / "config.json").read_text())["routes"]
    catch_all = [r for r in routes if r.get("src") == "/(.*)"]
    assert catch_all and catch_all[-1]["dest"] == "/" + function.name.removesuffix(".func"), routes


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_function_runs_the_pinned_python_with_max_duration(build: Build, config: dict[str, Any]) -> None:
    vc = build.vc_config
    assert vc["runtime"] == f"python{pinned_python_version()}"
    assert vc["maxDuration"] == config["functions"]["app.py"]["maxDuration"]
    assert vc["handler"].startswith("vc__handler__python.")


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_bundle_holds_no_tests_benchmarks_or_scripts(build: Build) -> None:
    files = build.vc_config["filePathMap"]
    tops = {name.split("/", 1)[0] for name in files}
    assert not tops & {"tests", "bench", "scripts", ".ci"}, tops
    assert tops - {"_vendor"} <= SHIPPED, tops - {"_vendor"} - SHIPPED
    vendored = {_norm(name.split("/", 2)[1]) for name in files if name.startswith("_vendor/")}
    assert {"agentic", "vercel-runtime", "inngest", "flask"} <= vendored
    assert "functions" not in vendored and "_vendor/agentic/functions/__init__.py" in files
    assert not vendored & set(DEV_ONLY), vendored & set(DEV_ONLY)


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_bundle_installs_exactly_the_locked_versions(build: Build) -> None:
    """What CI tests is what ships: every vendored distribution at the version uv.lock pins."""
    locked = {_norm(p["name"]): p["version"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    shipped = {}
    for name in build.vc_config["filePathMap"]:
        found = re.fullmatch(r"_vendor/([^/]+)-([^/-]+)\.dist-info/METADATA", name)
        if found:
            shipped[_norm(found[1])] = found[2]
    runtime = {name: version for name, version in shipped.items() if name not in ("vercel-runtime", "pip")}
    assert "sqlmodel" in runtime and "agentic" in runtime
    assert {name: locked.get(name) for name in runtime} == runtime


@pytest.fixture(scope="module")
def function(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built function as deployed: every ``filePathMap`` entry in its place."""
    return build.materialise(tmp_path_factory.mktemp("deployed") / "app.func")


@pytest.fixture
def served(build: Build, function: Path, database_url: str) -> Iterator[tuple[str, str, Any]]:
    """The function served by Vercel's runtime in production mode (signed calls only), its tables and one API
    key made with the bundle's own ``agentic`` command, and Inngest's event API played on loopback."""
    database = {"DATABASE_URL": database_url, "DATABASE_SERVERLESS": "true"}
    run_bundled(function, build.python, database, "db", "init")
    key = run_bundled(function, build.python, database, "keys", "create", "vercel-user", "--label", "vercel"
                      ).strip().splitlines()[-1]
    with event_api() as events:
        app_env = {**database, "LLM_PROVIDER": "mock", "USE_QUEUE": "true", "INNGEST_SIGNING_KEY": SIGNING_KEY,
                   "INNGEST_EVENT_KEY": EVENT_KEY, "INNGEST_BASE_URL": events.url,
                   "INNGEST_EVENT_API_BASE_URL": events.url}
        with serve_function(function, build.python, app_env) as server:
            yield server.url, key, events


SIGNING_KEY = "signkey-test-" + secrets.token_hex(32)
EVENT_KEY = "evtkey-" + secrets.token_hex(8)


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_built_function_served_by_vercels_runtime_runs_a_queued_job(served: tuple[str, str, Any]) -> None:
    url, key, events = served
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=60) as http:
        health = http.get("/api/health")
        assert health.status_code == 200, health.text
        assert health.json()["database"]["ok"] is True
        assert health.json()["inngest"] == {"mode": "cloud", "event_key_set": True, "signing_key_set": True}

        prompt = {"messages": [{"role": "user", "content": "Hello from Vercel"}]}
        direct = http.post("/api/llm/generate", json={**prompt, "model": "mock-quick"}, headers=auth)
        assert direct.status_code == 200, direct.text
        assert direct.json()["status"] == "completed" and direct.json()["response"]["content"]

        queued = http.post("/api/llm/generate", json={**prompt, "model": "mock-slow-1"}, headers=auth)
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        assert http.get(f"/api/jobs/{job_id}", headers=auth).json()["status"] == "pending"
        (event,) = events.events
        assert event["name"] == "llm/generate.request" and event["data"]["job_id"] == job_id
        assert events.keys == [EVENT_KEY]

        client = HttpClient(url)
        try:
            executor = FakeExecutor(client, SIGNING_KEY)  # type: ignore[arg-type]
            assert executor.post("llm-generate", {"event": event}, sign=False).status_code == 401  # signed only
            run = executor.drive("llm-generate", event, retries=3)
        finally:
            client.close()
        assert run.status is RunStatus.COMPLETED, (run.error, run.calls)
        assert all(response_signature_valid(call.response, SIGNING_KEY) for call in run.calls)

        job = http.get(f"/api/jobs/{job_id}", headers=auth)
        assert job.status_code == 200, job.text
        assert job.json()["status"] == "completed", job.json()
        assert job.json()["response"]["content"], job.json()
