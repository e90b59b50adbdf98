"""The playground: a static page at ``/`` that drives the API from a browser (no build step, no CDN).

The page holds no secrets (the visitor types an API key, kept in their browser), so it needs no auth. A
strict Content-Security-Policy allows only this origin's scripts, styles and API calls, so an injected
string can never run as script on a page that can read that key.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

playground_bp = Blueprint("playground", __name__)


@playground_bp.get("/")
def index() -> Response:
    return send_from_directory(STATIC_DIR, "index.html", max_age=0)


@playground_bp.get("/playground/<path:name>")
def asset(name: str) -> Response:
    # send_from_directory refuses paths that leave STATIC_DIR (404), so ``name`` needs no other checks.
    return send_from_directory(STATIC_DIR, name, max_age=0)


@playground_bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "playground_bp"]
