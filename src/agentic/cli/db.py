"""agentic db: database administration."""

from __future__ import annotations

import click

from agentic.cli.base import _create_tables, _safe_url, _settings, main


@main.group()
def db() -> None:
    """Database administration."""


@db.command("init")
def db_init() -> None:
    """Create the tables and indexes that are missing (safe to run again)."""
    settings = _settings()
    _create_tables(settings)
    click.echo(f"database ready: {_safe_url(settings.database_url)}")
