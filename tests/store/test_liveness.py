"""The pool's liveness check (store/liveness.py), on PostgreSQL: a connection used within the window goes out
with no ping, one idle past it is pinged first, and one the server closed is replaced before a statement can
fail on it. What goes over the wire is read from libpq's own protocol trace."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from agentic.store.engine import create_db_engine
from agentic.store.liveness import check_on_checkout

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar() is True


class WireTrace:
    """The frontend messages libpq sends on the pool's one connection, from its protocol trace."""

    def __init__(self, engine: Engine, path: Path) -> None:
        with engine.connect() as conn:
            self.dbapi_connection: Any = conn.connection.dbapi_connection
        self.path = path
        self._file = path.open("w")
        self.dbapi_connection.pgconn.trace(self._file.fileno())

    def queries(self) -> list[str]:
        """Each simple query and each parsed statement's text, in the order sent."""
        self.dbapi_connection.pgconn.untrace()
        self._file.close()
        sent = []
        for line in self.path.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) > 4 and fields[1] == "F" and fields[3] in ("Query", "Parse"):
                sent.append(re.findall(r'"([^"]*)"', fields[4])[-1])
        return sent


def _select(engine: Engine, value: int) -> int:
    """One autocommit statement, as the stores send their single reads: no BEGIN or ROLLBACK around it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return int(conn.execute(text(f"SELECT {value}")).scalar_one())


def test_a_connection_used_within_the_window_goes_out_without_a_ping(postgres_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(postgres_url, pool_size=1)
    try:
        trace = WireTrace(engine, tmp_path / "trace")
        assert [_select(engine, n) for n in (1, 2, 3)] == [1, 2, 3]
        assert trace.queries() == ["SELECT 1", "SELECT 2", "SELECT 3"]  # no ";" ping before any of them
    finally:
        engine.dispose()


def test_a_connection_idle_past_the_window_is_pinged_first(postgres_url: str, tmp_path: Path) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    check_on_checkout(engine, idle_seconds=0.05)
    try:
        trace = WireTrace(engine, tmp_path / "trace")
        _select(engine, 1)
        time.sleep(0.1)
        _select(engine, 2)
        assert trace.queries() == ["SELECT 1", ";", "SELECT 2"]
    finally:
        engine.dispose()


# (window, idle time): within a window far longer than the test takes, only the readable socket tells.
@pytest.mark.parametrize(("window", "idle"), [(30.0, 0.0), (0.1, 0.2)], ids=["within the window", "past it"])
def test_a_connection_the_server_closed_is_replaced_before_a_statement_fails(
        postgres_url: str, admin: Engine, window: float, idle: float) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    check_on_checkout(engine, idle_seconds=window)
    try:
        dead = _backend_pid(engine)
        _terminate(admin, dead)  # the server says goodbye on the socket and closes it
        time.sleep(idle)
        replacement = _backend_pid(engine)  # no exception: the dead one never got a statement
        assert replacement != dead
        assert _select(engine, 7) == 7
    finally:
        engine.dispose()


def test_every_pooled_connection_the_server_closed_is_replaced(postgres_url: str, admin: Engine) -> None:
    engine = create_db_engine(postgres_url, pool_size=3)
    try:
        held = [engine.connect() for _ in range(3)]  # three connections in the pool at once
        pids = {int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) for conn in held}
        for conn in held:
            conn.close()
        for pid in pids:
            _terminate(admin, pid)
        after = {_backend_pid(engine) for _ in range(6)}
        assert after.isdisjoint(pids)
    finally:
        engine.dispose()
