"""Job kinds in one place: a spec per kind, from which everything about the kind is derived.

A spec names the kind, its event, its Inngest function (id, name, provider step, retries, throttle), its
request and result models, how a request is routed and which model runs it, and its handler (the step
logic, :mod:`agentic.service.generation`). The events, the Inngest functions (``functions/``), the service's direct
and queued paths, the job views and the OpenAPI document read the specs; nothing else lists the kinds.

Adding a kind is one spec (here, or registered by a plugin), one handler and one route: see
``tests/service/test_toy_kind.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic

from agentic.config import Settings
from agentic.domain.jobs import JobKind
from agentic.domain.llm import LLMRequest, LLMResponse, PreviewRequest, PreviewResult
from agentic.inngest.events import EVENT_GENERATE, EVENT_PREVIEW
from agentic.service.generation import Handler, RequestT, ResultT
from agentic.service.preview import PREVIEW_HANDLER
from agentic.service.routing import Route, RoutingDecision, RoutingRule


@dataclass(frozen=True)
class Throttle:
    """Runs started per user per period (Inngest's throttle, keyed by ``event.data.user_id``)."""

    limit: int
    period_seconds: int


def _per_user_concurrency(settings: Settings) -> int | None:
    return settings.concurrency_per_user


@dataclass(frozen=True)
class JobKindSpec(Generic[RequestT, ResultT]):
    kind: JobKind
    #: The event that starts the kind's function; its data is ``{job_id, user_id}``, its id the job id.
    event: str
    function_id: str
    function_name: str
    #: The id of the step that calls the provider.
    call_step: str
    request_model: type[RequestT]
    result_model: type[ResultT]
    handler: Handler[RequestT, ResultT]
    #: Direct or queued, for this request (the rule answers "direct" to everything with USE_QUEUE=false).
    route: Callable[[RequestT, RoutingRule], RoutingDecision]
    #: The model that runs this request.
    model: Callable[[RequestT, Settings], str]
    throttle: Callable[[Settings], Throttle]
    retries: int = 3
    #: Whether a model in OFFLOAD_MODELS has this kind's call made by the Inngest server (step.ai.infer)
    #: instead of streaming it in segments.
    offloadable: bool = False
    concurrency: Callable[[Settings], int | None] = field(default=_per_user_concurrency)
    #: The text of a result (the CLI and the playground show it); the result's JSON as a fallback.
    text: Callable[[ResultT], str] = field(default=lambda result: result.model_dump_json())

    def result_of(self, stored: dict[str, Any]) -> ResultT:
        """A stored response, validated as this kind's result (raises pydantic's ValidationError)."""
        return self.result_model.model_validate(stored)


AnySpec = JobKindSpec[Any, Any]


class UnknownKind(LookupError):
    pass


class KindRegistry:
    """The kinds this service runs, in the order they were registered (one spec per kind)."""

    def __init__(self, *specs: AnySpec) -> None:
        self._specs: dict[JobKind, AnySpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: AnySpec) -> None:
        if spec.kind in self._specs:
            raise ValueError(f"job kind {spec.kind.value!r} is registered already")
        self._specs[spec.kind] = spec

    def unregister(self, kind: JobKind) -> None:
        self._specs.pop(kind, None)

    def __iter__(self) -> Iterator[AnySpec]:
        return iter(tuple(self._specs.values()))

    def __getitem__(self, kind: JobKind) -> AnySpec:
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownKind(f"no spec for job kind {kind.value!r}") from None


# ---- the built-in kinds ------------------------------------------------------------------------------


#: The generate kind's handler: the request is the model request, the answer is the result.
GENERATE_HANDLER = Handler[LLMRequest, LLMResponse](prompt=lambda request, _model: request,
                                                     result=lambda _request, response: response)


def _route_generate(request: LLMRequest, rule: RoutingRule) -> RoutingDecision:
    return rule.decide(request.model, request.estimated_prompt_tokens())


def _route_preview(request: PreviewRequest, rule: RoutingRule) -> RoutingDecision:
    if not request.needs_ai:
        return RoutingDecision(Route.DIRECT, "short content is its own preview")
    return rule.background("long content is summarised by PREVIEW_MODEL")


GENERATE = JobKindSpec[LLMRequest, LLMResponse](
    kind=JobKind.GENERATE, event=EVENT_GENERATE, function_id="llm-generate", function_name="Generate LLM response",
    call_step="call-llm", request_model=LLMRequest, result_model=LLMResponse, handler=GENERATE_HANDLER,
    route=_route_generate, model=lambda request, _settings: request.model,
    throttle=lambda s: Throttle(s.generate_throttle_limit, s.generate_throttle_period_seconds),
    retries=3, offloadable=True, text=lambda response: response.content,
)

PREVIEW = JobKindSpec[PreviewRequest, PreviewResult](
    kind=JobKind.PREVIEW, event=EVENT_PREVIEW, function_id="preview-generate", function_name="Generate tile preview",
    call_step="generate-preview", request_model=PreviewRequest, result_model=PreviewResult,
    handler=PREVIEW_HANDLER, route=_route_preview, model=lambda _request, settings: settings.preview_model,
    throttle=lambda s: Throttle(s.preview_throttle_limit, s.preview_throttle_period_seconds),
    retries=2, text=lambda result: result.preview,
)

#: The process's kinds: the built-in ones, and any a plugin (or a test) registers before the app is built.
KINDS = KindRegistry(GENERATE, PREVIEW)

__all__ = ["GENERATE", "GENERATE_HANDLER", "KINDS", "PREVIEW", "AnySpec", "JobKindSpec", "KindRegistry", "Throttle",
           "UnknownKind"]
