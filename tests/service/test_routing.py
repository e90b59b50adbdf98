"""Routing: SLOW_MODELS, then the token threshold, then QUICK_MODELS, then the default."""

from __future__ import annotations

import pytest

from agentic.service.routing import Route, RoutingRule

RULE = RoutingRule(quick_models=("*-mini", "*haiku*", "openai/gpt-4o"),
                   slow_models=("*/o1*", "*-r1*", "*opus*"), token_threshold=100, default=Route.DIRECT)


@pytest.mark.parametrize(("model", "tokens", "route", "because"), [
    ("openai/o1-preview", 5, Route.QUEUE, "SLOW_MODELS"),
    ("deepseek/deepseek-r1", 5, Route.QUEUE, "SLOW_MODELS"),
    ("anthropic/Claude-3-OPUS", 5, Route.QUEUE, "SLOW_MODELS"),          # case-insensitive
    ("openai/gpt-4o-mini", 101, Route.QUEUE, "exceeds"),                  # size wins over a quick model
    ("openai/gpt-4o-mini", 100, Route.DIRECT, "QUICK_MODELS"),            # threshold is exclusive
    ("anthropic/claude-3-5-haiku", 5, Route.DIRECT, "QUICK_MODELS"),
    ("openai/gpt-4o", 5, Route.DIRECT, "QUICK_MODELS"),
    ("openai/gpt-4o-2024-08-06", 5, Route.DIRECT, "default"),             # whole-id globs, not substrings
    ("mistral/unknown", 5, Route.DIRECT, "default"),
])
def test_each_rule(model: str, tokens: int, route: Route, because: str) -> None:
    decision = RULE.decide(model, tokens)
    assert decision.route is route
    assert because in decision.reason


def test_slow_pattern_wins_over_quick_pattern() -> None:
    rule = RoutingRule(quick_models=("*",), slow_models=("*opus*",))
    assert rule.decide("claude-opus-4", 1).route is Route.QUEUE


def test_default_route_is_configurable() -> None:
    rule = RoutingRule(default=Route.QUEUE)
    assert rule.decide("anything", 1).route is Route.QUEUE
    assert rule.decide("anything", 1).reason == "default route"
