"""The ``agentic`` command: run the service, administer keys and jobs, and ask the API from a terminal.

One module per concern: ``base`` (the group, exit codes and shared helpers), ``serve``, ``db``, ``keys``,
``jobs``, ``cleanup`` (the operator's commands, on the database) and ``ask`` with ``progress`` (a client of
the HTTP API). Importing this package registers every command and stays light (no SQLAlchemy, Flask, httpx
or pydantic until a command runs).
"""

from __future__ import annotations

from agentic.cli import ask, cleanup, db, jobs, keys, serve  # noqa: F401 (each registers its commands)
from agentic.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, JOB_STATUSES, TERMINAL, main

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_INTERRUPTED", "JOB_STATUSES", "TERMINAL", "main"]
