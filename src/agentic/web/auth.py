"""Bearer authentication: API keys for the API, a separate static token for the metrics scrape.

The key store answers from its per-process cache when it can (store/keycache.py says how a revoked key
still fails at once). The user id behind the key owns the jobs it creates and is the throttle key sent
to Inngest.
"""

from __future__ import annotations

import hmac

from flask import g, request
from pydantic import SecretStr

from agentic.domain.keys import ApiKey
from agentic.store.keys import ApiKeyStore
from agentic.web.problems import ApiProblem
from agentic.web.tokens import JobToken, JobTokens, looks_like_token

REALM = "agentic"
_G_KEY = "agentic_api_key"
_G_JOB_TOKEN = "agentic_job_token"  # noqa: S105 (a g attribute name)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; '' when the header is malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return ""
    return token


def _unauthorized(code: str, detail: str, *, realm: str, token_given: bool) -> ApiProblem:
    challenge = f'Bearer realm="{realm}"'
    if token_given:
        challenge += ', error="invalid_token"'
    return ApiProblem(401, code, detail, headers={"WWW-Authenticate": challenge})


def authenticate(keys: ApiKeyStore) -> ApiKey:
    """The caller's active key, remembered on ``g``; raises a 401 problem otherwise."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise _unauthorized("authentication_required", "send an API key as 'Authorization: Bearer <key>'",
                            realm=REALM, token_given=False)
    key = keys.authenticate(token) if token else None
    if key is None:
        raise _unauthorized("invalid_token", "the API key is malformed, unknown or revoked",
                            realm=REALM, token_given=True)
    setattr(g, _G_KEY, key)
    return key


def job_token_credential() -> str | None:
    """A job token sent as ``?token=`` (what EventSource can do) or as a bearer; None when there is none."""
    query = request.args.get("token")
    if query is not None:
        return query
    bearer = bearer_token(request.headers.get("Authorization"))
    return bearer if bearer and looks_like_token(bearer) else None


def authenticate_job_token(tokens: JobTokens | None, credential: str, *, job_id: str) -> JobToken:
    """A token for exactly this job, remembered on ``g``: 401 when it is bad or expired (or tokens are
    off), 404 when it names another job (exactly as another user's job is not found)."""
    token = tokens.verify(credential) if tokens is not None else None
    if token is None:
        raise _unauthorized("invalid_token", "the job token is malformed, expired or not valid here",
                            realm=REALM, token_given=True)
    if token.job_id != job_id:
        raise ApiProblem(404, "job_not_found", "no such job")
    setattr(g, _G_JOB_TOKEN, token)
    return token


def current_job_token() -> JobToken | None:
    """The job token this request was authorised by, if it was (then there is no API key)."""
    token: JobToken | None = getattr(g, _G_JOB_TOKEN, None)
    return token


def current_key() -> ApiKey:
    key: ApiKey | None = getattr(g, _G_KEY, None)
    if key is None:  # a route was reached without the before_request hook: a wiring bug
        raise RuntimeError("no authenticated API key on this request")
    return key


def check_metrics_token(expected: SecretStr | None) -> None:
    """404 when no METRICS_TOKEN is configured (the route does not exist), 401 on a wrong token."""
    if expected is None or not expected.get_secret_value():
        raise ApiProblem(404, "not_found", f"no route for {request.path}")
    token = bearer_token(request.headers.get("Authorization"))
    if not token or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise _unauthorized("invalid_token" if token is not None else "authentication_required",
                            "a valid metrics token is required", realm=f"{REALM}-metrics",
                            token_given=token is not None)


__all__ = ["REALM", "authenticate", "authenticate_job_token", "bearer_token", "check_metrics_token",
           "current_job_token", "current_key", "job_token_credential"]
