"""The per-process API-key cache (store/keycache.py): a cached key costs no database work, and a revoked
key still fails: at once in the revoking process, on PostgreSQL as soon as the NOTIFY arrives (and never
from the cache while the listener is down), on SQLite within the stated bound."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, event, text

from agentic.store.engine import create_db_engine, init_db
from agentic.store.keycache import (
    SQLITE_TTL_SECONDS,
    KeyCache,
    ListenedKeyCache,
    key_cache_for,
)
from agentic.store.keys import LAST_USED_RESOLUTION, ApiKeyStore, hash_key
from agentic.store.tables import utcnow


def statements(engine: Engine, call: Callable[[], object]) -> tuple[object, int]:
    """``call()``'s result and the number of pool checkouts and SQL statements it made."""
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(type(args[0]).__name__)

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine.pool, "checkout", record)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine.pool, "checkout", record)
    return result, len(sent)


def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def warm(store: ApiKeyStore, secret: str) -> None:
    """Look the key up until a lookup is answered from the cache (the listener connects in the background)."""
    cache = store.cache
    assert cache is not None
    if isinstance(cache, ListenedKeyCache):
        store.authenticate(secret)  # starts the listener
        assert cache.listener.wait_connected(10)
    for _ in range(50):
        key, sent = statements(store.engine, lambda: store.authenticate(secret))
        assert key is not None
        if sent == 0:
            return
    pytest.fail("the key never came from the cache")


@pytest.fixture
def other_engine(database_url: str) -> Iterator[Engine]:
    """Another engine on the same database: stands for another process (the CLI revoking a key)."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cached(engine: Engine) -> ApiKeyStore:
    return ApiKeyStore(engine, cache=key_cache_for(engine))


def test_a_cached_key_costs_no_database_work(cached: ApiKeyStore) -> None:
    secret = cached.create("alice").secret
    warm(cached, secret)
    key, sent = statements(cached.engine, lambda: cached.authenticate(secret))
    assert key is not None and key.user_id == "alice" and sent == 0


def test_unknown_keys_are_never_cached(cached: ApiKeyStore) -> None:
    cached.create("alice")
    for _ in range(3):
        key, sent = statements(cached.engine, lambda: cached.authenticate("agk_" + "x" * 40))
        assert key is None and sent >= 1


def test_a_key_revoked_in_this_process_fails_on_the_next_lookup(cached: ApiKeyStore) -> None:
    issued = cached.create("alice")
    warm(cached, issued.secret)
    assert cached.revoke(issued.key.id)
    assert cached.authenticate(issued.secret) is None


def test_postgres_a_key_revoked_elsewhere_fails_once_the_notify_arrives(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    init_db(engine)
    elsewhere = create_db_engine(postgres_url)
    try:
        cached = ApiKeyStore(engine, cache=key_cache_for(engine))
        issued = cached.create("alice")
        warm(cached, issued.secret)
        cache = cached.cache
        assert cache is not None
        before = cache.version
        assert ApiKeyStore(elsewhere).revoke(issued.key.id)  # another process: no cache of its own to empty
        assert eventually(lambda: cache.version != before)   # the NOTIFY emptied this process's cache
        assert cached.authenticate(issued.secret) is None
        assert cached.authenticate(issued.secret) is None    # and the revoked key was not cached again
    finally:
        engine.dispose()
        elsewhere.dispose()


def test_postgres_the_cache_is_not_trusted_while_its_listener_is_down(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    init_db(engine)
    elsewhere = create_db_engine(postgres_url)
    try:
        cached = ApiKeyStore(engine, cache=key_cache_for(engine))
        issued = cached.create("alice")
        warm(cached, issued.secret)
        cache = cached.cache
        assert isinstance(cache, ListenedKeyCache)
        pid = cache.listener.backend_pid
        with elsewhere.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert eventually(lambda: cache.listener.backend_pid != pid)  # the drop was noticed
        # Whether the listener is still down (cache bypassed) or back (cache emptied on connect), a
        # revocation it could not hear about is seen by the very next lookup.
        assert ApiKeyStore(elsewhere).revoke(issued.key.id)
        assert cached.authenticate(issued.secret) is None
    finally:
        engine.dispose()
        elsewhere.dispose()


def test_sqlite_a_key_revoked_elsewhere_fails_within_the_stated_bound(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    init_db(engine)
    now = [1000.0]
    cached = ApiKeyStore(engine, cache=KeyCache(ttl=SQLITE_TTL_SECONDS, clock=lambda: now[0]))
    issued = cached.create("alice")
    warm(cached, issued.secret)
    assert ApiKeyStore(engine).revoke(issued.key.id)  # another process: this cache cannot know
    assert cached.authenticate(issued.secret) is not None  # the stated bound: up to SQLITE_TTL_SECONDS
    now[0] += SQLITE_TTL_SECONDS
    assert cached.authenticate(issued.secret) is None
    engine.dispose()


def test_a_lookup_that_raced_an_invalidation_is_not_cached(cached: ApiKeyStore) -> None:
    """The version taken before the read no longer matches after a revocation: the result is dropped."""
    issued = cached.create("alice")
    cache = cached.cache
    assert cache is not None
    warm(cached, issued.secret)
    stale_version = cache.version
    active = cached.authenticate(issued.secret)
    assert active is not None
    cache.invalidate()  # a revocation landed while that lookup was reading
    cache.put("digest", active, stale_version)
    assert cache.get("digest") is None


def test_no_cache_on_serverless_hosts(engine: Engine) -> None:
    assert key_cache_for(engine, serverless=True) is None
    cache = key_cache_for(engine)
    expected = ListenedKeyCache if engine.dialect.name == "postgresql" else KeyCache
    assert type(cache) is expected


def test_last_used_is_still_refreshed_from_the_cache(cached: ApiKeyStore) -> None:
    issued = cached.create("alice")
    warm(cached, issued.secret)
    cache = cached.cache
    assert cache is not None
    with cached.engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET last_used_at = NULL"))
    cache.touched(hash_key(issued.secret), utcnow() - 2 * LAST_USED_RESOLUTION)  # the cached copy is old
    cached.authenticate(issued.secret)
    [listed] = cached.list("alice")
    assert listed.last_used_at is not None
    _, sent = statements(cached.engine, lambda: cached.authenticate(issued.secret))
    assert sent == 0  # refreshed in the cache too: not a write per request
