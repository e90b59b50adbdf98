"""The README's dependency table shows each runtime dependency with the range pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, str]:
    """``{name (with extras): range}`` of pyproject's runtime dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = (re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)(.*)", spec) for spec in project["dependencies"])
    return {match[1]: match[2] for match in pins if match}


def documented() -> dict[str, str]:
    """``{name: range}`` from the table's rows; a row naming several packages lists their ranges in order."""
    section = (ROOT / "README.md").read_text().split("## Why each dependency", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for names, ranges in re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \| ((?:`[^`]+`(?:, )?)+) \|", section, re.M):
        rows.update(zip(re.findall(r"`([^`]+)`", names), re.findall(r"`([^`]+)`", ranges), strict=True))
    return rows


def test_every_runtime_dependency_is_documented_with_its_range() -> None:
    assert documented() == pinned()


def test_the_installed_anthropic_sdk_is_the_2x_line() -> None:
    assert pinned()["anthropic"] == ">=2.10,<3"
    assert version("anthropic").split(".")[0] == "2"
