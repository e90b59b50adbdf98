"""vercel.json and the serverless entry module: valid for Vercel's Python runtime, and the entry really imports.

Vercel's zero-config Flask support serves the module-level ``app`` of ``app.py`` (or index.py, server.py,
src/app.py, ...) as one function that receives every path, so no rewrites are needed; if rewrites are
ever added they must lead to that entry. ``functions`` patterns must match a real file (otherwise the
build fails with "unmatched function pattern") and must not be mixed with the legacy ``builds``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

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
