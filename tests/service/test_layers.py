"""The layers stay apart: providers talk to LLM APIs only; the package never imports the top-level functions
at import time; every step of the job runner returns a typed summary, never a free-form dict."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from agentic.runner import JobRunner

SRC = Path(__file__).resolve().parents[2] / "src" / "agentic"


def imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((SRC / "providers").glob("*.py")), ids=lambda p: p.name)
def test_providers_import_nothing_from_the_store_or_the_service_layer(path: Path) -> None:
    forbidden = ("agentic.store", "agentic.service", "agentic.jobqueue", "agentic.runner", "agentic.kinds",
                 "agentic.web", "functions")
    assert not [m for m in imported_modules(path) if m.startswith(forbidden)]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_the_package_never_imports_the_functions_folder_at_import_time(path: Path) -> None:
    assert not [m for m in imported_modules(path, top_level_only=True) if m.split(".")[0] == "functions"]


@pytest.mark.parametrize("step", ["begin", "call", "finish", "notify", "fail", "fail_exhausted", "cancel"])
def test_every_runner_step_returns_a_typed_summary(step: str) -> None:
    returned = typing.get_type_hints(getattr(JobRunner, step))["return"]
    assert typing.is_typeddict(returned), f"JobRunner.{step} returns {returned!r}"
