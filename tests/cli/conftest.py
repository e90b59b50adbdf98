"""Fixtures for the CLI tests: run ``agentic`` in-process with click's runner against a chosen database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # helpers are imported as tests.cli.cli_support and tests.e2e.live
    sys.path.insert(0, str(ROOT))

from agentic.cli import main  # noqa: E402
from agentic.store.engine import create_db_engine, init_db  # noqa: E402
from tests.cli.cli_support import Invoke, cli_env  # noqa: E402


@pytest.fixture
def invoke(sqlite_url: str) -> Invoke:
    """``invoke("keys", "list", env={...})``: run a command on the test's SQLite database (or ``env``'s)."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env or cli_env(sqlite_url), input=input,
                                  catch_exceptions=False)

    return run


@pytest.fixture
def db_engine(sqlite_url: str) -> Iterator[Engine]:
    """An initialised engine on the same SQLite file the commands use."""
    engine = create_db_engine(sqlite_url)
    init_db(engine)
    yield engine
    engine.dispose()
