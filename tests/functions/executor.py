"""A fake Inngest executor: drives the functions served at /api/inngest the way Inngest Cloud does.

It speaks the SDK's HTTP protocol (reference §8): each request POSTs the event, the memoised step state and
``ctx``, signed with the signing key; a 206 answer lists step ops to memoise (``StepRun``, ``StepFailed``,
``Sleep``), to target next (``StepPlanned``) or to retry (``StepError``); 200 ends the run with its output;
500 is a function-level error, retried unless it says ``x-inngest-no-retry`` or attempts are exhausted.
``AIGateway`` ops (``step.ai.infer``) are performed as the Inngest server does (``handleGeneratorAIGateway``):
the op's body is POSTed with httpx (so respx routes, or a WSGI transport to the app, answer it) and the
provider's JSON memoised as ``{"data": …}``; a failure is retried while attempts remain, then memoised as the
server's ``AIGatewayError``.

Use it step by step (``Run.advance``) to inspect the database between steps, or to the end (``Run.finish``).
A failed run can be handed to the function's ``-failure`` handler (``Run.failure_event``), as Inngest does.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import httpx
import jcs
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

APP_ID = "agentic"
SERVE_PATH = "/api/inngest"
FAILED_EVENT = "inngest/function.failed"
_KEY_PREFIX = re.compile(r"^signkey-\w+-")


class Op(StrEnum):
    STEP_RUN = "StepRun"
    STEP_PLANNED = "StepPlanned"
    STEP_ERROR = "StepError"
    STEP_FAILED = "StepFailed"
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    INVOKE = "InvokeFunction"
    AI_GATEWAY = "AIGateway"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def step_hash(step_id: str, index: int = 0) -> str:
    """The id the SDK gives a step: sha1 of its id, ``id:n`` for the n-th repeat within a run."""
    return hashlib.sha1((step_id if index == 0 else f"{step_id}:{index}").encode()).hexdigest()


def sign_body(body: bytes, signing_key: str, unix_seconds: int | None = None) -> str:
    """``X-Inngest-Signature`` as Inngest computes it: HMAC-SHA256 under the key (prefix removed, not hex
    decoded) of the JCS-canonical body followed by the unix time in seconds."""
    ts = int(time.time()) if unix_seconds is None else unix_seconds
    canonical = jcs.canonicalize(json.loads(body)) if body else b""
    mac = hmac.new(_KEY_PREFIX.sub("", signing_key).encode(), canonical + str(ts).encode(), hashlib.sha256)
    return f"t={ts}&s={mac.hexdigest()}"


def response_signature_valid(response: TestResponse, signing_key: str) -> bool:
    """The SDK signs its answer to a signed request: HMAC over the raw response bytes plus the time."""
    header = response.headers.get("X-Inngest-Signature", "")
    parts = dict(part.split("=", 1) for part in header.split("&") if "=" in part)
    if "t" not in parts or "s" not in parts:
        return False
    mac = hmac.new(_KEY_PREFIX.sub("", signing_key).encode(), response.get_data() + parts["t"].encode(),
                   hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["s"])


def make_event(name: str, data: Mapping[str, Any], *, event_id: str = "") -> dict[str, Any]:
    return {"name": name, "data": dict(data), "id": event_id or secrets.token_hex(8),
            "ts": int(time.time() * 1000)}


@dataclass
class Call:
    """One request of a run and what came back."""

    attempt: int
    target: str | None
    status: int
    ops: list[dict[str, Any]]
    body: Any
    headers: dict[str, str]
    response: TestResponse = field(repr=False)

    @property
    def op_names(self) -> list[tuple[str, str]]:
        return [(op["op"], op.get("displayName") or op.get("name") or "") for op in self.ops]


@dataclass
class GatewayCall:
    """One provider request the fake server made for an ``AIGateway`` op, and its outcome."""

    attempt: int
    url: str
    headers: dict[str, str]
    body: Any
    status: int | None  # None: no answer (a network error)
    response: Any


@dataclass
class Run:
    """One function run, as the executor keeps it: memoised steps, the stack, the attempt counter."""

    executor: FakeExecutor
    fn_id: str
    event: dict[str, Any]
    max_attempts: int
    run_id: str = field(default_factory=lambda: "run_" + secrets.token_hex(8))
    stubs: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    attempt: int = 0
    target: str | None = None
    disable_immediate_execution: bool = False
    status: RunStatus = RunStatus.RUNNING
    output: Any = None
    error: dict[str, Any] | None = None
    calls: list[Call] = field(default_factory=list)
    gateway_calls: list[GatewayCall] = field(default_factory=list)

    # ---- driving --------------------------------------------------------------------------------

    def advance(self) -> Call:
        """Send the next request and apply its answer."""
        if self.status is not RunStatus.RUNNING:
            raise RuntimeError(f"run {self.run_id} is already {self.status.value}")
        attempt, target = self.attempt, self.target
        response = self.executor.post(self.fn_id, self.request_body(), step_id=target)
        body = response.get_json(silent=True)
        ops = body if response.status_code == 206 and isinstance(body, list) else []
        call = Call(attempt=attempt, target=target, status=response.status_code, ops=ops, body=body,
                    headers=dict(response.headers), response=response)
        self.calls.append(call)
        if response.status_code == 206:
            self._apply_ops(ops)
        elif response.status_code == 200:
            self.status, self.output = RunStatus.COMPLETED, body
        elif response.status_code == 500:
            self._function_error(response, body)
        else:
            raise AssertionError(f"unexpected {response.status_code} from {self.fn_id}: {response.get_data()!r}")
        return call

    def finish(self, max_requests: int = 50) -> Run:
        """Advance until the run completes or fails."""
        for _ in range(max_requests):
            if self.status is not RunStatus.RUNNING:
                return self
            self.advance()
        raise AssertionError(f"run {self.run_id} did not end within {max_requests} requests")

    def request_body(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "events": [self.event],
            "steps": self.steps,
            "ctx": {"run_id": self.run_id, "attempt": self.attempt,
                    "disable_immediate_execution": self.disable_immediate_execution,
                    "stack": {"stack": list(self.stack)}, "max_attempts": self.max_attempts},
            "use_api": False,
        }

    def failure_event(self) -> dict[str, Any]:
        """The ``inngest/function.failed`` event Inngest emits once this run failed for good."""
        if self.status is not RunStatus.FAILED or self.error is None:
            raise RuntimeError("the run has not failed")
        error = {"name": self.error.get("name", "Error"), "message": self.error.get("message", ""),
                 "stack": self.error.get("stack", "")}
        return make_event(FAILED_EVENT, {"error": {**error, "error": error}, "event": self.event,
                                         "function_id": f"{APP_ID}-{self.fn_id}", "run_id": self.run_id})

    # ---- what the executor does with an answer --------------------------------------------------

    def _apply_ops(self, ops: list[dict[str, Any]]) -> None:
        for op in ops:
            kind, step = op["op"], op["id"]
            if kind == Op.STEP_RUN:
                self._memoise(step, {"data": op.get("data")})
            elif kind == Op.STEP_PLANNED:
                self.target, self.disable_immediate_execution = step, True
            elif kind == Op.STEP_ERROR:
                self.attempt += 1
                self.target = step
                if self.attempt >= self.max_attempts:
                    raise AssertionError("the SDK sent StepError on the last attempt (expected StepFailed)")
            elif kind == Op.STEP_FAILED:
                self._memoise(step, {"error": op["error"]})
            elif kind == Op.SLEEP:
                self._memoise(step, None)
            elif kind in (Op.WAIT_FOR_EVENT, Op.INVOKE):
                self._memoise(step, self.stubs[op.get("displayName") or op["name"]])
            elif kind == Op.AI_GATEWAY:
                self._ai_gateway(step, op.get("opts") or {})
            else:
                raise AssertionError(f"unexpected op {kind!r}")

    def _ai_gateway(self, step: str, opts: Mapping[str, Any]) -> None:
        """POST the op's body as the server does; memoise the JSON, or retry / memoise the failure."""
        headers = {"content-type": "application/json"}
        if opts.get("format") == "anthropic":
            headers["x-api-key"] = str(opts.get("auth_key", ""))
        else:
            headers["Authorization"] = f"Bearer {opts.get('auth_key', '')}"
        headers.update(opts.get("headers") or {})
        url, body = str(opts["url"]), opts.get("body")
        try:
            answer = self.executor.gateway().post(url, content=json.dumps(body).encode(), headers=headers)
        except httpx.RequestError as exc:
            failure: tuple[str, str] | None = (f"Error making AI request: {exc}", "")
            status, raw = None, b""
        else:
            status, raw = answer.status_code, answer.content
            failure = None if status <= 299 else (
                f"Error making AI request: unsuccessful status code: {status}", raw.decode(errors="replace"))
        self.gateway_calls.append(GatewayCall(self.attempt, url, headers, body, status, raw))
        if failure is None:
            self._memoise(step, {"data": json.loads(raw)})
            return
        if self.attempt + 1 < self.max_attempts:
            self.attempt += 1  # the server retries the call like a failed step (same request, next attempt)
            return
        message, text = failure
        text = text or '{"error":"Error making AI request"}'
        error: dict[str, Any] = {"name": "AIGatewayError", "message": message, "stack": text}
        with contextlib.suppress(ValueError):
            error["data"] = json.loads(text)
        self._memoise(step, {"error": error})

    def _memoise(self, step: str, memo: Any) -> None:
        self.steps[step] = memo
        self.stack.append(step)
        self.attempt, self.target, self.disable_immediate_execution = 0, None, False

    def _function_error(self, response: TestResponse, body: Any) -> None:
        no_retry = response.headers.get("x-inngest-no-retry") == "true"
        if no_retry or self.attempt + 1 >= self.max_attempts:
            self.status = RunStatus.FAILED
            self.error = body if isinstance(body, dict) else {"message": str(body)}
            return
        self.attempt += 1  # retried as a whole; memoised steps are not run again


