"""The OpenAPI 3.2 document, generated from the same pydantic models that validate and shape the bodies.

Schemas come from ``models_json_schema`` with refs pointing into ``components/schemas``, so the document
cannot drift from what the routes accept and answer. The paths are written out here, one per route. 3.2
because the job event stream is a sequential media type: ``itemSchema`` describes each of its events.
Links lead from a created job, and from the list, to the job's own routes (stateful tools follow them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

import agentic
from agentic.domain.jobs import JobStatus
from agentic.domain.llm import PreviewRequest, PreviewResult
from agentic.service.kinds import KINDS
from agentic.store.jobs import MAX_PAGE_SIZE
from agentic.web.params import CURSOR_PATTERN, JOB_ID_PATTERN
from agentic.web.problems import PROBLEM_MIME
from agentic.web.schemas import (
    DeltaEvent,
    GenerateCompleted,
    GenerateRequest,
    Health,
    JobList,
    JobView,
    Problem,
    QueuedJobAnswer,
    ResetEvent,
    StatusEvent,
)
from agentic.web.sse import EVENT_DATA, EVENT_ID_PATTERN

REF_TEMPLATE = "#/components/schemas/{model}"

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (GenerateRequest, "validation"),
    (PreviewRequest, "validation"),
    (GenerateCompleted, "serialization"),
    (QueuedJobAnswer, "serialization"),
    (PreviewResult, "serialization"),
    (JobView, "serialization"),
    (JobList, "serialization"),
    (Health, "serialization"),
    (Problem, "serialization"),
    (StatusEvent, "serialization"),
    (DeltaEvent, "serialization"),
    (ResetEvent, "serialization"),
]

_ERROR_TEXT = {
    400: "Malformed JSON (invalid_json) or a bad Idempotency-Key (invalid_idempotency_key)",
    401: "Missing, malformed, unknown or revoked API key",
    404: "No such job for this key's user (another user's job is not found too)",
    409: "Conflict",
    413: "The body exceeds MAX_REQUEST_BYTES (request_too_large), refused before parsing",
    415: "The body is not application/json (unsupported_media_type)",
    422: "Validation failed (validation_error); `field` and `errors` name the offending fields",
    429: "Rate limited",
    502: "The provider failed (upstream_error, network_error, authentication, ...); detail has its status",
    503: "Provider not configured (provider_not_configured), queue unreachable (queue_unavailable) "
         "or database unreachable (database_unavailable)",
    504: "The provider did not answer in time (timeout)",
}

DESCRIPTION = """\
Runs LLM generations: quick models answer at once, slow ones become durable jobs run by Inngest.

**Authentication**: `Authorization: Bearer <API key>` on every route except `/api/health` and this
document (`/api/openapi.json`), which are public, and `/api/metrics`, which takes the separate
`METRICS_TOKEN`. `/api/inngest` is the Inngest endpoint (signed by Inngest) and is not part of this API.

**Errors** are `application/problem+json` (RFC 9457) with a stable snake_case `code` and, where one input is
to blame, `field` (a dotted path such as `messages.0.content`). JSON types are strict: a boolean is not a
number and a number is not a string (422, never a silent coercion).

**Job events** (`/api/jobs/{job_id}/events`) are Server-Sent Events: `status`, `delta` ({"text"}), `reset`
and a final `done` carrying the JobView. Each event id is `<status>.<attempts>.<offset>`; reconnect with
`Last-Event-ID` to receive only what was not seen yet.

**Job tokens**: with `JOB_TOKEN_SECRET` set, a queued job's 202 and its owner's view carry `token`, a
short-lived signed token that reads that job and its events (`?token=` or bearer) and nothing else; those
two routes answer CORS requests from `CORS_ALLOWED_ORIGINS`.
"""


def _problem(status: int, text: str | None = None) -> dict[str, Any]:
    return {"description": text or _ERROR_TEXT[status],
            "content": {PROBLEM_MIME: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}}}


def _json(ref: dict[str, Any], text: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": text, "content": {"application/json": {"schema": ref}}}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(*statuses: int, **overrides: str) -> dict[str, Any]:
    return {str(status): _problem(status, overrides.get(f"s{status}")) for status in statuses}


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """The bodies above, and every job kind's request and result (agentic.service.kinds), each once."""
    models = list(_MODELS)
    for spec in KINDS:
        pairs: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
            (spec.request_model, "validation"), (spec.result_model, "serialization"))
        models.extend(pair for pair in pairs if pair not in models)
    return models


def _links(job_id: str, *operations: str) -> dict[str, Any]:
    """OpenAPI links from a response holding a job id (a runtime expression) to that job's operations."""
    return {operation: {"operationId": operation, "parameters": {"job_id": job_id},
                        "description": _LINK_TEXT[operation]} for operation in operations}


_LINK_TEXT = {"getJob": "the job", "streamJobEvents": "its Server-Sent Events", "cancelJob": "cancel it"}


