"""Smoke test of the benchmark suite: every benchmark runs at tiny sizes (``--quick``) and produces numbers.

It asserts that numbers exist, never what they are: timings on a shared CI machine prove nothing, and a
slow run must not fail the build. The suite runs in a subprocess, as ``scripts/bench --quick`` does.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``bench`` lives at the repository root, beside ``tests``
    sys.path.insert(0, str(ROOT))

from bench.databases import postgres_unreachable  # noqa: E402
from bench.paths import all_paths  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def run_quick(tmp_path: Path, db: str, only: list[str]) -> dict[str, Any]:
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "bench", "--quick", "--db", db, "--only", ",".join(only),
               "--json", str(out), "--no-report"]
    if db == "postgres":
        command += ["--pg-url", PG_URL]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, f"the quick suite failed:\n{done.stderr[-4000:]}"
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def assert_numbers(results: dict[str, Any], db: str, paths: list[str]) -> None:
    assert results["failures"] == {}
    for name in paths:
        spec = next(p for p in all_paths() if p.name == name)
        where = db if spec.databases else "-"
        rows = [r for r in results["results"] if r["path"] == name and r["db"] == where]
        assert rows, f"{name} produced no numbers on {where}"
        for row in rows:
            assert isinstance(row["ours"], int | float) and math.isfinite(row["ours"]), row
            assert row["baseline"] is None or math.isfinite(row["baseline"]), row


@pytest.mark.timeout(600)
def test_every_benchmark_produces_numbers_on_sqlite(tmp_path: Path) -> None:
    paths = [p.name for p in all_paths()]
    assert_numbers(run_quick(tmp_path, "sqlite", paths), "sqlite", paths)


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_every_benchmark_produces_numbers_on_postgres(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set (point it at a PostgreSQL server to run this test)")
    reason = postgres_unreachable(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {reason}")
    paths = [p.name for p in all_paths() if "postgres" in p.databases]  # cold start needs no database
    assert_numbers(run_quick(tmp_path, "postgres", paths), "postgres", paths)
