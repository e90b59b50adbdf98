"""The wheel installs one top-level package, ``agentic``: the Inngest functions of ``functions/`` go in as
``agentic.functions`` (through the ``src/agentic/functions`` link), never as a top-level ``functions`` that would
shadow a user's own module of that name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed (it comes with the dev extra)")
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("route", ["tree", "sdist"], ids=["from-the-tree", "from-the-sdist"])
def test_the_wheel_installs_agentic_functions_and_no_top_level_functions(route: str, tmp_path: Path) -> None:
    # Vercel (uv sync) builds from the tree; pip install from an index builds from the sdist.
    args = ["--wheel"] if route == "tree" else []
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run([_uv(), "build", "--quiet", "--python", sys.executable, "--out-dir", str(tmp_path),
                             *args, str(ROOT)], capture_output=True, text=True, timeout=280, env=env, check=False)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"agentic"}, tops
    modules = {f"agentic/functions/{path.name}" for path in (ROOT / "functions").glob("*.py")}
    assert "agentic/functions/__init__.py" in modules
    assert modules <= set(names), modules - set(names)
    # The migrations ship inside the package (a deploy can run `agentic db init` from the installed wheel).
    migrations = ROOT / "src/agentic/store/migrations"
    shipped = {f"agentic/store/migrations/{path.relative_to(migrations)}" for path in migrations.rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert {"agentic/store/migrations/env.py", "agentic/store/migrations/script.py.mako"} <= shipped
    assert any(name.startswith("agentic/store/migrations/versions/0001_") for name in shipped)
    assert shipped <= set(names), shipped - set(names)


def test_the_source_tree_links_agentic_functions_to_the_functions_folder() -> None:
    link = ROOT / "src" / "agentic" / "functions"
    assert link.is_symlink() and link.resolve() == (ROOT / "functions").resolve()
