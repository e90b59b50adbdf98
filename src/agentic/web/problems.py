"""Problem details (RFC 9457): the one shape every API error takes.

Each problem carries a stable snake_case ``code`` clients can switch on, and ``field`` (a dotted path such as
``messages.0.content``) when one input is to blame. Handlers are registered on the app, so errors raised
anywhere (before_request, a route, Flask's routing) come out the same way; /api/inngest is left alone,
because the Inngest SDK builds its own answers there, and so are paths outside /api.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, request
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from agentic.domain.errors import ErrorCode, LLMError

log = logging.getLogger(__name__)

PROBLEM_MIME = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:agentic:problem:"
API_PREFIX = "/api"
INNGEST_PATH = "/api/inngest"
#: Retry-After on a provider 429 that came without any hint of its own.
DEFAULT_RETRY_AFTER_SECONDS = 5

#: Codes for the HTTP errors Flask itself raises.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}

#: HTTP status for each provider failure on the direct path: a rate limit is 429 (with Retry-After),
#: every other upstream failure is 502. The problem keeps the taxonomy's code, which says which one.
_LLM_STATUS: dict[ErrorCode, int] = {
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_CONFIGURED: 503,
}
_LLM_FIELD: dict[ErrorCode, str] = {ErrorCode.MODEL_NOT_FOUND: "model", ErrorCode.CONTEXT_TOO_LONG: "messages"}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ApiProblem(Exception):
    """Raise anywhere in a request to answer with this problem."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        field: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.field = field
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title or _phrase(self.status),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "field": self.field,
        }
        if self.errors is not None:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        body.update({k: v for k, v in self.extra.items() if k not in body})
        return body

    def response(self) -> Response:
        answer = Response(json.dumps(self.body(), ensure_ascii=False), status=self.status, mimetype=PROBLEM_MIME)
        for name, value in self.headers.items():
            answer.headers[name] = value
        return answer


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_path(loc: Iterable[int | str]) -> str:
    """pydantic's ``loc`` as a dotted path: ('messages', 0, 'content') -> 'messages.0.content'."""
    return ".".join(str(part) for part in loc)


def validation_problem(exc: ValidationError, *, prefix: Sequence[str | int] = ()) -> ApiProblem:
    """A 422 listing every invalid field; the input values are never echoed (they may be private)."""
    errors = [FieldError(field=field_path((*prefix, *error["loc"])) or "body",
                         message=error["msg"].removeprefix("Value error, "))
              for error in exc.errors(include_url=False, include_input=False)]
    first = errors[0] if errors else FieldError("body", "invalid")
    detail = f"{first.field}: {first.message}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return ApiProblem(422, "validation_error", detail, title="Invalid request", field=first.field, errors=errors)


def parameter_problem(name: str, message: str) -> ApiProblem:
    return ApiProblem(422, "validation_error", f"{name}: {message}", title="Invalid request", field=name,
                      errors=[FieldError(name, message)])


def llm_problem(exc: LLMError, *, missing_variable: str | None = None) -> ApiProblem:
    """A provider failure on the direct path, keeping the taxonomy's code (and the provider's status)."""
    status = _LLM_STATUS.get(exc.code, 502)
    headers: dict[str, str] = {}
    if exc.retry_after is not None and status == 429:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif status == 429:  # the provider gave no hint; a 429 always says when to come back
        headers["Retry-After"] = str(DEFAULT_RETRY_AFTER_SECONDS)
    if exc.code is ErrorCode.NOT_CONFIGURED:
        variable = missing_variable or "the provider's API key"
        return ApiProblem(503, "provider_not_configured",
                          f"the {exc.provider} provider is not configured: set {variable}",
                          extra={"missing": missing_variable, "provider": exc.provider})
    upstream = f" (upstream status {exc.status})" if exc.status is not None else ""
    detail = f"{exc.provider}{upstream}: {exc.message}"
    return ApiProblem(status, exc.code.value, detail, field=_LLM_FIELD.get(exc.code), headers=headers,
                      extra={"provider": exc.provider, "upstream_status": exc.status})


def is_database_outage(exc: BaseException) -> bool:
    """Connection trouble (refused, dropped, pool exhausted), as opposed to a bug in a query."""
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def database_problem() -> ApiProblem:
    return ApiProblem(503, "database_unavailable", "the database is unreachable; try again shortly",
                      headers={"Retry-After": "5"})


def internal_problem() -> ApiProblem:
    return ApiProblem(500, "internal_error", "an unexpected error occurred; it has been logged")


def _handled_here() -> bool:
    """The API's paths: /api and below, except the Inngest endpoint."""
    path = request.path
    if path == INNGEST_PATH or path.startswith(INNGEST_PATH + "/"):
        return False
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def register_error_handlers(app: Flask) -> None:
    """Turn every error under /api into problem+json (except at /api/inngest, whose answers the SDK owns).

    Other paths (the playground page) keep Flask's own error pages.
    """

    @app.errorhandler(ApiProblem)
    def _problem(exc: ApiProblem) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response | HTTPException:
        if not _handled_here():
            return exc
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        detail = _http_detail(status, exc)
        headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
        return ApiProblem(status, code, detail, headers=headers).response()

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def _database(exc: sa_exc.SQLAlchemyError) -> Response | HTTPException:
        if is_database_outage(exc):
            log.warning("database unavailable during %s %s: %s", request.method, request.path,
                        type(exc).__name__)
            return database_problem().response() if _handled_here() else InternalServerError()
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | HTTPException:
        # Only the method and path: headers (Authorization) and bodies never reach the log.
        log.exception("unhandled error in %s %s", request.method, request.path)
        if not _handled_here():
            return InternalServerError()
        return internal_problem().response()


def _http_detail(status: int, exc: HTTPException) -> str:
    if status == 404:
        return f"no route for {request.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.path}"
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return f"the request body exceeds {limit} bytes" if limit else "the request body is too large"
    return exc.description or _phrase(status)


__all__ = [
    "PROBLEM_MIME",
    "ApiProblem",
    "FieldError",
    "database_problem",
    "field_path",
    "is_database_outage",
    "llm_problem",
    "parameter_problem",
    "register_error_handlers",
    "validation_problem",
]
