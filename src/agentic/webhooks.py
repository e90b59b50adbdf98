"""Webhooks: a signed JSON summary of each finished job, POSTed to ``WEBHOOK_URL``.

The signature header is ``X-Agentic-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body under
``WEBHOOK_SECRET``. The body carries ``sent_at``, so a receiver can refuse stale replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from agentic.domain.jobs import Job

SIGNATURE_HEADER = "X-Agentic-Signature"


class WebhookError(Exception):
    """The receiver did not accept the delivery (network failure or a non-2xx answer)."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver runs: constant-time comparison of the header with the expected signature.

    Compared as bytes: ``compare_digest`` raises TypeError for a str with non-ASCII characters, and the
    header is attacker-controlled.
    """
    return hmac.compare_digest(sign(secret, body).encode(), header.encode("utf-8", "surrogateescape"))


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "type": "job.finished",
        "job_id": job.id,
        "kind": job.kind.value,
        "user_id": job.user_id,
        "status": job.status.value,
        "model": job.model,
        "provider": job.provider,
        "response": job.response,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "usage": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
                  "total_tokens": job.total_tokens} if job.total_tokens is not None else None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "sent_at": datetime.now(UTC).isoformat(),
    }


class WebhookNotifier:
    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._secret = secret
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def deliver(self, job: Job) -> int:
        body = json.dumps(job_summary(job), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body),
                   "User-Agent": "agentic-webhooks/1"}
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookError(f"webhook delivery failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise WebhookError(f"webhook receiver answered {response.status_code}")
        return response.status_code
