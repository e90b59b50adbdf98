"""A per-process cache of active API keys, so a request does not look its key up in the database.

The key lookup was half of a poll's database work (a pool checkout with its ping, and a SELECT). What
keeps a revoked key failing:

- PostgreSQL: :meth:`ApiKeyStore.revoke` sends ``NOTIFY agentic_keys`` in the revoking transaction; each
  process's :class:`KeyListener` (one ``LISTEN`` connection per database, a daemon thread, started on the
  first lookup)
  empties the cache when it arrives, a millisecond or so after the commit. The cache is used only while that
  listener is connected, and emptied on every connect and disconnect (a notification sent meanwhile is
  lost). An entry also expires after ``POSTGRES_TTL_SECONDS``, which bounds a listener whose connection died
  without the socket noticing (its health check runs every 30 s).
- SQLite has no notifications: an entry lives ``SQLITE_TTL_SECONDS``; another process's revocation takes
  effect within that bound (the README states it). A revocation in this process empties the cache at once.
- Serverless hosts (``DATABASE_SERVERLESS``) get no cache: a frozen instance's listener thread would
  thaw after the request that needs the notification.

A lookup that began before an invalidation never stores its (possibly stale) result: see :meth:`KeyCache.put`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import URL, Engine, make_url

from agentic.store.watch import NotifyListener, shared_listener_of

if TYPE_CHECKING:
    from agentic.domain.keys import ApiKey

KEY_CHANNEL = "agentic_keys"
POSTGRES_TTL_SECONDS = 30.0
SQLITE_TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    key: ApiKey
    expires: float


class KeyCache:
    """Active keys by hash. ``live()`` says whether invalidations can currently reach this process."""

    def __init__(self, *, ttl: float, live: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.live = live
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._version = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """Moves on every invalidation; take it before reading the database, give it back to :meth:`put`."""
        return self._version

    def get(self, digest: str) -> ApiKey | None:
        if not self.live():
            return None
        entry = self._entries.get(digest)
        if entry is None or entry.expires <= self.clock():
            return None
        return entry.key

    def put(self, digest: str, key: ApiKey, version: int) -> None:
        """Remember ``key``, unless an invalidation came after ``version`` was taken (it may be stale)."""
        with self._lock:
            if version != self._version or not self.live():
                return
            if len(self._entries) >= self.max_entries and digest not in self._entries:
                self._entries.clear()  # rare (that many distinct keys in ttl); simpler than LRU
            self._entries[digest] = _Entry(key, self.clock() + self.ttl)

    def touched(self, digest: str, last_used_at: datetime) -> None:
        """Keep the cached copy's ``last_used_at`` current, so the once-a-minute refresh stays that rare."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries[digest] = _Entry(replace(entry.key, last_used_at=last_used_at), entry.expires)

    def invalidate(self) -> None:
        with self._lock:
            self._version += 1
            self._entries.clear()


class KeyListener(NotifyListener):
    """``LISTEN agentic_keys``, one per database per process: any notification, connect or disconnect
    empties every cache attached to it."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo, KEY_CHANNEL)
        self._caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()
        self._caches_lock = threading.Lock()

    def attach(self, cache: KeyCache) -> None:
        with self._caches_lock:
            self._caches.add(cache)

    def dispatch(self, job_id: str) -> None:  # the payload (a key id) does not matter: empty them all
        self._invalidate_all()

    def _wake_all(self) -> None:  # called on every connect and disconnect
        self._invalidate_all()

    def _invalidate_all(self) -> None:
        with self._caches_lock:
            caches = list(self._caches)
        for cache in caches:
            cache.invalidate()


def shared_key_listener(url: URL) -> KeyListener:
    """The process's key listener for ``url``'s database (URLs differing only in ``options`` share it)."""
    return shared_listener_of(url, KeyListener)


class ListenedKeyCache(KeyCache):
    """The PostgreSQL cache: trusted only while its listener is connected; starts it on the first lookup."""

    def __init__(self, listener: KeyListener, *, ttl: float = POSTGRES_TTL_SECONDS) -> None:
        self.listener = listener
        super().__init__(ttl=ttl, live=lambda: listener.connected)
        self._started = False
        listener.attach(self)

    def get(self, digest: str) -> ApiKey | None:
        if not self._started:
            self._started = True
            self.listener.start()
        return super().get(digest)


def key_cache_for(engine: Engine, *, serverless: bool = False, listen_url: str | None = None) -> KeyCache | None:
    """The cache that fits ``engine``'s database, or None where none is safe (serverless hosts)."""
    if serverless:
        return None
    if engine.dialect.name == "postgresql":
        return ListenedKeyCache(shared_key_listener(make_url(listen_url) if listen_url else engine.url))
    return KeyCache(ttl=SQLITE_TTL_SECONDS)


__all__ = ["KEY_CHANNEL", "POSTGRES_TTL_SECONDS", "SQLITE_TTL_SECONDS", "KeyCache", "KeyListener",
           "ListenedKeyCache", "key_cache_for", "shared_key_listener"]
