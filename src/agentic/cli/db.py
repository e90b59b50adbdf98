"""agentic db: database administration (schema migrations)."""

from __future__ import annotations

import click

from agentic.cli.base import EXIT_FAILED, _engine, _safe_url, _settings, main


@main.group()
def db() -> None:
    """Database administration."""


@db.command("init")
def db_init() -> None:
    """Bring the database to the current schema: create it, or upgrade it in place (safe to run again)."""
    from agentic.store.migrate import status, upgrade

    settings = _settings()
    engine = _engine(settings)
    try:
        before = upgrade(engine)
        after = status(engine)
    finally:
        engine.dispose()
    url = _safe_url(settings.database_url)
    if before.up_to_date:
        click.echo(f"database ready: {url} (schema {after.current}, already current)")
    elif before.current is None and not before.unversioned:
        click.echo(f"database ready: {url} (created at schema {after.current})")
    else:
        found = "a database from before migrations" if before.unversioned else f"schema {before.current}"
        click.echo(f"database ready: {url} (upgraded from {found} to {after.current}: "
                   f"{', '.join(before.pending)})")


@db.command("status")
def db_status() -> None:
    """Say which schema revision the database is at and whether it is behind (exit 1 when it is)."""
    from agentic.store.migrate import status

    settings = _settings()
    engine = _engine(settings)
    try:
        found = status(engine)
    finally:
        engine.dispose()
    click.echo(f"database: {_safe_url(settings.database_url)}")
    if found.current is None:
        state = "made before migrations (no revision yet)" if found.unversioned else "empty (no tables)"
        click.echo(f"revision: none, {state}")
    else:
        click.echo(f"revision: {found.current}")
    click.echo(f"head:     {found.head}")
    if found.up_to_date:
        click.echo("status:   current")
        return
    click.echo(f"status:   behind by {len(found.pending)} ({', '.join(found.pending)}): run `agentic db init`")
    raise SystemExit(EXIT_FAILED)
