"""agentic keys: create, list and revoke API keys, straight from the database."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from agentic.cli.base import _engine, _fail, _settings, _table, _when, main

if TYPE_CHECKING:
    from agentic.domain.keys import ApiKey


@main.group()
def keys() -> None:
    """API keys: create, list, revoke. A key is shown once, at creation."""


@keys.command("create")
@click.argument("user_id")
@click.option("--label", "-l", help="A note saying what the key is for.")
def keys_create(user_id: str, label: str | None) -> None:
    """Issue a key for USER_ID. The key is printed alone on the last line, for scripts."""
    from agentic.store.keys import ApiKeyStore

    if not user_id.strip():
        raise click.BadParameter("must not be empty", param_hint="USER_ID")
    engine = _engine(_settings())
    try:
        issued = ApiKeyStore(engine).create(user_id, label=label)
    finally:
        engine.dispose()
    labelled = f" ({issued.key.label})" if issued.key.label else ""
    click.echo(f"created key {issued.key.id} for user {issued.key.user_id}{labelled}")
    click.echo("store it now: it is not shown again")
    click.echo(issued.secret)


@keys.command("list")
@click.option("--user", "-u", "user_id", help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def keys_list(user_id: str | None, as_json: bool) -> None:
    """List keys (never the secrets, which are not stored)."""
    from agentic.store.keys import ApiKeyStore

    engine = _engine(_settings())
    try:
        found = ApiKeyStore(engine).list(user_id)
    finally:
        engine.dispose()
    if as_json:
        for key in found:
            click.echo(json.dumps(_key_dict(key)))
        return
    if not found:
        click.echo("no keys")
        return
    rows = [(k.id, k.user_id, k.label or "-", "active" if k.active else f"revoked {_when(k.revoked_at)}",
             _when(k.created_at), _when(k.last_used_at)) for k in found]
    click.echo(_table(("ID", "USER", "LABEL", "STATE", "CREATED", "LAST USED"), rows))


def _key_dict(key: ApiKey) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {"id": key.id, "user_id": key.user_id, "label": key.label, "active": key.active,
            "created_at": iso(key.created_at), "revoked_at": iso(key.revoked_at),
            "last_used_at": iso(key.last_used_at)}


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID (the key_... id from `keys list`); it stops working at once."""
    from agentic.store.keys import ApiKeyStore

    engine = _engine(_settings())
    try:
        revoked = ApiKeyStore(engine).revoke(key_id)
    finally:
        engine.dispose()
    if not revoked:
        _fail(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")
