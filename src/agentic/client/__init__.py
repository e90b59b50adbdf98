"""``agentic.client``: a typed Python client of the agentic API (sync and asyncio), on httpx alone.

It imports nothing of the server (no Flask, SQLAlchemy or Inngest), so an app that only calls agentic
installs and loads little::

    from agentic.client import AgenticClient, JobHandle

    with AgenticClient("http://127.0.0.1:8000", "agk_...") as client:
        outcome = client.generate("mock-slow-1", "Explain durable execution")
        if isinstance(outcome, JobHandle):
            text = ""
            for event in client.stream(outcome.job_id):   # reconnects by itself; text stays exact
                text = event.apply(text)
            job = client.wait(outcome.job_id)
"""

from agentic.client._core import StreamUnavailable
from agentic.client.aio import AsyncAgenticClient
from agentic.client.errors import (
    AgenticError,
    ApiError,
    AuthenticationError,
    ConflictError,
    ConnectionFailed,
    IdempotencyConflictError,
    InvalidRequestError,
    JobFinishedError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
    UnavailableError,
    WaitTimeout,
)
from agentic.client.models import Completed, Event, Job, JobError, JobHandle, Preview, Usage
from agentic.client.sync import AgenticClient

__all__ = [
    "AgenticClient",
    "AgenticError",
    "ApiError",
    "AsyncAgenticClient",
    "AuthenticationError",
    "Completed",
    "ConflictError",
    "ConnectionFailed",
    "Event",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "Job",
    "JobError",
    "JobFinishedError",
    "JobHandle",
    "NotFoundError",
    "Preview",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "StreamUnavailable",
    "UnavailableError",
    "Usage",
    "WaitTimeout",
]
