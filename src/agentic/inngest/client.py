"""The one Inngest client (app id ``agentic``), built from settings.

Dev mode follows ``INNGEST_DEV`` exactly as the SDK reads it. In production (the SDK's default) the app
refuses to start without ``INNGEST_SIGNING_KEY``: an unsigned endpoint would run anyone's requests.
"""

from __future__ import annotations

import logging

import inngest

from agentic.config import ConfigError, Settings
from agentic.inngest.events import redact_event_key

APP_ID = "agentic"


class RedactEventKey(logging.Filter):
    """httpx logs each request's URL at INFO; the event API's URL carries the event key (``/e/<key>``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_event_key(str(arg)) if "/e/" in str(arg) else arg for arg in record.args)
        return True


_REDACT_EVENT_KEY = RedactEventKey()


def create_inngest_client(settings: Settings) -> inngest.Inngest:
    if not settings.inngest_is_dev and settings.inngest_signing_key is None:
        raise ConfigError(
            "INNGEST_SIGNING_KEY is not set: it is required in production, where Inngest signs every call "
            "to /api/inngest. Set it (the Inngest Vercel integration does), or set INNGEST_DEV=1 to run "
            "against the local Inngest dev server.")
    logging.getLogger("httpx").addFilter(_REDACT_EVENT_KEY)  # idempotent: a logger keeps one of each filter
    base = str(settings.inngest_base_url) if settings.inngest_base_url else None
    event_base = str(settings.inngest_event_api_base_url) if settings.inngest_event_api_base_url else base
    return inngest.Inngest(
        app_id=APP_ID,
        is_production=not settings.inngest_is_dev,
        signing_key=_secret(settings.inngest_signing_key),
        event_key=_secret(settings.inngest_event_key),
        api_base_url=base,
        event_api_base_url=event_base,
        logger=logging.getLogger("agentic.inngest"),
    )


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]
