"""Sending Inngest events, with a bounded wait.

The SDK's ``send_sync`` retries for several seconds when the event API is down; an API request cannot
wait that long. ``InngestEventSender`` gives up after ``timeout`` seconds. A send that completes after
we gave up is harmless: the caller has already marked the job failed, and the functions end at once for
a job that is terminal.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import inngest

EVENT_GENERATE = "llm/generate.request"
EVENT_CANCEL = "llm/generate.cancel"
EVENT_PREVIEW = "preview/generate.request"


class EventSendError(Exception):
    """The event could not be handed to Inngest (unreachable, refused, or too slow)."""


class EventSender(Protocol):
    def send(self, name: str, data: dict[str, Any], *, event_id: str | None = None) -> None: ...


class InngestEventSender:
    """Sends events through the Inngest client, waiting at most ``timeout`` seconds."""

    def __init__(self, client: inngest.Inngest, *, timeout: float = 5.0) -> None:
        self.client = client
        self.timeout = timeout

    def send(self, name: str, data: dict[str, Any], *, event_id: str | None = None) -> None:
        import inngest

        event = inngest.Event(name=name, data=data, id=event_id or "")
        future: Future[list[str]] = Future()

        def deliver() -> None:
            try:
                future.set_result(self.client.send_sync([event]))
            except BaseException as exc:
                future.set_exception(exc)

        # A thread of its own: a send we gave up on may block for a long time, and must not hold up later ones.
        threading.Thread(target=deliver, name="inngest-send", daemon=True).start()
        try:
            future.result(timeout=self.timeout)
        except FutureTimeout:
            raise EventSendError(f"the Inngest event API did not answer within {self.timeout:g}s") from None
        except Exception as exc:
            raise EventSendError(f"the Inngest event API refused the event: {type(exc).__name__}: "
                                 f"{redact_event_key(str(exc))[:300]}") from None


_EVENT_KEY_IN_URL = re.compile(r"/e/[^/?#\s\"']+")


def redact_event_key(text: str) -> str:
    """The event API's URL is ``/e/<event key>``: mask the key wherever a URL may be echoed (errors, logs)."""
    return _EVENT_KEY_IN_URL.sub("/e/[redacted]", text) if "/e/" in text else text
