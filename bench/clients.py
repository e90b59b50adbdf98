"""HTTP clients for the benchmarks: one keep-alive connection per client thread, loopback only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine

from agentic.store.keys import ApiKeyStore
from bench.load import ClientFactory

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def loopback_client(**kwargs: Any) -> httpx.Client:
    """A client for plain HTTP on 127.0.0.1. ``verify=False`` only skips loading the CA bundle (there is no
    TLS here), which costs 15-150 ms a client and would otherwise land in set-up, or worse, in a timing."""
    kwargs.setdefault("timeout", TIMEOUT)
    return httpx.Client(verify=False, **kwargs)


def api_key(engine: Engine, user_id: str = "bench-user") -> str:
    """A fresh API key for ``user_id`` (the plain secret, sent as a Bearer token)."""
    return ApiKeyStore(engine).create(user_id, label="benchmark").secret


def request_factory(base_url: str, method: str, path: str | Callable[[int], str], *, expect: int,
                    token: str | None = None, json: Any = None) -> ClientFactory:
    """Each client: its own ``httpx.Client``; each call: one request that must answer ``expect``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    @contextmanager
    def client(index: int) -> Iterator[Callable[[], None]]:
        with loopback_client(base_url=base_url, headers=headers) as http:
            url = path(index) if callable(path) else path

            def call() -> None:
                response = http.request(method, url, json=json)
                if response.status_code != expect:
                    raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")

            yield call

    return client