def _event_schema(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event as a parser reads it: its fields, with ``data`` a JSON text of ``data``'s schema."""
    return {
        "title": f"{name} event", "type": "object", "required": ["event", "id", "data"],
        "properties": {
            "event": {"const": name},
            "id": {"type": "string", "pattern": EVENT_ID_PATTERN,
                   "description": "<status>.<attempts>.<offset>: send it back as Last-Event-ID to resume"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
            "retry": {"type": "integer", "minimum": 0, "description": "reconnection delay in milliseconds"},
        },
    }


def build_openapi() -> dict[str, Any]:
    refs, defs = models_json_schema(_models(), ref_template=REF_TEMPLATE)

    def ref(model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(refs[(model, mode)])

    job_id = {"name": "job_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
              "description": "the job id returned when it was queued (any other form is a 404)"}
    idempotency = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$"},
                   "description": "makes a retry of the same queued request return the same job; "
                                  "the same key with a different body is a 409 (idempotency_conflict)"}
    job_token = {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "a job read token (the `token` of the 202 or of the owner's job view) instead "
                                "of an API key; valid for this job only, until it expires"}
    token_security: list[dict[str, list[str]]] = [{"bearer": []}, {"jobToken": []}]
    location = {"Location": {"description": "the job's URL", "schema": {"type": "string"}}}
    retry_after = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    queued = {**_json(ref(QueuedJobAnswer), "Queued as a job; poll it or stream its events", location),
              "links": _links("$response.body#/job_id", "getJob", "streamJobEvents", "cancelJob")}
    events = {"oneOf": [_event_schema(name, ref(model)) for name, model in EVENT_DATA.items()]}

    paths: dict[str, Any] = {
        "/api/llm/generate": {"post": {
            "operationId": "generate",
            "summary": "Generate a response (directly for quick models, as a job for slow ones)",
            "parameters": [idempotency],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(
                GenerateRequest, "validation")}}},
            "responses": {
                "200": _json(ref(GenerateCompleted), "A quick model answered"),
                "202": queued,
                **_errors(400, 401, 409, 413, 415, 422, s409="Idempotency-Key reused with a different request "
                          "(idempotency_conflict)"),
                "429": {**_problem(429, "The provider rate-limited us (rate_limited)"), "headers": retry_after},
                **_errors(502, 503, 504),
            },
        }},
        "/api/previews": {"post": {
            "operationId": "createPreview",
            "summary": "A short preview of some content (<= 250 chars: the content itself, at once)",
            "parameters": [idempotency],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(
                PreviewRequest, "validation")}}},
            "responses": {
                "200": _json(ref(PreviewResult), "The preview"),
                "202": queued,
                **_errors(400, 401, 409, 413, 415, 422, s409="Idempotency-Key reused with a different request "
                          "(idempotency_conflict)"),
                "429": {**_problem(429, "The provider rate-limited us (rate_limited)"), "headers": retry_after},
                **_errors(502, 503, 504),
            },
        }},
        "/api/jobs": {"get": {
            "operationId": "listJobs",
            "summary": "The caller's jobs, newest first, cursor-paginated",
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": [s.value for s in JobStatus]}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20}},
                {"name": "cursor", "in": "query", "required": False,
                 "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                 "description": "next_cursor from the previous page (any other form is a 422)"},
            ],
            "responses": {"200": {**_json(ref(JobList), "A page of jobs"),
                                  "links": _links("$response.body#/items/0/id", "getJob")},
                          **_errors(401, 422, s422="A bad status, limit or cursor; `field` names it")},
        }},
        "/api/jobs/{job_id}": {"get": {
            "operationId": "getJob",
            "summary": "One job as its owner sees it",
            "parameters": [job_id, job_token],
            "security": token_security,
            "responses": {"200": _json(ref(JobView), "The job"), **_errors(401, 404)},
        }},
        "/api/jobs/{job_id}/cancel": {"post": {
            "operationId": "cancelJob",
            "summary": "Cancel a job: a pending one at once, a running one at its next check",
            "parameters": [job_id],
            "responses": {
                "202": {**_json(ref(JobView), "Cancellation recorded; the job as it is now"),
                        "links": _links("$response.body#/id", "getJob")},
                **_errors(401, 404),
                "409": _problem(409, "The job already finished (job_finished); `job_status` says how"),
            },
        }},
        "/api/jobs/{job_id}/events": {"get": {
            "operationId": "streamJobEvents",
            "summary": "Server-Sent Events until the job ends (status, delta, reset, done)",
            "parameters": [
                job_id,
                {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "resume after this event id (<status>.<attempts>.<offset>)"},
                {"name": "last_event_id", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "same as the Last-Event-ID header, for clients that cannot set headers"},
                job_token,
            ],
            "security": token_security,
            "responses": {
                "200": {"description": "An event stream: status, delta and reset events, then done (the JobView); "
                                       "itemSchema describes each event",
                        "content": {"text/event-stream": {"itemSchema": events}}},
                "204": {"description": "Last-Event-ID says the client already received `done`"},
                **_errors(401, 404),
                "429": {**_problem(429, "Too many open streams for this API key (too_many_streams)"),
                        "headers": retry_after},
                "503": {**_problem(503, "The server holds SSE_MAX_STREAMS streams (server_busy)"),
                        "headers": retry_after},
            },
        }},
        "/api/health": {"get": {
            "operationId": "health",
            "summary": "Liveness and configuration state (no auth, no secrets)",
            "security": [],
            "responses": {"200": _json(ref(Health), "The database answers (status may still be degraded)"),
                          "503": _json(ref(Health), "The database does not answer")},
        }},
        "/api/metrics": {"get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (needs METRICS_TOKEN)",
            "security": [{"metricsToken": []}],
            "responses": {
                "200": {"description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors(401, 404, s401="Wrong or missing metrics token",
                          s404="METRICS_TOKEN is not set, so the route does not exist"),
            },
        }},
        "/api/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document (public)",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
    }
    return {
        "openapi": "3.2.0",
        "info": {"title": "agentic", "version": agentic.__version__, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key (agk_...)"},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"},
                "jobToken": {"type": "apiKey", "in": "query", "name": "token",
                             "description": "a job read token (also accepted as a bearer): GET one job and "
                                            "its events, nothing else"},
            },
        },
    }


__all__ = ["build_openapi"]
