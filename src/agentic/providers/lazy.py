"""Build the provider on first use, so the service starts without keys (and without importing SDKs).

A missing key then fails the request that needs it, with an error naming the variable to set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agentic.domain.llm import LLMRequest, LLMResponse
from agentic.providers.base import CancelCheck, DeltaCallback, LLMProvider


class LazyLLMProvider:
    def __init__(self, name: str, build: Callable[[], LLMProvider]) -> None:
        self.name = name
        self._build = build
        self._instance: LLMProvider | None = None
        self._lock = threading.Lock()

    def get(self) -> LLMProvider:
        if self._instance is None:
            with self._lock:
                if self._instance is None:
                    self._instance = self._build()
        return self._instance

    def generate(
        self, request: LLMRequest, *, on_delta: DeltaCallback | None = None,
        should_cancel: CancelCheck | None = None, deadline: float | None = None,
    ) -> LLMResponse:
        return self.get().generate(request, on_delta=on_delta, should_cancel=should_cancel, deadline=deadline)
