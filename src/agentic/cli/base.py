"""The ``agentic`` command group and what its commands share: exit codes, settings, engine, formatting.

Commands that touch the database build only what they need from the settings (an engine, a store), so they
work on a box that cannot reach Inngest. Heavy imports (SQLAlchemy, pydantic, Flask, gunicorn, httpx) happen
inside the commands, so ``--help`` and shell completion stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from agentic.config import Settings

#: Kept in step with ``agentic.domain.jobs.JobStatus`` (a test checks); spelled out to keep start-up light.
JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DEFAULT_PORT = 8000
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_MODEL = "openai/gpt-4o-mini"
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


# ---- the command group ------------------------------------------------------------------------------------


class _Group(click.Group):
    """Turns the errors an operator can fix (configuration, an unreachable or empty database) into one
    clean message and an exit code, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            config = sys.modules.get("agentic.config")
            if config is not None and isinstance(exc, config.ConfigError):
                click.echo(f"error: {exc}", err=True)
                ctx.exit(EXIT_CONFIG)
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is not None and isinstance(exc, sa_exc.OperationalError | sa_exc.ProgrammingError):
                hint = "" if "connect" in str(exc.orig).lower() else " (has `agentic db init` been run?)"
                click.echo(f"error: database: {_first_line(str(exc.orig))}{hint}", err=True)
                ctx.exit(EXIT_FAILED)
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentic", prog_name="agentic")
def main() -> None:
    """agentic: LLM generations as durable Inngest jobs.

    Settings come from the environment (and a .env file): DATABASE_URL, LLM_PROVIDER, INNGEST_DEV, ...
    """


def _settings() -> Settings:
    from agentic.config import load_settings

    return load_settings()


def _engine(settings: Settings) -> Engine:
    from agentic.store.engine import create_db_engine

    return create_db_engine(settings.database_url, serverless=True, echo=settings.database_echo)


def _create_tables(settings: Settings) -> None:
    from agentic.store.engine import init_db

    engine = _engine(settings)
    try:
        init_db(engine)
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)

