"""Persistence: SQLModel tables, the engine, and the job and API-key stores."""

from agentic.store.engine import create_db_engine, init_db
from agentic.store.jobs import IdempotencyConflict, JobPage, JobStore
from agentic.store.keys import ApiKey, ApiKeyStore, IssuedKey

__all__ = [
    "ApiKey",
    "ApiKeyStore",
    "IdempotencyConflict",
    "IssuedKey",
    "JobPage",
    "JobStore",
    "create_db_engine",
    "init_db",
]
