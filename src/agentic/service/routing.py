"""Which requests run directly and which become jobs: a use-case rule of the service layer.

Rules, in order: ``USE_QUEUE=false`` answers "direct" to everything; a model matching ``SLOW_MODELS`` is
queued; a prompt estimated above ``QUEUE_TOKEN_THRESHOLD`` tokens is queued whatever the model; a model
matching ``QUICK_MODELS`` runs directly; otherwise the default route.
Patterns are shell-style globs matched against the whole model id, case-insensitively (not substrings).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from agentic.config import Settings


class Route(StrEnum):
    DIRECT = "direct"
    QUEUE = "queue"


@dataclass(frozen=True)
class RoutingDecision:
    route: Route
    reason: str


QUEUE_DISABLED = RoutingDecision(Route.DIRECT, "USE_QUEUE=false: every request runs directly")


@dataclass(frozen=True)
class RoutingRule:
    quick_models: tuple[str, ...] = ()
    slow_models: tuple[str, ...] = ()
    token_threshold: int = 4000
    default: Route = Route.DIRECT
    #: ``USE_QUEUE``: without a queue, the rule answers "direct" to every request.
    queue: bool = True

    def decide(self, model: str, estimated_tokens: int) -> RoutingDecision:
        if not self.queue:
            return QUEUE_DISABLED
        name = model.lower()
        if pattern := _first_match(name, self.slow_models):
            return RoutingDecision(Route.QUEUE, f"model matches SLOW_MODELS pattern {pattern!r}")
        if estimated_tokens > self.token_threshold:
            return RoutingDecision(
                Route.QUEUE, f"estimated prompt of {estimated_tokens} tokens exceeds {self.token_threshold}")
        if pattern := _first_match(name, self.quick_models):
            return RoutingDecision(Route.DIRECT, f"model matches QUICK_MODELS pattern {pattern!r}")
        return RoutingDecision(self.default, "default route")

    def background(self, reason: str) -> RoutingDecision:
        """Work that is a job whenever there is a queue (a long preview), whatever its model."""
        return RoutingDecision(Route.QUEUE, reason) if self.queue else QUEUE_DISABLED


def routing_rule(settings: Settings) -> RoutingRule:
    return RoutingRule(quick_models=tuple(settings.quick_models), slow_models=tuple(settings.slow_models),
                       token_threshold=settings.queue_token_threshold, default=Route(settings.default_route),
                       queue=settings.use_queue)


def _first_match(model: str, patterns: tuple[str, ...]) -> str | None:
    return next((p for p in patterns if fnmatchcase(model, p.lower())), None)
