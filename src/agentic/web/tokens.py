"""Job-scoped read tokens: what a browser holds to follow one job without the owner's API key.

``EventSource`` cannot send an ``Authorization`` header, so a page gets a short-lived token with each job it
queues and passes it as ``?token=`` (or as a bearer). A token names one job and its owner and expires after
``JOB_TOKEN_TTL_SECONDS``; it is an HMAC-SHA256 under ``JOB_TOKEN_SECRET``, checked without a database read,
and grants ``GET /api/jobs/<id>`` and its event stream for that job only. Nothing revokes a token before it
expires (revoking the owner's key does not), which is why the TTL is short.

Shape: ``agt_<base64url(JSON {"j": job id, "u": user id, "e": expiry})>.<base64url(HMAC)>``. The ``agt_``
prefix keeps tokens apart from API keys (``agk_``) and lets logs redact them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "agt_"
#: Key derivation label: the secret signs nothing else under this purpose.
_PURPOSE = b"agentic job read token v1\x00"
#: A token anywhere in a text (a request line, a Referer), for redaction; also ``token=<anything>``.
_TOKEN_IN_TEXT = re.compile(r"agt_[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+|(?<=[?&]token=)[^&\s\"']+")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class JobToken:
    job_id: str
    user_id: str
    expires_at: int

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JobTokens:
    """Issues and verifies tokens under one secret; ``clock`` is wall-clock seconds (tests move it)."""

    def __init__(self, secret: str, *, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(self, job_id: str, user_id: str) -> str:
        expires = int(self._clock()) + self.ttl_seconds
        payload = _b64(json.dumps({"j": job_id, "u": user_id, "e": expires}, separators=(",", ":")).encode())
        return f"{PREFIX}{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> JobToken | None:
        """The token's claims when it is well formed, signed by us and unexpired; None otherwise."""
        if not token.startswith(PREFIX) or token.count(".") != 1:
            return None
        payload, signature = token[len(PREFIX):].split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            claims = json.loads(_unb64(payload))
            found = JobToken(job_id=str(claims["j"]), user_id=str(claims["u"]), expires_at=int(claims["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return None if found.expired(self._clock()) else found

    def still_valid(self, token: JobToken) -> bool:
        return not token.expired(self._clock())

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX)


def redact_tokens(text: str) -> str:
    return _TOKEN_IN_TEXT.sub(REDACTED, text) if ("agt_" in text or "token=" in text) else text


class TokenRedactingFilter(logging.Filter):
    """Masks tokens in a record's message and arguments: access logs print request lines (``?token=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, dict):  # gunicorn's atoms: a dict subclass, changed in place to keep its type
            for name, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[name] = redact_tokens(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True


#: The loggers that print request lines: werkzeug's development server, `agentic serve --access-log`
#: (which logs no query string at all) and waitress's own messages.
ACCESS_LOGGERS = ("werkzeug", "agentic.access", "waitress")


def install_log_redaction() -> None:
    """Idempotent: adds the filter once to each access logger."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())


__all__ = ["PREFIX", "JobToken", "JobTokens", "install_log_redaction", "looks_like_token", "redact_tokens"]
