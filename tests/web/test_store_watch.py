"""The job watcher: LISTEN/NOTIFY on PostgreSQL (one shared connection, reconnecting), polling on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from agentic.domain.jobs import JobKind
from agentic.store.engine import create_db_engine, init_db
from agentic.store.jobs import JobStore
from agentic.store.watch import (
    NotifyJobWatcher,
    NotifyListener,
    PollingJobWatcher,
    libpq_conninfo,
    shared_listener,
    watcher_for,
)


def test_polling_sleeps_the_poll_interval() -> None:
    slept: list[float] = []
    watcher = PollingJobWatcher(0.5, sleep=slept.append)
    assert watcher.wait("job_1", 10) is True
    assert watcher.wait("job_1", 0.1) is False
    assert slept == [0.5, 0.1]


def test_sqlite_gets_the_polling_watcher(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    assert isinstance(watcher_for(engine, poll_seconds=0.2), PollingJobWatcher)
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(postgres_url)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def listener(pg_engine: Engine) -> Iterator[NotifyListener]:
    listener = NotifyListener(libpq_conninfo(pg_engine.url), backoff_initial=0.05, tick_seconds=0.1)
    yield listener
    listener.stop()


def _notify(engine: Engine, job_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_notify('agentic_jobs', :id)"), {"id": job_id})


def test_postgres_gets_the_shared_notify_watcher(pg_engine: Engine) -> None:
    watcher = watcher_for(pg_engine, poll_seconds=0.2)
    assert isinstance(watcher, NotifyJobWatcher)
    # One listener per database, whatever the search_path in the URL.
    other = pg_engine.url.set(query={"options": "-csearch_path=elsewhere"})
    assert shared_listener(other) is watcher.listener


def test_a_store_write_wakes_the_waiter_at_once(pg_engine: Engine, listener: NotifyListener) -> None:
    store = JobStore(pg_engine)
    job, _ = store.create(kind=JobKind.GENERATE, user_id="u", request={"x": 1})
    watcher = NotifyJobWatcher(listener, fallback_seconds=30, poll_seconds=30)
    with watcher.subscribe(job.id) as subscription:
        assert listener.wait_connected(5)
        subscription.wait(0)  # consume the wake-up every (re)connect sends
        threading.Timer(0.1, store.start, args=(job.id,)).start()
        started = time.monotonic()
        assert subscription.wait(10) is True
        assert time.monotonic() - started < 2
    assert listener.waiting() == 0


def test_a_change_between_read_and_wait_is_not_missed(pg_engine: Engine, listener: NotifyListener) -> None:
    watcher = NotifyJobWatcher(listener, fallback_seconds=30, poll_seconds=30)
    with watcher.subscribe("job_race") as subscription:
        assert listener.wait_connected(5)
        subscription.wait(0)
        _notify(pg_engine, "job_race")  # lands before wait() is called
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not subscription.wait(0.05):
            pass
        assert time.monotonic() < deadline


def test_other_jobs_do_not_wake_the_waiter(pg_engine: Engine, listener: NotifyListener) -> None:
    watcher = NotifyJobWatcher(listener, fallback_seconds=30, poll_seconds=30)
    with watcher.subscribe("job_mine") as subscription:
        assert listener.wait_connected(5)
        subscription.wait(0)
        _notify(pg_engine, "job_theirs")
        assert subscription.wait(0.3) is False


def test_the_listener_reconnects_after_losing_its_connection(pg_engine: Engine, listener: NotifyListener) -> None:
    watcher = NotifyJobWatcher(listener, fallback_seconds=30, poll_seconds=30)
    with watcher.subscribe("job_again") as subscription:
        assert listener.wait_connected(5)
        pid = listener.backend_pid
        with pg_engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (listener.connects < 2 or not listener.connected):
            time.sleep(0.02)
        assert listener.connects == 2 and listener.connected and listener.backend_pid != pid
        subscription.wait(0)  # the reconnect woke us (missed notifications must be re-read)
        _notify(pg_engine, "job_again")
        assert subscription.wait(10) is True


def test_waiters_poll_while_the_listener_is_down() -> None:
    listener = NotifyListener("postgresql://nobody@127.0.0.1:1/none", backoff_initial=10)
    watcher = NotifyJobWatcher(listener, fallback_seconds=30, poll_seconds=0.05)
    try:
        with watcher.subscribe("job_x") as subscription:
            started = time.monotonic()
            assert subscription.wait(5) is True  # a poll interval passed: re-read
            assert time.monotonic() - started < 1
    finally:
        listener.stop(timeout=0.1)


def test_a_separate_listen_url_receives_the_store_writes(pg_engine: Engine) -> None:
    """Behind a transaction-mode pooler, DATABASE_LISTEN_URL gives the listener a direct connection."""
    import os

    direct = os.environ["TEST_DATABASE_URL"]  # same database, no search_path option: a different URL
    assert str(pg_engine.url) != direct
    watcher = watcher_for(pg_engine, poll_seconds=5.0, listen_url=direct)
    assert isinstance(watcher, NotifyJobWatcher)
    store = JobStore(pg_engine)
    job, _ = store.create(kind=JobKind.GENERATE, user_id="u", request={"x": 1})
    with watcher.subscribe(job.id) as subscription:
        assert watcher.listener.wait_connected(5.0)
        subscription.wait(0.3)  # drain the wake-up every waiter gets when the listener (re)connects
        threading.Timer(0.2, lambda: store.start(job.id)).start()
        started = time.monotonic()
        assert subscription.wait(5.0) is True
        assert time.monotonic() - started < 2.0  # woken by NOTIFY, not by the 5 s poll fallback
