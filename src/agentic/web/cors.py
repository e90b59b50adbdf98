"""CORS for the two routes a job token can read (a job and its event stream), and nothing else.

A page on another origin follows a job with its token alone: no cookies, so no credentials mode, and only
the origins named in ``CORS_ALLOWED_ORIGINS`` (``*`` for any) are told they may read the answer. Every other
route sends no CORS header, so a browser on another origin can neither read nor preflight-pass a call to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Response, request

#: Headers a cross-origin reader may send: a bearer token, and what EventSource sends on reconnects.
ALLOWED_HEADERS = "Authorization, Last-Event-ID, Cache-Control"
PREFLIGHT_MAX_AGE = "600"


def allowed_origin(origin: str | None, allowed: Sequence[str]) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin may not read."""
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def apply_cors(response: Response, allowed: Sequence[str]) -> Response:
    """Adds CORS headers for a read route (its answer, its errors, and its preflight)."""
    response.vary.add("Origin")
    origin = allowed_origin(request.headers.get("Origin"), allowed)
    if origin is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    else:
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, WWW-Authenticate"
    return response


__all__ = ["allowed_origin", "apply_cors"]
