"""Wake whoever waits on a job (the SSE route) when its row changes, without hammering the row.

PostgreSQL: every job write sends ``NOTIFY agentic_jobs, '<job id>'`` (see :mod:`agentic.store.jobs`). One
process-wide :class:`NotifyListener` per database holds ONE dedicated autocommit connection running
``LISTEN agentic_jobs`` in a daemon thread and hands each notification to the subscriptions waiting on that
job id. If the connection drops it reconnects with exponential backoff; meanwhile (and on every reconnect)
waiters are woken and fall back to polling, since notifications sent while nobody listened are lost.
Even when connected a wait never lasts longer than ``fallback_seconds``, so a missed notification costs at
most that long.

SQLite has no notifications: :class:`PollingJobWatcher` just sleeps the poll interval.

Subscribe *before* reading the row: a change that lands between the read and the wait is then still seen.
Nothing here runs at import time; the listener thread starts with the first subscription.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self, TypeVar, cast

from sqlalchemy import URL, Engine, make_url

from agentic.store.jobs import JOB_CHANNEL

log = logging.getLogger(__name__)

#: Longest wait on PostgreSQL between re-reads even when no notification came (a lost one costs this).
DEFAULT_FALLBACK_SECONDS = 1.0


class Subscription(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block until the job may have changed or ``timeout`` passes.

        True means "re-read the row now" (a change was signalled, or a fallback/poll interval passed);
        False means ``timeout`` elapsed first with nothing to report.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Subscription: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


class JobWatcher(Protocol):
    def subscribe(self, job_id: str) -> Subscription: ...

    def wait(self, job_id: str, timeout: float) -> bool: ...


class _SubscriptionBase:
    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


# ---- SQLite (and any database without notifications): polling ------------------------------------------


class _PollingSubscription(_SubscriptionBase):
    def __init__(self, poll_seconds: float, sleep: Callable[[float], None]) -> None:
        self.poll_seconds = poll_seconds
        self._sleep = sleep

    def wait(self, timeout: float) -> bool:
        if timeout < self.poll_seconds:
            self._sleep(max(timeout, 0.0))
            return False
        self._sleep(self.poll_seconds)
        return True


class PollingJobWatcher:
    """Sleeps ``poll_seconds`` between reads: the only option on SQLite, and cheap there (a local file)."""

    def __init__(self, poll_seconds: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.poll_seconds = poll_seconds
        self._sleep = sleep

    def subscribe(self, job_id: str) -> _PollingSubscription:
        return _PollingSubscription(self.poll_seconds, self._sleep)

    def wait(self, job_id: str, timeout: float) -> bool:
        return self.subscribe(job_id).wait(timeout)


# ---- PostgreSQL: LISTEN/NOTIFY ------------------------------------------------------------------------


class _NotifySubscription(_SubscriptionBase):
    """A counter bumped by the listener; ``wait`` returns as soon as it moved since the last wait."""

    def __init__(self, listener: NotifyListener, job_id: str, fallback_seconds: float,
                 poll_seconds: float) -> None:
        self.listener = listener
        self.job_id = job_id
        self.fallback_seconds = fallback_seconds
        self.poll_seconds = poll_seconds
        self._cond = threading.Condition()
        self._signals = 0
        self._seen = 0
        self._closed = False

    def signal(self) -> None:
        with self._cond:
            self._signals += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        bound = self.fallback_seconds if self.listener.connected else self.poll_seconds
        with self._cond:
            if self._signals == self._seen:
                self._cond.wait(max(min(timeout, bound), 0.0))
            signalled = self._signals != self._seen
            self._seen = self._signals
        return signalled or bound <= timeout

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.listener.unregister(self.job_id, self)


class NotifyListener:
    """One LISTEN connection and its dispatch thread; shared by every watcher on the same database."""

    def __init__(
        self,
        conninfo: str,
        channel: str = JOB_CHANNEL,
        *,
        backoff_initial: float = 0.25,
        backoff_max: float = 15.0,
        tick_seconds: float = 1.0,
        health_check_seconds: float = 30.0,
    ) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.tick_seconds = tick_seconds
        self.health_check_seconds = health_check_seconds
        self.connects = 0
        self._lock = threading.Lock()
        self._waiters: dict[str, set[_NotifySubscription]] = {}
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backend_pid: int | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the LISTEN connection (lets tests kill it to check reconnects)."""
        return self._backend_pid

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="agentic-job-listener", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def register(self, job_id: str, waiter: _NotifySubscription) -> None:
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)

    def unregister(self, job_id: str, waiter: _NotifySubscription) -> None:
        with self._lock:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[job_id]

    def waiting(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def dispatch(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for waiter in waiters:
            waiter.signal()

    def _wake_all(self) -> None:
        with self._lock:
            waiters = [w for group in self._waiters.values() for w in group]
        for waiter in waiters:
            waiter.signal()

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            connects = self.connects
            try:
                self._listen()
            except Exception as exc:  # any failure: log, back off, reconnect
                log.warning("job listener connection lost (%s); reconnecting in %.1fs", type(exc).__name__, delay)
            finally:
                self._connected.clear()
                self._backend_pid = None
                self._wake_all()  # waiters switch to polling until we are back
            if self.connects != connects:  # it was up for a while: start the backoff afresh
                delay = self.backoff_initial
            if self._stop.wait(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(delay * 2, self.backoff_max)

    def _listen(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._backend_pid = conn.info.backend_pid
            self.connects += 1
            self._connected.set()
            self._wake_all()  # anything sent while we were away is lost: make everyone re-read once
            idle = 0.0
            while not self._stop.is_set():
                received = False
                for notify in conn.notifies(timeout=self.tick_seconds):
                    received = True
                    self.dispatch(notify.payload)
                idle = 0.0 if received else idle + self.tick_seconds
                if idle >= self.health_check_seconds:  # a silently dead socket shows up here
                    conn.execute("SELECT 1")
                    idle = 0.0


class NotifyJobWatcher:
    def __init__(self, listener: NotifyListener, *, fallback_seconds: float = DEFAULT_FALLBACK_SECONDS,
                 poll_seconds: float = 0.2) -> None:
        self.listener = listener
        self.fallback_seconds = fallback_seconds
        self.poll_seconds = poll_seconds

    def subscribe(self, job_id: str) -> _NotifySubscription:
        self.listener.start()
        subscription = _NotifySubscription(self.listener, job_id, self.fallback_seconds, self.poll_seconds)
        self.listener.register(job_id, subscription)
        return subscription

    def wait(self, job_id: str, timeout: float) -> bool:
        with self.subscribe(job_id) as subscription:
            return subscription.wait(timeout)


_listeners: dict[tuple[str, type[NotifyListener]], NotifyListener] = {}
_listeners_lock = threading.Lock()
_Listener = TypeVar("_Listener", bound="NotifyListener")


def libpq_conninfo(url: URL) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a libpq URI (with the password, for connecting)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def shared_listener(url: URL) -> NotifyListener:
    """The process's job-change listener for ``url``'s database, created on first use."""
    return shared_listener_of(url, NotifyListener)


def shared_listener_of(url: URL, kind: type[_Listener]) -> _Listener:
    """The process's listener of ``kind`` for ``url``'s database, created on first use.

    NOTIFY channels are per database, so URLs differing only in ``options`` (e.g. the search_path) share
    one listener and one connection.
    """
    key = url.set(drivername="postgresql", query={k: v for k, v in url.query.items() if k != "options"})
    identity = (key.render_as_string(hide_password=False), kind)
    with _listeners_lock:
        listener = _listeners.get(identity)
        if listener is None:
            listener = _listeners[identity] = kind(libpq_conninfo(url))
        return cast(_Listener, listener)


def stop_listeners() -> None:
    """Stop every shared listener (tests and orderly shutdown; daemon threads otherwise die with the process)."""
    with _listeners_lock:
        listeners = list(_listeners.values())
        _listeners.clear()
    for listener in listeners:
        listener.stop()


def watcher_for(engine: Engine, *, poll_seconds: float, listen_url: str | None = None,
                fallback_seconds: float = DEFAULT_FALLBACK_SECONDS) -> JobWatcher:
    """LISTEN/NOTIFY on PostgreSQL, polling elsewhere.

    ``listen_url`` is a direct (unpooled) URL of the same database, for when ``engine`` goes through a
    transaction-mode pooler, which does not deliver notifications.
    """
    if engine.dialect.name == "postgresql":
        url = make_url(listen_url) if listen_url else engine.url
        return NotifyJobWatcher(shared_listener(url), fallback_seconds=max(fallback_seconds, poll_seconds),
                                poll_seconds=poll_seconds)
    return PollingJobWatcher(poll_seconds)


__all__ = [
    "DEFAULT_FALLBACK_SECONDS",
    "JobWatcher",
    "NotifyJobWatcher",
    "NotifyListener",
    "PollingJobWatcher",
    "Subscription",
    "libpq_conninfo",
    "shared_listener",
    "shared_listener_of",
    "stop_listeners",
    "watcher_for",
]
