"""How a queued call that may outlive one step runs: continued by prefill, or offloaded to Inngest.

``continue``: the call streams under the step time budget; when the budget runs out the text so far is
saved and the next step continues it (:mod:`agentic.providers.continuation`). Right for models that carry on
from an assistant prefill (Claude, and most open models through OpenRouter).

``offload``: the whole non-streaming call is handed to the Inngest server with ``step.ai.infer``
(:mod:`agentic.providers.offload`). Right for models that cannot continue a prefill, which would start a
fresh answer in every segment: OpenAI's models (reasoning ones above all) and reasoning models in general,
which also think silently for minutes before the first token. ``OFFLOAD_MODELS`` lists them (globs, matched
against the whole model id, case-insensitively, like ``QUICK_MODELS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from fnmatch import fnmatchcase

from agentic.config import Settings


class LongCallMode(StrEnum):
    CONTINUE = "continue"
    OFFLOAD = "offload"


def long_call_mode(model: str, offload_models: Iterable[str]) -> LongCallMode:
    """``offload`` when ``model`` matches one of the ``offload_models`` globs, else ``continue``."""
    name = model.lower()
    if any(fnmatchcase(name, pattern.lower()) for pattern in offload_models):
        return LongCallMode.OFFLOAD
    return LongCallMode.CONTINUE


def long_call_mode_for(settings: Settings, model: str) -> LongCallMode:
    """:func:`long_call_mode` with the configured ``OFFLOAD_MODELS``."""
    return long_call_mode(model, settings.offload_models)
