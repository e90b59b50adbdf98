"""Checking a pooled PostgreSQL connection on checkout without paying a round trip on every request.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` before every checkout: half of a poll's database round trips
(BENCHMARKS.md, F5 and F10). Like pgx's pool, we ping only a connection that has sat idle for more than
:data:`PING_AFTER_IDLE_SECONDS`, the ones an idle timeout, a failover or a restart can have silently dropped.
A connection used within that window is also checked at no cost: the server announces the end of a session
it closes (``pg_terminate_backend``, a restart, ``idle_session_timeout``) by sending an error and closing the
socket, so an idle connection with anything to read (as go-sql-driver/mysql's ``connCheck`` tests) is pinged
too. What neither catches, a connection dropped without a word within the window, fails its statement as it
would have under pre-ping had it dropped a moment later; SQLAlchemy then refreshes the whole pool.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc

#: pgx's pool (``pgxpool.Pool.Acquire``) pings connections idle for more than a second.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "agentic_idle_since"


def check_on_checkout(engine: Engine, *, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Ping a connection on checkout when it was idle too long or its socket has something to say."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since <= idle_seconds \
                and not _has_input(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # As pre-ping does: this connection is gone, and so, probably, are the others opened before it.
            raise sa_exc.InvalidatePoolError(f"the connection failed its ping: {exc}") from exc


def _has_input(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket is readable: a closing server's message or EOF is waiting."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # a closed connection has no socket: let the ping find out
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # Windows
    return bool(readable)
