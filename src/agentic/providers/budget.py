"""The step time budget: a deadline a streaming provider call stops at, keeping what it has.

One Inngest step runs inside one HTTP request to the host, which the host kills at its limit (Vercel's
``maxDuration``). A provider call given a ``deadline`` stops reading when it passes, closes the upstream
connection and returns the text so far with ``finish_reason="paused"``; the caller saves it and continues
in the next step (:mod:`agentic.providers.continuation`).

Deadlines are ``time.monotonic()`` instants, so a wall-clock jump cannot end a segment early or late.
Providers check the deadline between chunks, which arrive often even while a model thinks (OpenRouter's
keep-alive comments, Anthropic's pings). For an upstream that falls silent, :func:`watch_deadline` also
shuts the socket down at the deadline, so a blocked read returns at once instead of at the read timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

#: The finish reason of a segment stopped by its deadline: the answer is not finished, continue it.
PAUSED: Final = "paused"


def deadline_in(seconds: float, *, now: float | None = None) -> float:
    """The monotonic instant ``seconds`` from now (``STEP_TIME_BUDGET_SECONDS`` from the step's start)."""
    return (time.monotonic() if now is None else now) + seconds


def expired(deadline: float | None) -> bool:
    """True once ``deadline`` has passed; never for ``None`` (no budget)."""
    return deadline is not None and time.monotonic() >= deadline


@contextlib.contextmanager
def watch_deadline(response: Any, deadline: float | None) -> Iterator[None]:
    """While the block runs, shut the response's socket down when ``deadline`` passes.

    ``response`` is an httpx response (or anything exposing httpx's ``extensions["network_stream"]``); when
    it has no real socket (a mocked transport) nothing is armed and the between-chunk checks do the work.
    A read that fails because of the shutdown surfaces as an httpx error *after* the deadline: providers
    treat such an error as the pause, not as a network failure (see :func:`expired`).
    """
    sock = _socket_of(response) if deadline is not None else None
    if sock is None or deadline is None:
        yield
        return
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), _shutdown, args=(sock,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _socket_of(response: Any) -> socket.socket | None:
    extensions = getattr(response, "extensions", None)
    stream = extensions.get("network_stream") if isinstance(extensions, dict) else None
    get_extra_info = getattr(stream, "get_extra_info", None)
    if get_extra_info is None:
        return None
    try:
        sock = get_extra_info("socket")
    except Exception:  # an exotic transport: fall back to the between-chunk checks
        return None
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: socket.socket) -> None:
    # shutdown, not close: it wakes a thread blocked in recv() on Linux; close() does not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
