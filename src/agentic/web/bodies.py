"""Reading request input: size first, then content type, then JSON, then the pydantic model (strictly).

The order matters: an oversized body is refused from its Content-Length before a byte is read or parsed,
and a chunked one (no Content-Length) is read at most one byte past the limit, so a large body costs no
memory. The app-wide MAX_CONTENT_LENGTH bounds every other reader of a body.

The model validates in strict mode, so JSON types are what the OpenAPI document says: ``false`` is not a
number, ``"0.5"`` is not a number, ``"5"`` is not an integer (422 naming the field, never a silent
coercion). Strictness is applied here, at the edge, rather than in the models' config: requests stored in a
job row are re-read by the runner in the default mode, so rows written before stay readable.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from agentic.web.problems import ApiProblem, validation_problem

M = TypeVar("M", bound=BaseModel)

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_CHARS = 255
#: Deepest nesting of arrays and objects a body may have; the API's own bodies need five.
MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(model: type[M], *, max_bytes: int) -> M:
    """The request body validated as ``model``; raises a 413, 415, 400 or 422 problem."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)
    if not request.is_json:
        shown = request.mimetype or "none"
        raise ApiProblem(415, "unsupported_media_type",
                         f"send the body as application/json (got Content-Type: {shown})")
    # A chunked body has no Content-Length. Werkzeug stops reading it at max_content_length without saying
    # whether more was coming, so read at most one byte more than allowed: that byte proves it was too big.
    request.max_content_length = max_bytes + 1
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "invalid_json", f"the body is not valid JSON: {_json_reason(exc)}") from None
    except RecursionError:  # a few KB of [[[[… exhaust the parser's stack: refuse it, do not crash
        raise _too_deep() from None
    if _nested_deeper_than(payload, MAX_JSON_DEPTH):  # the same answer on every Python: 3.12's parser
        raise _too_deep()                              # takes 1,000 levels that 3.11's refuses
    try:
        return model.model_validate(payload, strict=True)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _too_deep() -> ApiProblem:
    return ApiProblem(400, "invalid_json", f"the body is nested too deeply (over {MAX_JSON_DEPTH} levels)")


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iterative: no recursion to exhaust)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    return str(exc)


def too_large(max_bytes: int) -> ApiProblem:
    return ApiProblem(413, "request_too_large", f"the request body exceeds {max_bytes} bytes",
                      extra={"max_bytes": max_bytes})


def idempotency_key() -> str | None:
    """The Idempotency-Key header: 1-255 printable ASCII characters, or absent."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY_CHARS or not all(" " <= ch <= "~" for ch in value):
        raise ApiProblem(400, "invalid_idempotency_key",
                         f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
                         field=IDEMPOTENCY_HEADER)
    return value


__all__ = ["IDEMPOTENCY_HEADER", "idempotency_key", "read_json", "too_large"]
