"""Helpers shared by the CLI tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result

Invoke = Callable[..., Result]


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment a command sees: this database, dev-mode Inngest, and a short event-send wait."""
    return {"DATABASE_URL": database_url, "INNGEST_DEV": "1", "EVENT_SEND_TIMEOUT": "2", **extra}
