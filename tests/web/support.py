"""Helpers shared by the HTTP API tests (the fixtures that use them live in conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from agentic.bootstrap import Container
from agentic.store.tables import JobRow

EVENT_API = "http://127.0.0.1:8288/e/NO_EVENT_KEY_SET"
OPENROUTER = "https://openrouter.ai/api/v1/chat/completions"
SLOW_MODEL = "mock-slow-1"
QUICK_MODEL = "mock-quick"


@dataclass
class EventLog:
    """Events the app sent to the (mocked) Inngest event API."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["name"] == name]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        batch = json.loads(request.content)
        self.events.extend(batch)
        return httpx.Response(200, json={"ids": [e.get("id", "x") for e in batch], "status": 200})


@dataclass
class Api:
    app: Flask
    container: Container
    client: FlaskClient

    def key(self, user_id: str = "alice") -> str:
        return self.container.keys.create(user_id).secret

    def jobs_count(self) -> int:
        with self.container.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(JobRow)).scalar_one())


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def chat(content: str = "hello there", model: str = QUICK_MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


