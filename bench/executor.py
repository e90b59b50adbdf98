"""A fake Inngest executor: drives a served function over the executor's HTTP protocol, as Inngest does.

It signs each request with the signing key (production mode), POSTs it to the Flask app's Inngest endpoint
through Flask's test client (the same WSGI call a server makes, without a socket's noise), memoises each
``StepRun`` answer, and repeats until the function returns. Each request is timed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import jcs
from flask.testing import FlaskClient

INNGEST_PATH = "/api/inngest"
MAX_REQUESTS = 20  # a run of a handful of steps never needs more


def signature(body: bytes, signing_key: str, unix_seconds: int | None = None) -> str:
    """The ``X-Inngest-Signature`` header for ``body`` (JCS-canonical JSON), as Inngest computes it."""
    stamp = str(unix_seconds if unix_seconds is not None else int(time.time()))
    key = re.sub(r"^signkey-\w+-", "", signing_key).encode()
    mac = hmac.new(key, body + stamp.encode(), hashlib.sha256).hexdigest()
    return f"t={stamp}&s={mac}"


@dataclass
class StepTiming:
    op: str  # the op executed ("StepRun"), or "return" for the request that finished the function
    name: str  # the step's id ("mark-processing"), or "" for the final request
    seconds: float


@dataclass
class Run:
    status: int
    output: Any
    requests: list[StepTiming] = field(default_factory=list)


class Executor:
    def __init__(self, client: FlaskClient, app_id: str, signing_key: str | None) -> None:
        self.client = client
        self.app_id = app_id
        self.signing_key = signing_key

    def run(self, fn_id: str, event: dict[str, Any], run_id: str) -> Run:
        """Drive one run of ``fn_id`` from ``event`` to its end; raises if it does not end normally."""
        steps: dict[str, Any] = {}
        stack: list[str] = []
        timings: list[StepTiming] = []
        for _ in range(MAX_REQUESTS):
            status, answer, seconds = self.post(fn_id, event, steps, stack, run_id)
            if status == 200:
                timings.append(StepTiming("return", "", seconds))
                return Run(status, answer, timings)
            if status != 206:
                raise RuntimeError(f"{fn_id} answered {status}: {answer!r}")
            for op in answer:
                if op["op"] != "StepRun":
                    raise RuntimeError(f"{fn_id}: unexpected op {op['op']} ({op!r})")
                steps[op["id"]] = {"data": op.get("data")}
                stack.append(op["id"])
                timings.append(StepTiming(op["op"], op.get("displayName") or op.get("name") or "", seconds))
        raise RuntimeError(f"{fn_id} did not finish within {MAX_REQUESTS} requests")

    def post(self, fn_id: str, event: dict[str, Any], steps: dict[str, Any], stack: list[str],
             run_id: str) -> tuple[int, Any, float]:
        payload = {
            "event": event, "events": [event], "steps": steps,
            "ctx": {"run_id": run_id, "attempt": 0, "disable_immediate_execution": False,
                    "stack": {"stack": list(stack)}, "max_attempts": 4},
            "use_api": False,
        }
        body = jcs.canonicalize(payload)
        headers = {"Content-Type": "application/json",
                   "X-Inngest-Server-Kind": "cloud" if self.signing_key else "dev"}
        if self.signing_key:
            headers["X-Inngest-Signature"] = signature(body, self.signing_key)
        url = f"{INNGEST_PATH}?fnId={self.app_id}-{fn_id}&stepId=step"
        began = time.perf_counter()
        response = self.client.post(url, data=body, headers=headers)
        seconds = time.perf_counter() - began
        return response.status_code, json.loads(response.data or b"null"), seconds
