"""API keys: random, shown once, stored only as a SHA-256 hash.

A key is ``agk_<random>``; with 256 random bits a plain (unsalted) SHA-256 is as strong as a slow hash
and lets a lookup use the unique index on ``key_hash``. Active keys may be cached per process
(:mod:`agentic.store.keycache` says how a revocation still takes effect).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Engine, func, select, update

from agentic.domain.keys import ApiKey
from agentic.store.keycache import KEY_CHANNEL, KeyCache
from agentic.store.tables import ApiKeyRow, utcnow

KEY_PREFIX = "agk_"
#: last_used_at is refreshed at most this often, so authentication is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_T = ApiKeyRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the only time the plain key exists


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    return secret.startswith(KEY_PREFIX) and 20 <= len(secret) <= 200 and secret.isascii()


class ApiKeyStore:
    def __init__(self, engine: Engine, *, cache: KeyCache | None = None) -> None:
        self.engine = engine
        self.cache = cache
        self._postgres = engine.dialect.name == "postgresql"
        # The lookup on every API request is one statement: no BEGIN/ROLLBACK around it on PostgreSQL.
        self._single = (engine.execution_options(isolation_level="AUTOCOMMIT")
                        if engine.dialect.name == "postgresql" else engine)

    def create(self, user_id: str, *, label: str | None = None) -> IssuedKey:
        if not user_id.strip():
            raise ValueError("user_id must not be empty")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = {"id": "key_" + secrets.token_hex(8), "user_id": user_id, "key_hash": hash_key(secret),
               "label": label, "created_at": utcnow(), "revoked_at": None, "last_used_at": None}
        with self.engine.begin() as conn:
            conn.execute(_T.insert().values(**row))
        return IssuedKey(key=_to_key(row), secret=secret)

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key for ``secret``, or None (unknown, malformed or revoked)."""
        if not looks_like_key(secret):
            return None
        digest = hash_key(secret)
        cache = self.cache
        if cache is not None and (cached := cache.get(digest)) is not None:
            self._touch(cached, digest)
            return cached
        version = cache.version if cache is not None else 0
        with self._single.connect() as conn:
            row = conn.execute(select(_T).where(_T.c.key_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
            return None
        key = self._touch(_to_key(row._mapping), digest)
        if cache is not None:
            cache.put(digest, key, version)
        return key

    def list(self, user_id: str | None = None) -> list[ApiKey]:
        query = select(_T).order_by(_T.c.created_at)
        if user_id is not None:
            query = query.where(_T.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [_to_key(r._mapping) for r in conn.execute(query)]

    def is_active(self, key_id: str) -> bool:
        """Whether the key exists and is not revoked (asked by long-lived streams, once in a while)."""
        with self._single.connect() as conn:
            row = conn.execute(select(_T.c.revoked_at).where(_T.c.id == key_id)).first()
        return row is not None and row.revoked_at is None

    def revoke(self, key_id: str) -> bool:
        """Revoke a key at once; False when no active key has that id.

        On PostgreSQL the same transaction sends ``NOTIFY agentic_keys``, which empties every process's
        key cache when it commits; this process's cache is emptied here too.
        """
        stmt = update(_T).where(_T.c.id == key_id, _T.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        with self.engine.begin() as conn:
            if self._postgres:
                revoked = conn.execute(stmt.returning(func.pg_notify(KEY_CHANNEL, _T.c.id))).first() is not None
            else:
                revoked = conn.execute(stmt).rowcount == 1
        if self.cache is not None:
            self.cache.invalidate()
        return revoked

    def _touch(self, key: ApiKey, digest: str) -> ApiKey:
        """Refresh ``last_used_at`` if it is older than LAST_USED_RESOLUTION; returns the key as stored."""
        now = utcnow()
        if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
            return key
        with self.engine.begin() as conn:
            conn.execute(update(_T).where(_T.c.id == key.id).values(last_used_at=now))
        if self.cache is not None:
            self.cache.touched(digest, now)
        return replace(key, last_used_at=now)


def _to_key(row: object) -> ApiKey:
    m = row if isinstance(row, dict) else dict(row)  # type: ignore[call-overload]
    return ApiKey(id=m["id"], user_id=m["user_id"], label=m["label"], created_at=m["created_at"],
                  revoked_at=m["revoked_at"], last_used_at=m["last_used_at"])
