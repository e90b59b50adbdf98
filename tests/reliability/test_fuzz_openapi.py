"""Fuzzing the API from its own OpenAPI document (schemathesis, against the Flask WSGI app), with and without
a valid key, with data that fits the schema and data that does not.

For every generated request: no 5xx; every error (4xx) is application/problem+json with a code and the
status it was sent with; a refused request stores no job row and sends no event. The generation is
deterministic (derandomized) and bounded, so the test costs the same on every run.

Hand-written hostile bodies (malformed JSON, wrong media types, unknown fields, oversize) are in
tests/web/test_api_generate.py; this test covers what nobody thought to write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from agentic.store.tables import JobRow
from agentic.web.app import container_of
from tests.functions.conftest import AppHarness
from tests.reliability.support import EventRecorder

MakeApp = Callable[..., AppHarness]

# A dev dependency (schemathesis>=4.32,<5): without it this module is skipped, saying so, not a collection error.
schemathesis = pytest.importorskip("schemathesis", minversion="4.0",
                                   reason="schemathesis is not installed (pip install 'schemathesis>=4.32,<5')")
GenerationMode = schemathesis.GenerationMode

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Examples per operation, mode and credential: enough to reach every validator, small enough for CI.
EXAMPLES = {(GenerationMode.POSITIVE, True): 50, (GenerationMode.NEGATIVE, True): 50,
            (GenerationMode.POSITIVE, False): 10, (GenerationMode.NEGATIVE, False): 10}


@dataclass
class Fuzzed:
    harness: AppHarness
    recorder: EventRecorder
    schema: Any
    key: str
    seen: dict[str, set[int]] = field(default_factory=dict)

    def rows(self) -> int:
        with self.harness.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(JobRow)).scalar_one())


@pytest.fixture
def fuzzed(make_app: MakeApp, recorder: EventRecorder) -> Iterator[Fuzzed]:
    # Every model that is not a quick one is queued, so accepted requests do store jobs and send events.
    harness = make_app(use_queue=True, default_route="queue", inngest_event_key="evt-key-fuzz",
                       inngest_event_api_base_url=recorder.url, inngest_base_url=recorder.url,
                       metrics_token="metrics-token-fuzz", max_request_bytes=65536, event_send_timeout=2.0,
                       sse_max_seconds=1.0, sse_heartbeat_seconds=0.2)
    key = container_of(harness.app).keys.create("fuzzer").secret
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", harness.app)
    yield Fuzzed(harness, recorder, schema, key)


def _check(fuzzed: Fuzzed, case: Any, headers: dict[str, str]) -> None:
    rows, events = fuzzed.rows(), len(fuzzed.recorder.snapshot())
    response = case.call(headers=headers)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.content[:300]!r}"
    fuzzed.seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
    assert response.status_code < 500, where
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/problem+json"), where
        problem = json.loads(response.content)
        assert problem["status"] == response.status_code and problem["code"], where
        assert problem["type"].endswith(problem["code"]), where
        assert fuzzed.rows() == rows, f"a refused request stored a job: {where}"
        assert len(fuzzed.recorder.snapshot()) == events, f"a refused request sent an event: {where}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("with_key", [True, False], ids=["valid key", "no key"])
def test_fuzzed_requests_never_5xx_and_refusals_are_problems_that_store_nothing(
        fuzzed: Fuzzed, with_key: bool) -> None:
    operations = [result.ok() for result in fuzzed.schema.get_all_operations()]
    assert len(operations) >= 8, "the OpenAPI document lost its operations"
    headers = {"Authorization": f"Bearer {fuzzed.key}"} if with_key else {}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=EXAMPLES[mode, with_key], derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), print_blob=True)
            @given(case=strategy)
            def fuzz(case: Any) -> None:
                _check(fuzzed, case, headers)

            try:
                fuzz()
            except Exception as exc:
                if "Unsatisfiable" in type(exc).__name__ or "no negative" in str(exc).lower():
                    continue  # an operation with nothing to break in this mode (no parameters, no body)
                raise

    statuses = {status for seen in fuzzed.seen.values() for status in seen}
    if with_key:
        assert {202, 404, 422} <= statuses, fuzzed.seen  # it reached both sides of the API
        assert fuzzed.rows() > 0 and fuzzed.recorder.named("llm/generate.request")
    else:
        assert 401 in statuses and statuses <= {200, 204, 401, 404, 405, 413, 415, 400, 422}, fuzzed.seen


def _draw(strategy: Any, count: int) -> list[str]:
    bodies: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def draw(case: Any) -> None:
        bodies.append(repr(case.body))

    draw()
    return bodies


def test_the_generated_requests_are_the_same_on_every_run(fuzzed: Fuzzed) -> None:
    """Derandomized: two runs draw the same requests, so a failure found in CI reproduces locally."""
    operation = next(r.ok() for r in fuzzed.schema.get_all_operations() if r.ok().path == "/api/llm/generate")
    strategy = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

    first, second = _draw(strategy, 5), _draw(strategy, 5)

    assert first == second and len(first) == 5 and len(set(first)) > 1
