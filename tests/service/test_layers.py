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
    forbidden = ("agentic.store", "agentic.service", "agentic.runner", "agentic.inngest", "agentic.metrics",
                 "agentic.web", "functions")
    assert not [m for m in imported_modules(path) if m.startswith(forbidden)]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_the_package_never_imports_the_functions_folder_at_import_time(path: Path) -> None:
    assert not [m for m in imported_modules(path, top_level_only=True) if m.split(".")[0] == "functions"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Every import between the package's modules, lazy and TYPE_CHECKING ones included (an import inside a
    function is still a dependency), ``from package import module`` resolved to the module."""
    modules = {_module_name(path): path for path in SRC.rglob("*.py")
               if "functions" not in path.relative_to(SRC).parts[:1] and "migrations" not in path.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                named = [m for m in submodules if m in modules]
                candidates = named if len(named) == len(submodules) else [node.module, *named]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            edges.update(c for c in candidates if c in modules and c != name)
        graph[name] = edges
    return graph


def test_the_package_has_no_import_cycles() -> None:
    """Modules depend one way: a cycle (even through a lazy or TYPE_CHECKING import) means two modules are
    one concern split in two, or a type living in the wrong one."""
    graph = _import_graph()
    assert "agentic.service.submit" in graph and "agentic.metrics.prometheus" in graph
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node):], node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


@pytest.mark.parametrize("step", ["begin", "call", "finish", "notify", "fail", "fail_exhausted", "cancel"])
def test_every_runner_step_returns_a_typed_summary(step: str) -> None:
    returned = typing.get_type_hints(getattr(JobRunner, step))["return"]
    assert typing.is_typeddict(returned), f"JobRunner.{step} returns {returned!r}"
