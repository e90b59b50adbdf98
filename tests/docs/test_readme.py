"""The README must not lie: its configuration table, commands and routes match the code."""

from __future__ import annotations

import re
from pathlib import Path

from agentic.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def config_table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def test_every_setting_is_in_the_configuration_table_and_nothing_else() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert config_table_variables() == settings


def test_the_two_quickstart_commands_exist_and_ci_runs_the_test_one() -> None:
    for script in ("scripts/run", "scripts/test"):
        assert f"`{script}`" in README
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def cli_commands() -> set[str]:
    import click

    from agentic.cli import main

    found: set[str] = set()

    def walk(command: click.Command, prefix: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found.add(prefix)

    walk(main, "")
    return found


def test_every_cli_command_is_in_the_readme() -> None:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `agentic ([a-z ]+?)(?: [A-Z\"\[].*?)?`", section, flags=re.MULTILINE))
    assert documented == cli_commands()


def test_every_api_route_is_in_the_readme() -> None:
    from agentic.config import load_settings
    from agentic.web.app import create_app

    app = create_app(load_settings(inngest_dev="1", database_url="sqlite://"))
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", "<id>", r.rule) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/") and r.rule != "/api/inngest"}
    documented = {re.sub(r"\?.*", "", m) for m in re.findall(r"^\| `(?:GET|POST) (/api/[^` ]+)`", README, re.M)}
    assert routes == documented
