"""What the client returns: plain dataclasses over the API's JSON (the raw body stays in ``data``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

TERMINAL = frozenset({"completed", "failed", "cancelled"})
EventType = Literal["status", "delta", "reset", "done"]


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        return cls(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0),
                   int(data.get("total_tokens") or 0))


@dataclass(frozen=True)
class Completed:
    """A quick model's answer (200): nothing was queued, nothing stored."""

    content: str
    model: str
    provider: str
    usage: Usage | None
    finish_reason: str | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Completed:
        response = body.get("response") or {}
        return cls(content=str(response.get("content") or ""), model=str(response.get("model") or ""),
                   provider=str(response.get("provider") or ""), usage=Usage.of(response.get("usage")),
                   finish_reason=response.get("finish_reason"), data=body)


@dataclass(frozen=True)
class Preview:
    """A preview answered at once (200)."""

    preview: str
    used_ai: bool
    data: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class JobHandle:
    """A request that became a job (202). ``replayed`` is true when an Idempotency-Key returned an existing
    job; ``token`` is the job's read token for a browser (None unless the server issues them)."""

    job_id: str
    kind: str
    status: str
    links: dict[str, str]
    token: str | None
    replayed: bool
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, body: dict[str, Any], *, replayed: bool) -> JobHandle:
        return cls(job_id=str(body["job_id"]), kind=str(body.get("kind") or "generate"),
                   status=str(body.get("status") or "pending"), links=dict(body.get("links") or {}),
                   token=body.get("token"), replayed=replayed, data=body)


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True)
class Job:
    """A job as its owner sees it (GET /api/jobs/<id>, list items, the ``done`` event)."""

    id: str
    kind: str
    status: str
    model: str | None
    provider: str | None
    partial_output: str | None
    response: dict[str, Any] | None
    error: JobError | None
    usage: Usage | None
    attempts: int
    created_at: datetime | None
    updated_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    token: str | None
    data: dict[str, Any] = field(repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def text(self) -> str:
        """The answer when completed (a preview's text for previews), else the partial output so far."""
        if self.response is not None:
            for key in ("content", "preview"):
                value = self.response.get(key)
                if isinstance(value, str):
                    return value
        return self.partial_output or ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> Job:
        error = data.get("error")
        return cls(
            id=str(data["id"]), kind=str(data.get("kind") or ""), status=str(data.get("status") or ""),
            model=data.get("model"), provider=data.get("provider"), partial_output=data.get("partial_output"),
            response=data.get("response") if isinstance(data.get("response"), dict) else None,
            error=JobError(str(error.get("code") or ""), str(error.get("message") or ""))
            if isinstance(error, dict) else None,
            usage=Usage.of(data.get("usage")), attempts=int(data.get("attempts") or 0),
            created_at=_when(data.get("created_at")), updated_at=_when(data.get("updated_at")),
            started_at=_when(data.get("started_at")), finished_at=_when(data.get("finished_at")),
            cancel_requested_at=_when(data.get("cancel_requested_at")), token=data.get("token"), data=data)


@dataclass(frozen=True)
class Event:
    """One event of a job's stream: ``type`` is status, delta, reset or done; ``data`` is its JSON.

    Feed each event to :meth:`apply` to keep the job's text exact: deltas append, a ``reset`` (a retried
    attempt starting over) keeps its ``offset`` first characters (none when absent or 0)."""

    type: str
    data: dict[str, Any]
    id: str | None = None

    def apply(self, text: str) -> str:
        if self.type == "delta":
            return text + str(self.data.get("text") or "")
        if self.type == "reset":
            offset = self.data.get("offset")
            return text[:offset] if isinstance(offset, int) and offset > 0 else ""
        return text

    @property
    def job(self) -> Job | None:
        """The finished job, on the ``done`` event."""
        return Job.of(self.data) if self.type == "done" else None


__all__ = ["TERMINAL", "Completed", "Event", "Job", "JobError", "JobHandle", "Preview", "Usage"]
