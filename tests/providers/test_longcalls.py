"""Which models are continued by prefill and which are offloaded to Inngest, by default and configured."""

from __future__ import annotations

import pytest

from agentic.config import load_settings
from agentic.providers.longcalls import LongCallMode, long_call_mode, long_call_mode_for


@pytest.mark.parametrize(("model", "mode"), [
    ("openai/o3", LongCallMode.OFFLOAD),
    ("openai/o4-mini-high", LongCallMode.OFFLOAD),
    ("openai/gpt-5", LongCallMode.OFFLOAD),
    ("openai/gpt-4o-mini", LongCallMode.OFFLOAD),  # OpenAI models treat a prefill as history
    ("o1-preview", LongCallMode.OFFLOAD),
    ("deepseek/deepseek-r1", LongCallMode.OFFLOAD),
    ("deepseek/deepseek-r1-distill-llama-70b", LongCallMode.OFFLOAD),
    ("anthropic/claude-3.7-sonnet:thinking", LongCallMode.OFFLOAD),
    ("qwen/qwq-32b", LongCallMode.OFFLOAD),
    ("mock-offload-1", LongCallMode.OFFLOAD),
    ("anthropic/claude-sonnet-4", LongCallMode.CONTINUE),
    ("claude-opus-4-1", LongCallMode.CONTINUE),
    ("meta-llama/llama-3.3-70b-instruct", LongCallMode.CONTINUE),
    ("mistralai/mistral-large", LongCallMode.CONTINUE),
    ("mock-slow-1", LongCallMode.CONTINUE),
])
def test_default_modes(model: str, mode: LongCallMode) -> None:
    assert long_call_mode_for(load_settings(), model) is mode


def test_globs_match_the_whole_id_case_insensitively() -> None:
    assert long_call_mode("OpenAI/O3-Pro", ["openai/o3*"]) is LongCallMode.OFFLOAD
    assert long_call_mode("vendor/openai/o3", ["openai/o3*"]) is LongCallMode.CONTINUE
    assert long_call_mode("anything", []) is LongCallMode.CONTINUE
