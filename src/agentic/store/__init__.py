"""Persistence: SQLModel tables, the engine, the job and API-key stores, and the job-change watcher."""
