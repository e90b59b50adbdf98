"""notify-client: the signed webhook sent when a job finishes, against a respx-mocked receiver."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from inngest.experimental import mocked

from agentic.domain.jobs import JobStatus
from agentic.providers.mock import MockLLMRepository
from agentic.store.jobs import JobStore
from agentic.webhooks import SIGNATURE_HEADER, WebhookNotifier, sign, verify
from tests.functions.conftest import WEBHOOK_SECRET, WEBHOOK_URL, AppHarness, Harness, create_generate_job
from tests.functions.executor import Op, RunStatus

WEBHOOK = {"webhook_url": WEBHOOK_URL, "webhook_secret": WEBHOOK_SECRET}


@pytest.fixture
def receiver(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post(WEBHOOK_URL)


def delivered(route: respx.Route) -> list[tuple[dict[str, Any], bytes, str]]:
    return [(json.loads(call.request.content), call.request.content, call.request.headers[SIGNATURE_HEADER])
            for call in route.calls]


def test_finished_job_is_posted_signed(make_app: Callable[..., AppHarness], store: JobStore,
                                       receiver: respx.Route) -> None:
    receiver.return_value = httpx.Response(204)
    harness = make_app(**WEBHOOK)
    job = create_generate_job(store, provider="mock")

    run = harness.generate(job).finish()

    assert run.calls[1].op_names == [(Op.STEP_RUN, "notify-client")]
    assert run.calls[1].ops[0]["data"] == {"delivered": True, "status_code": 204}
    assert run.output == {"job_id": job.id, "status": "completed"}
    [(summary, raw, signature)] = delivered(receiver)
    assert verify(WEBHOOK_SECRET, raw, signature)
    assert not verify("another-secret", raw, signature)
    assert not verify(WEBHOOK_SECRET, raw.replace(b"completed", b"failed"), signature)
    done = harness.job(job)
    assert summary["type"] == "job.finished" and summary["job_id"] == job.id
    assert summary["status"] == "completed" and summary["user_id"] == job.user_id
    assert summary["response"] == done.response and summary["error"] is None
    assert summary["usage"]["total_tokens"] == done.total_tokens
    assert receiver.calls[0].request.headers["content-type"] == "application/json"


def test_a_one_step_answer_is_completed_in_the_first_request_and_the_webhook_follows(
        make_app: Callable[..., AppHarness], store: JobStore, receiver: respx.Route) -> None:
    """The client waits for no queue hop after its answer: the run's first executor request starts the job,
    calls the provider and completes the job; only the webhook, which must not delay it, comes later."""
    receiver.return_value = httpx.Response(204)
    harness = make_app(**WEBHOOK)
    job = create_generate_job(store, provider="mock")  # answers at once
    run = harness.generate(job)

    first = run.advance()

    assert first.op_names == [(Op.STEP_RUN, "call-llm")]
    assert first.ops[0]["data"]["outcome"] == "completed"
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.response is not None and done.finished_at is not None
    assert receiver.call_count == 0  # not yet: the webhook is the next request's work

    second = run.advance()

    assert second.op_names == [(Op.STEP_RUN, "notify-client")] and receiver.call_count == 1
    run.finish()
    assert len(run.calls) == 3 and run.output == {"job_id": job.id, "status": "completed"}


def test_failing_receiver_retries_as_a_step_and_the_job_stays_completed(
        make_app: Callable[..., AppHarness], store: JobStore, receiver: respx.Route) -> None:
    receiver.return_value = httpx.Response(503)
    harness = make_app(**WEBHOOK)
    job = create_generate_job(store, provider="mock")

    run = harness.generate(job).finish()

    notify_ops = [call.op_names for call in run.calls[1:-1]]
    assert notify_ops == [[(Op.STEP_ERROR, "notify-client")]] * 3 + [[(Op.STEP_FAILED, "notify-client")]]
    assert run.calls[1].ops[0]["error"]["message"] == "webhook receiver answered 503"
    assert run.status is RunStatus.COMPLETED and run.calls[-1].status == 200
    assert run.output == {"job_id": job.id, "status": "completed"}
    assert receiver.call_count == 4
    done = harness.job(job)
    assert done.status is JobStatus.COMPLETED and done.error_code is None


def test_receiver_recovering_on_retry_gets_the_delivery(make_app: Callable[..., AppHarness], store: JobStore,
                                                        receiver: respx.Route) -> None:
    receiver.side_effect = [httpx.ConnectError("refused"), httpx.Response(200)]
    harness = make_app(**WEBHOOK)
    job = create_generate_job(store, provider="mock")

    run = harness.generate(job).finish()

    assert [call.op_names for call in run.calls[1:3]] == [[(Op.STEP_ERROR, "notify-client")],
                                                          [(Op.STEP_RUN, "notify-client")]]
    assert run.calls[1].ops[0]["error"]["message"] == "webhook delivery failed: ConnectError"
    assert receiver.call_count == 2
    for summary, raw, signature in delivered(receiver)[1:]:
        assert verify(WEBHOOK_SECRET, raw, signature) and summary["status"] == "completed"


def test_failed_job_is_posted_by_the_failure_handler(make_app: Callable[..., AppHarness], store: JobStore,
                                                     receiver: respx.Route) -> None:
    receiver.return_value = httpx.Response(200)
    harness = make_app(**WEBHOOK)
    job = create_generate_job(store, "[mock:fail]", provider="mock")
    run = harness.generate(job).finish()
    assert run.status is RunStatus.FAILED and receiver.call_count == 0

    handler = harness.executor.deliver_failure(run)

    assert [call.op_names for call in handler.calls[:2]] == [[(Op.STEP_RUN, "mark-failed")],
                                                             [(Op.STEP_RUN, "notify-client")]]
    [(summary, raw, signature)] = delivered(receiver)
    assert verify(WEBHOOK_SECRET, raw, signature)
    assert summary["status"] == "failed"
    assert summary["error"] == {"code": "bad_request", "message": "the mock provider was asked to fail"}


def test_no_webhook_without_webhook_url(make_app: Callable[..., AppHarness], store: JobStore,
                                        respx_mock: respx.MockRouter) -> None:
    harness = make_app()
    job = create_generate_job(store, provider="mock")

    run = harness.generate(job).finish()

    assert all(name != "notify-client" for call in run.calls for _, name in call.op_names)
    assert len(respx_mock.calls) == 0


def test_webhook_under_mocked(make_harness: Callable[..., Harness], store: JobStore,
                             receiver: respx.Route) -> None:
    receiver.return_value = httpx.Response(202)
    harness = make_harness(MockLLMRepository(), notifier=WebhookNotifier(WEBHOOK_URL, WEBHOOK_SECRET))
    job = create_generate_job(store, provider="mock")

    result = harness.run_job("llm-generate", job)

    assert result.status is mocked.Status.COMPLETED
    [(summary, raw, signature)] = delivered(receiver)
    assert verify(WEBHOOK_SECRET, raw, signature) and summary["job_id"] == job.id
    assert harness.runner.metrics.registry.get_sample_value(
        "agentic_webhook_deliveries_total", {"outcome": "delivered"}) == 1


@pytest.mark.parametrize("header", ["", "sha256=", "sha256=zz", "sha256=é", "\udcff"])
def test_verify_refuses_bad_headers_without_raising(header: str) -> None:
    body = b'{"job_id":"job_1"}'

    assert verify(WEBHOOK_SECRET, body, sign(WEBHOOK_SECRET, body))
    assert verify(WEBHOOK_SECRET, body, header) is False