class FakeExecutor:
    """Sends signed executor requests to the app's Inngest endpoint."""

    def __init__(self, client: FlaskClient, signing_key: str | None, *, path: str = SERVE_PATH,
                 gateway_transport: httpx.BaseTransport | None = None) -> None:
        """``gateway_transport``: where ``AIGateway`` requests go (default: the network, i.e. respx routes;
        ``httpx.WSGITransport(app=…)`` sends them to a Flask app in-process, e.g. the mock's own route)."""
        self.client = client
        self.signing_key = signing_key
        self.path = path
        self._gateway_transport = gateway_transport
        self._gateway: httpx.Client | None = None

    def gateway(self) -> httpx.Client:
        """The HTTP client the fake server makes provider calls with."""
        if self._gateway is None:
            self._gateway = httpx.Client(transport=self._gateway_transport, timeout=30)
        return self._gateway

    def post(self, fn_id: str, payload: Mapping[str, Any], *, step_id: str | None = None,
             signing_key: str | None = None, sign: bool = True) -> TestResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        query = urlencode({"fnId": f"{APP_ID}-{fn_id}", "stepId": step_id or "step"})
        return self.client.post(f"{self.path}?{query}", data=body,
                                headers=self.headers(body, signing_key=signing_key, sign=sign))

    def headers(self, body: bytes, *, signing_key: str | None = None, sign: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Inngest-Server-Kind": "cloud",
                   "x-request-id": secrets.token_hex(4)}
        key = signing_key or self.signing_key
        if sign and key is not None:
            headers["X-Inngest-Signature"] = sign_body(body, key)
        return headers

    def start(self, fn_id: str, event: dict[str, Any], *, retries: int, **kwargs: Any) -> Run:
        """A new run of ``fn_id`` (without the app prefix) for ``event``; ``retries`` as configured."""
        return Run(self, fn_id, event, max_attempts=retries + 1, **kwargs)

    def drive(self, fn_id: str, event: dict[str, Any], *, retries: int, **kwargs: Any) -> Run:
        return self.start(fn_id, event, retries=retries, **kwargs).finish()

    def deliver_failure(self, run: Run) -> Run:
        """Run the failed function's ``-failure`` handler (registered with retries=0)."""
        return self.drive(f"{run.fn_id}-failure", run.failure_event(), retries=0)
