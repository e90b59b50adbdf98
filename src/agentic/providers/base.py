"""The one interface every LLM provider implements (the provider talks to an LLM API; it stores nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agentic.domain.llm import LLMRequest, LLMResponse

#: Receives each text delta as it streams (used to save progress to the job row).
DeltaCallback = Callable[[str], None]
#: Consulted between chunks; True means stop now, close upstream and return the partial text.
CancelCheck = Callable[[], bool]


class LLMProvider(Protocol):
    """Generates a response, streaming internally.

    Raises :class:`agentic.domain.errors.LLMError` for every failure. When ``should_cancel`` says stop,
    the upstream connection is closed at once and the partial text is returned with
    ``finish_reason="cancelled"``. When the ``deadline`` (a ``time.monotonic()`` instant, see
    :mod:`agentic.providers.budget`) passes mid-stream, the same happens with ``finish_reason="paused"``:
    the caller saves the text and continues it later (:mod:`agentic.providers.continuation`).
    """

    name: str

    def generate(
        self,
        request: LLMRequest,
        *,
        on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None,
        deadline: float | None = None,
    ) -> LLMResponse: ...
