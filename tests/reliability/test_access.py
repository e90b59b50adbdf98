"""Access control, enumerated from the app's own url_map (so a route added later is covered without editing a
list): every route under /api wants an API key except the public ones; another user's job is a 404 on
every job route, exactly like a missing job; /api/inngest in production accepts only bodies signed for
exactly that body, and each function only acts on the event it is triggered by.

Covered elsewhere: unsigned, wrongly signed, tampered and malformed-signature calls to /api/inngest
(tests/functions/test_functions_http.py::test_requests_not_signed_with_our_key_are_rejected); the header
shapes of a bad key (tests/web/test_api_auth.py::test_a_malformed_or_unknown_key_is_401_invalid_token);
metrics and its own token (tests/web/test_api_operations.py).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.routing import Rule

from agentic.domain.jobs import JobStatus
from agentic.inngest.events import EVENT_CANCEL, EVENT_GENERATE, EVENT_PREVIEW
from agentic.store.tables import JobRow, utcnow
from agentic.web.app import container_of
from tests.functions.conftest import SIGNING_KEY, AppHarness
from tests.functions.executor import RunStatus, make_event, sign_body
from tests.reliability.support import EventRecorder, body_of

MakeApp = Callable[..., AppHarness]

#: Endpoints under /api that take no API key, and what guards them instead.
PUBLIC = {"api.health": None, "api.openapi": None, "api.metrics": "METRICS_TOKEN", "inngest_api": "signature"}
SLOW = {"model": "mock-slow-1", "messages": [{"role": "user", "content": "mine"}]}


@dataclass
class Served:
    harness: AppHarness
    client: FlaskClient
    recorder: EventRecorder
    alice: str
    bob: str
    revoked: str

    @property
    def app(self) -> Flask:
        return self.harness.app


@pytest.fixture
def served(make_app: MakeApp, recorder: EventRecorder) -> Iterator[Served]:
    # Inngest's API (sync registrations) is the loopback recorder too: nothing may leave this machine.
    harness = make_app(use_queue=True, inngest_event_key="evt-key-access", inngest_event_api_base_url=recorder.url,
                       inngest_base_url=recorder.url, metrics_token="metrics-token-access")
    keys = container_of(harness.app).keys
    revoked = keys.create("alice")
    assert keys.revoke(revoked.key.id)
    yield Served(harness, harness.app.test_client(), recorder, keys.create("alice").secret, keys.create("bob").secret,
                 revoked.secret)


def api_routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) under /api, OPTIONS aside (CORS preflights carry no credentials by design)."""
    return [(rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api")
            for method in sorted((rule.methods or set()) - {"OPTIONS"})]


def path_of(app: Flask, rule: Rule, job_id: str) -> str:
    values = dict.fromkeys(rule.arguments, job_id)
    return app.url_map.bind("localhost").build(rule.endpoint, values, method=sorted(rule.methods or {"GET"})[0])


def _rows(served: Served) -> int:
    return len(served.harness.store.list_for_owner("alice", limit=100).items) + len(
        served.harness.store.list_for_owner("bob", limit=100).items)


@pytest.mark.parametrize("credential", ["none", "malformed", "unknown", "revoked", "metrics token"])
def test_every_route_under_api_needs_a_valid_key(served: Served, credential: str) -> None:
    header = {"none": None, "malformed": "Bearer", "unknown": "Bearer agk_" + "u" * 43,
              "revoked": f"Bearer {served.revoked}", "metrics token": "Bearer metrics-token-access"}[credential]
    routes = api_routes(served.app)
    guarded = [(rule, method) for rule, method in routes if rule.endpoint not in PUBLIC]
    assert {rule.endpoint for rule, _ in routes} >= set(PUBLIC), "a public route was renamed or removed"
    assert len({rule.endpoint for rule, _ in guarded}) >= 6

    for rule, method in guarded:
        response = served.client.open(path_of(served.app, rule, "job_x"), method=method, json=SLOW,
                                      headers={"Authorization": header} if header else {})
        assert response.status_code == 401, (method, rule.rule, response.status_code)
        if method != "HEAD":
            assert response.mimetype == "application/problem+json"
            assert body_of(response)["code"] == ("authentication_required" if header is None else "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="agentic"')
    assert _rows(served) == 0 and served.recorder.snapshot() == []


def test_the_public_routes_are_exactly_health_openapi_metrics_and_inngest(served: Served) -> None:
    open_doors = {}
    for rule, method in api_routes(served.app):
        if method == "HEAD" or (rule.endpoint, method) == ("inngest_api", "PUT"):  # the sync: its own test below
            continue
        response = served.client.open(path_of(served.app, rule, "job_x"), method=method, json=SLOW)
        open_doors[rule.endpoint] = response.status_code
    assert {endpoint for endpoint, status in open_doors.items() if status != 401} == {"api.health", "api.openapi"}
    metrics = served.client.get("/api/metrics", headers={"Authorization": f"Bearer {served.alice}"})
    assert metrics.status_code == 401  # an API key is not the metrics token
    with_token = served.client.get("/api/metrics", headers={"Authorization": "Bearer metrics-token-access"})
    assert with_token.status_code == 200
    assert served.client.get("/api/inngest").status_code == 401  # production: Inngest's signature only


def test_another_users_job_is_a_404_on_every_job_route_exactly_like_a_missing_one(served: Served) -> None:
    created = served.client.post("/api/llm/generate", json=SLOW, headers={"Authorization": f"Bearer {served.alice}"})
    assert created.status_code == 202
    job_id = body_of(created)["job_id"]
    before = served.harness.job(job_id)
    job_routes = [(rule, method) for rule, method in api_routes(served.app)
                  if rule.arguments and method != "HEAD" and rule.endpoint not in PUBLIC]
    assert {rule.endpoint for rule, _ in job_routes} >= {"api.get_job", "api.cancel_job", "api.job_stream"}

    for rule, method in job_routes:
        theirs = served.client.open(path_of(served.app, rule, job_id), method=method,
                                    headers={"Authorization": f"Bearer {served.bob}"})
        missing = served.client.open(path_of(served.app, rule, "job_" + "0" * 22), method=method,
                                     headers={"Authorization": f"Bearer {served.bob}"})
        assert theirs.status_code == missing.status_code == 404, (method, rule.rule)
        assert theirs.mimetype == "application/problem+json"
        assert body_of(theirs) == body_of(missing) and body_of(theirs)["code"] == "job_not_found"
        assert job_id not in theirs.get_data(as_text=True)

    listed = served.client.get("/api/jobs", headers={"Authorization": f"Bearer {served.bob}"})
    assert listed.status_code == 200 and body_of(listed)["items"] == []
    assert served.harness.job(job_id) == before  # nothing changed: no cancel recorded
    assert [e.name for e in served.recorder.snapshot()] == [EVENT_GENERATE]  # and no cancel event sent


# ---- /api/inngest: signatures and replays ----------------------------------------------------------------


def _signed_call(served: Served, job_id: str, fn_id: str = "llm-generate") -> tuple[bytes, dict[str, str]]:
    run = served.harness.executor.start(fn_id, make_event(EVENT_GENERATE, {"job_id": job_id, "user_id": "alice"}),
                                        retries=3)
    body = json.dumps(run.request_body(), separators=(",", ":")).encode()
    return body, served.harness.executor.headers(body)


def _queued_job(served: Served) -> str:
    created = served.client.post("/api/llm/generate", json=SLOW, headers={"Authorization": f"Bearer {served.alice}"})
    assert created.status_code == 202
    return str(body_of(created)["job_id"])


def test_a_captured_body_resent_with_the_signature_of_another_body_is_401(served: Served) -> None:
    mine, other = _queued_job(served), _queued_job(served)
    captured, _ = _signed_call(served, mine)
    _, other_headers = _signed_call(served, other)  # a valid signature, for a different body

    for body, headers in ((captured, other_headers),
                          (captured.replace(mine.encode(), other.encode()), _signed_call(served, mine)[1])):
        response = served.client.post("/api/inngest?fnId=agentic-llm-generate&stepId=step", data=body,
                                      headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {"message": "Unauthorized"}
    assert served.harness.job(mine).status is JobStatus.PENDING
    assert served.harness.job(other).status is JobStatus.PENDING


@pytest.mark.parametrize("target", ["llm-cancel", "preview-generate"])
def test_a_signed_body_replayed_to_another_function_does_not_act_on_the_job(served: Served, target: str) -> None:
    """The signature covers the body only, not the URL: a body Inngest signed for llm-generate, sent to
    fnId=agentic-<another function>, is a valid call. A function must refuse an event it is not triggered by,
    rather than act on the job named in it (llm-cancel cancels it; preview-generate fails it, its stored
    request not being a preview)."""
    job_id = _queued_job(served)
    body, headers = _signed_call(served, job_id)

    response = served.client.post(f"/api/inngest?fnId=agentic-{target}&stepId=step", data=body, headers=headers)

    assert response.status_code in (200, 206, 500), response.get_data(as_text=True)
    job = served.harness.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0), (
        f"a generate event replayed to {target} left the job {job.status.value}: "
        f"{response.get_data(as_text=True)[:300]}")


def test_an_unsigned_sync_cannot_register_the_app_at_another_url(served: Served) -> None:
    """An unsigned PUT /api/inngest makes the SDK register the app with Inngest (out-of-band sync), signed
    with our signing key, at the URL the request came in on: a request with a forged Host moves our
    functions to another host. In production only Inngest's signed syncs may do that."""
    response = served.client.put("/api/inngest", base_url="https://attacker.test")

    registrations = [json.loads(body) for path, body in served.recorder.received if path.startswith("/fn/register")]
    assert [r.get("url") for r in registrations] == [], "an anonymous PUT re-registered the app"
    assert response.status_code == 401


def test_a_signature_hours_old_is_refused(served: Served) -> None:
    job_id = _queued_job(served)
    body, _ = _signed_call(served, job_id)
    stale = {"Content-Type": "application/json", "X-Inngest-Server-Kind": "cloud",
             "X-Inngest-Signature": sign_body(body, SIGNING_KEY, unix_seconds=1_700_000_000)}

    response = served.client.post("/api/inngest?fnId=agentic-llm-generate&stepId=step", data=body, headers=stale)

    assert response.status_code == 401
    assert served.harness.job(job_id).status is JobStatus.PENDING


def test_a_cancel_event_still_cancels_through_the_cancel_function(served: Served) -> None:
    """The legitimate path the fix for the replay above must keep working."""
    job_id = _queued_job(served)

    run = served.harness.executor.drive("llm-cancel", make_event(EVENT_CANCEL, {"job_id": job_id, "user_id": "alice"}),
                                        retries=3)

    assert run.output == {"job_id": job_id, "cancelled": True, "status": "cancelled"}
    assert served.harness.job(job_id).status is JobStatus.CANCELLED


# ---- /api/inngest: the signature header read as the SDK reads it, before the body (issue 19, items 1-2) ----


def test_a_timestamp_appended_to_an_old_signature_does_not_make_it_fresh(served: Served) -> None:
    """The SDK verifies the HMAC with the *first* ``t=``: a call captured an hour ago, resent with
    ``&t=<now>`` appended, must not pass the age check on the appended one."""
    job_id = _queued_job(served)
    body, _ = _signed_call(served, job_id)
    captured = sign_body(body, SIGNING_KEY, unix_seconds=int(time.time()) - 3600)
    for replayed in (f"{captured}&t={int(time.time())}", f"t={int(time.time())};{captured}"):
        headers = {"Content-Type": "application/json", "X-Inngest-Server-Kind": "cloud",
                   "X-Inngest-Signature": replayed}

        response = served.client.post("/api/inngest?fnId=agentic-llm-generate&stepId=step", data=body,
                                      headers=headers)

        assert response.status_code == 401, replayed
    assert served.harness.job(job_id).status is JobStatus.PENDING


def _signed_put(client: FlaskClient, *, host: str) -> Any:
    return client.put("/api/inngest", base_url=f"https://{host}",
                      headers={"X-Inngest-Signature": sign_body(b"", SIGNING_KEY),
                               "X-Inngest-Server-Kind": "cloud"})


def test_a_signed_sync_registers_the_pinned_origin_never_the_requests_host(
        make_app: MakeApp, recorder: EventRecorder) -> None:
    """A signed out-of-band PUT (replayed within the signature's 5 minutes, with a forged Host) makes the SDK
    register the app at the URL the request came in on. In production the origin is pinned."""
    harness = make_app(inngest_base_url=recorder.url, inngest_serve_origin="https://agentic.example")

    response = _signed_put(harness.app.test_client(), host="attacker.example")

    registrations = [json.loads(body) for path, body in recorder.received if path.startswith("/fn/register")]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["url"] for r in registrations] == ["https://agentic.example/api/inngest"]
    assert all(fn["steps"]["step"]["runtime"]["url"].startswith("https://agentic.example/api/inngest?")
               for r in registrations for fn in r["functions"])


def test_a_signed_out_of_band_sync_without_a_pinned_origin_is_refused(
        make_app: MakeApp, recorder: EventRecorder) -> None:
    harness = make_app(inngest_base_url=recorder.url)

    response = _signed_put(harness.app.test_client(), host="attacker.example")

    assert response.status_code == 403
    assert "INNGEST_SERVE_ORIGIN" in response.get_data(as_text=True)
    assert [path for path, _ in recorder.received if path.startswith("/fn/register")] == []


class _UnreadableBody(io.BytesIO):
    """A 32 MiB request body that counts every read (werkzeug's test client only seeks it)."""

    reads = 0

    def __init__(self) -> None:
        super().__init__(b" " * (32 * 1024 * 1024))

    def read(self, size: int | None = -1, /) -> bytes:
        type(self).reads += 1
        return super().read(size)

    def readinto(self, buffer: Any, /) -> int:
        type(self).reads += 1
        return super().readinto(buffer)


@pytest.mark.parametrize("signature", [None, "t=1&s=zz", "s=" + "0" * 64, "nonsense"])
def test_an_unsigned_or_malformed_call_is_refused_before_its_body_is_read(
        served: Served, signature: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Inngest-Signature"] = signature
    _UnreadableBody.reads = 0

    response = served.client.post("/api/inngest?fnId=agentic-llm-generate&stepId=step",
                                  input_stream=_UnreadableBody(), headers=headers)

    assert response.status_code == 401
    assert _UnreadableBody.reads == 0


def test_inngest_bodies_are_bounded_by_their_own_setting(make_app: MakeApp) -> None:
    harness = make_app(max_inngest_request_bytes=65_536)
    body = json.dumps({"event": {"data": {"pad": "x" * 70_000}}}).encode()
    headers = {"Content-Type": "application/json", "X-Inngest-Server-Kind": "cloud",
               "X-Inngest-Signature": sign_body(body, SIGNING_KEY)}

    response = harness.app.test_client().post("/api/inngest?fnId=agentic-llm-generate&stepId=step", data=body,
                                              headers=headers)

    assert response.status_code == 413


# ---- the cron and the failure handlers check their event too (issue 19) ----------------------------------


def test_a_signed_request_event_replayed_to_the_cleanup_cron_does_not_run_it(served: Served) -> None:
    job_id = _queued_job(served)
    jobs = container_of(served.app).jobs
    jobs.start(job_id)
    with jobs.engine.begin() as conn:  # stuck for a day: the cleanup would fail it
        conn.execute(update(JobRow.__table__).where(JobRow.__table__.c.id == job_id)  # type: ignore[attr-defined]
                     .values(updated_at=utcnow() - timedelta(days=1)))

    run = served.harness.executor.start(
        "llm-cleanup", make_event(EVENT_GENERATE, {"job_id": job_id, "user_id": "alice"}), retries=3).finish()

    assert run.status is not RunStatus.COMPLETED
    assert served.harness.job(job_id).status is JobStatus.PROCESSING


def test_a_failure_event_of_another_function_does_not_fail_a_job(served: Served) -> None:
    """llm-generate's failure handler acts only on function.failed events about llm/generate.request runs."""
    job_id = _queued_job(served)
    container_of(served.app).jobs.start(job_id)
    failed = make_event("inngest/function.failed", {
        "error": {"name": "Error", "message": "boom"}, "function_id": "agentic-preview-generate",
        "event": make_event(EVENT_PREVIEW, {"job_id": job_id, "user_id": "alice"}), "run_id": "run_x"})

    run = served.harness.executor.start("llm-generate-failure", failed, retries=0).finish()

    assert run.status is not RunStatus.COMPLETED
    assert served.harness.job(job_id).status is JobStatus.PROCESSING
