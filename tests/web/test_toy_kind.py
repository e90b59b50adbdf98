"""Adding a job kind takes one spec, one handler and one route: a toy kind ("shout"), end to end.

Nothing else is edited for it: the event, the Inngest function, the job row, the job view, the event stream,
the OpenAPI components and the direct path all come from the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Blueprint, Response, current_app
from pydantic import BaseModel, ConfigDict

from agentic.bootstrap import inngest_functions
from agentic.domain.jobs import JobKind, JobStatus
from agentic.domain.llm import LLMRequest, LLMResponse, Message
from agentic.service.generation import Handler
from agentic.service.kinds import KINDS, JobKindSpec, Throttle
from agentic.web.api import kind_answer
from agentic.web.app import container_of
from agentic.web.auth import authenticate, current_key
from agentic.web.bodies import idempotency_key, read_json
from tests.functions.executor import FakeExecutor, RunStatus, make_event
from tests.web.support import Api, EventLog, auth

SIGNING_KEY = "signkey-test-0123456789abcdef"


class ShoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str


class ShoutResult(BaseModel):
    shout: str


# ---- 1. the handler ---------------------------------------------------------------------------------


def shout_prompt(request: ShoutRequest, model: str) -> LLMRequest:
    return LLMRequest(messages=[Message(role="user", content=request.text)], model=model)


def shout_result(request: ShoutRequest, answer: LLMResponse) -> ShoutResult:
    return ShoutResult(shout=answer.content.upper())


SHOUT = Handler(prompt=shout_prompt, result=shout_result)


# ---- 2. the spec ------------------------------------------------------------------------------------

TOY = JobKindSpec[ShoutRequest, ShoutResult](
    kind=JobKind.register("shout"), event="toy/shout.request", function_id="toy-shout", function_name="Shout",
    call_step="shout-it", request_model=ShoutRequest, result_model=ShoutResult, handler=SHOUT,
    route=lambda request, rule: rule.background("shouting is always a job"),
    model=lambda request, settings: "mock-shout", throttle=lambda settings: Throttle(7, 60), retries=1,
    text=lambda result: result.shout,
)

# ---- 3. the route -----------------------------------------------------------------------------------

toy_routes = Blueprint("toy", __name__, url_prefix="/api/toy")


@toy_routes.before_request
def _authenticate() -> None:
    authenticate(container_of(current_app).keys)


@toy_routes.post("/shout")
def shout_route() -> Response:
    service = container_of(current_app).service
    body = read_json(ShoutRequest, max_bytes=4096)
    return kind_answer(service.submit(TOY, body, user_id=current_key().user_id, idempotency_key=idempotency_key()))


# ---- the proof --------------------------------------------------------------------------------------


@pytest.fixture
def make_toy_api(make_api: Callable[..., Api]) -> Iterator[Callable[..., Api]]:
    KINDS.register(TOY)  # before the app is built, as a plugin would

    def make(**overrides: Any) -> Api:
        api = make_api(inngest_signing_key=SIGNING_KEY, **overrides)
        api.app.register_blueprint(toy_routes)
        return api

    yield make
    KINDS.unregister(TOY.kind)


def test_a_toy_kind_is_queued_run_by_its_derived_function_and_viewed(
    make_toy_api: Callable[..., Api], events: EventLog,
) -> None:
    api = make_toy_api(use_queue=True)
    secret = api.key("alice")

    answer = api.client.post("/api/toy/shout", json={"text": "hello there"}, headers=auth(secret))
    assert answer.status_code == 202 and answer.json["kind"] == "shout" and answer.json["status"] == "pending"
    job_id = answer.json["job_id"]
    [event] = events.named("toy/shout.request")
    assert event["data"] == {"job_id": job_id, "user_id": "alice"} and event["id"] == job_id

    # The function is derived from the spec: id, trigger, retries, throttle, the kind's step.
    [function] = [fn for fn in inngest_functions(api.container) if fn.local_id == "toy-shout"]
    config = function.get_config("https://agentic.test/api/inngest").main.model_dump(mode="json", by_alias=True,
                                                                               exclude_none=True)
    assert config["name"] == "Shout" and config["triggers"] == [{"event": "toy/shout.request"}]
    assert config["throttle"]["limit"] == 7 and config["steps"]["step"]["retries"] == {"attempts": 1}
    executor = FakeExecutor(api.app.test_client(), SIGNING_KEY)
    run = executor.drive("toy-shout", make_event(TOY.event, event["data"], event_id=job_id), retries=1)
    assert run.status is RunStatus.COMPLETED and run.output == {"job_id": job_id, "status": "completed"}
    assert "shout-it" in [name for call in run.calls for _, name in call.op_names]

    view = api.client.get(f"/api/jobs/{job_id}", headers=auth(secret)).json
    assert view["kind"] == "shout" and view["status"] == "completed" and view["model"] == "mock-shout"
    assert view["response"]["shout"] and view["response"]["shout"] == view["response"]["shout"].upper()
    stored = api.container.jobs.get(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED and stored.kind is TOY.kind
    assert api.container.reads.text(stored) == view["response"]["shout"]

    stream = api.client.get(f"/api/jobs/{job_id}/events", headers=auth(secret)).get_data(as_text=True)
    assert "event: done" in stream and '"kind":"shout"' in stream

    schemas = api.client.get("/api/openapi.json").json["components"]["schemas"]
    assert {"ShoutRequest", "ShoutResult"} <= set(schemas)


def test_a_toy_kind_runs_directly_without_the_queue(make_toy_api: Callable[..., Api], events: EventLog) -> None:
    api = make_toy_api(use_queue=False)
    answer = api.client.post("/api/toy/shout", json={"text": "quiet"}, headers=auth(api.key()))
    assert answer.status_code == 200
    assert answer.json["shout"] and answer.json["shout"] == answer.json["shout"].upper()
    assert events.events == [] and api.jobs_count() == 0
