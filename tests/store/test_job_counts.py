"""The trigger-kept job counts (store/counts.py) equal a full count of llm_jobs after every kind of write:
each transition, progress writes, idempotent replays, rollbacks, racing writers, cleanup deletions and
the one-time backfill of a database made before the counters existed. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlmodel import SQLModel

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import JobKind
from agentic.store.counts import SLOTS, TRIGGERS
from agentic.store.engine import create_db_engine, init_db
from agentic.store.jobs import JobStore
from agentic.store.tables import ApiKeyRow, JobRow, utcnow

T = JobRow.__table__  # type: ignore[attr-defined]
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def truth(engine: Engine) -> dict[tuple[str, str], int]:
    """What the counters must say: the full GROUP BY the scrape used to run."""
    with engine.connect() as conn:
        rows = conn.execute(select(T.c.kind, T.c.status, func.count()).group_by(T.c.kind, T.c.status))
        return {(kind, status): n for kind, status, n in rows}


def create(store: JobStore, kind: JobKind = JobKind.GENERATE, **kw: object) -> str:
    job, _ = store.create(kind=kind, user_id="alice", request=REQUEST, model="m", **kw)  # type: ignore[arg-type]
    return job.id


def backdate(store: JobStore, job_id: str, **fields: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(T).where(T.c.id == job_id).values(**fields))


def test_counts_follow_every_transition(store: JobStore) -> None:
    engine = store.engine
    assert store.counts_by_status() == {}
    ids = [create(store) for _ in range(6)]
    preview = create(store, JobKind.PREVIEW)
    assert store.counts_by_status() == truth(engine) == {("generate", "pending"): 6, ("preview", "pending"): 1}

    assert store.start(ids[0]) and store.start(ids[1]) and store.start(ids[2]) and store.start(preview)
    assert store.counts_by_status() == truth(engine)
    assert store.complete(ids[0], {"content": "done"})
    assert store.fail(ids[1], ErrorCode.INTERNAL, "boom")            # processing -> failed
    assert store.fail(ids[3], ErrorCode.INTERNAL, "boom")            # pending -> failed
    assert store.cancel(ids[2])                       # processing -> cancelled
    assert store.cancel(ids[4])                       # pending -> cancelled
    assert store.counts_by_status() == truth(engine)

    # Writes that change no status change no count; refused transitions neither.
    assert store.append_progress(preview, "some text")
    assert store.note_error(preview, ErrorCode.INTERNAL, "retrying")
    assert store.record_attempt(preview)
    assert store.request_cancel(ids[5])
    assert not store.complete(ids[3], {"content": "late"})
    assert not store.start(ids[0])
    assert store.counts_by_status() == truth(engine) == {
        ("generate", "completed"): 1, ("generate", "failed"): 2, ("generate", "cancelled"): 2,
        ("generate", "pending"): 1, ("preview", "processing"): 1}

    # The stuck-job sweep fails many rows in one statement.
    backdate(store, preview, updated_at=utcnow() - timedelta(hours=2))
    assert [job.id for job in store.fail_stuck(utcnow() - timedelta(hours=1))] == [preview]
    assert store.counts_by_status() == truth(engine)
    assert store.counts_by_status()[("preview", "failed")] == 1


def test_an_idempotent_replay_is_not_counted_twice(store: JobStore) -> None:
    first = create(store, idempotency_key="k1")
    assert create(store, idempotency_key="k1") == first
    assert store.counts_by_status() == truth(store.engine) == {("generate", "pending"): 1}


def test_a_rolled_back_write_is_not_counted(store: JobStore) -> None:
    create(store)
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        conn.execute(update(T).values(status="processing"))
        conn.execute(T.delete())
        raise RuntimeError("roll back")
    assert store.counts_by_status() == truth(store.engine) == {("generate", "pending"): 1}


def test_cleanup_deletions_take_finished_jobs_out_of_the_counts(store: JobStore) -> None:
    finished = []
    for index in range(9):
        job_id = create(store)
        store.start(job_id)
        if index % 3 == 0:
            store.complete(job_id, {"content": "ok"})
        elif index % 3 == 1:
            store.fail(job_id, ErrorCode.INTERNAL, "boom")
        else:
            store.cancel(job_id)
        finished.append(job_id)
    live = create(store)
    for job_id in finished[:7]:
        backdate(store, job_id, finished_at=utcnow() - timedelta(days=60))
    cutoff = utcnow() - timedelta(days=30)
    assert store.delete_finished_batch(cutoff, 4) == 4
    assert store.counts_by_status() == truth(store.engine)
    assert store.delete_finished_batch(cutoff, 4) == 3
    assert store.counts_by_status() == truth(store.engine)
    assert sum(store.counts_by_status().values()) == 3
    assert store.get(live) is not None


def test_racing_writers_keep_the_counts_exact(store: JobStore) -> None:
    """Threads create, start, finish, cancel, fail and delete overlapping jobs; a lost race changes no count."""
    ids = [create(store, JobKind.GENERATE if i % 2 else JobKind.PREVIEW) for i in range(40)]
    barrier = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(60):
            job_id = rng.choice(ids)
            action = rng.randrange(7)
            if action == 0:
                store.start(job_id)
            elif action == 1:
                store.complete(job_id, {"content": "ok"})
            elif action == 2:
                store.cancel(job_id)
            elif action == 3:
                store.fail(job_id, ErrorCode.INTERNAL, "boom")
            elif action == 4:
                store.append_progress(job_id, "t")
            elif action == 5:
                ids.append(create(store))
            else:  # cleanup, racing the transitions: deletes whatever has finished
                store.delete_finished_batch(utcnow() + timedelta(days=1), 3)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    counts = store.counts_by_status()
    assert counts == truth(store.engine)
    assert 0 < sum(counts.values()) < len(ids)  # some jobs were deleted, and none counted twice


def test_postgres_spreads_writers_over_slots(postgres_url: str) -> None:
    """Concurrent connections write to the slots of their backend pids, not all to one hot row."""
    engine = create_db_engine(postgres_url, pool_size=8)
    init_db(engine)
    store = JobStore(engine)
    barrier = threading.Barrier(8)

    def worker(_: int) -> None:
        with engine.connect():  # hold a connection each, so eight backends write
            barrier.wait()
            for _ in range(5):
                create(store)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    with engine.connect() as conn:
        slots = conn.execute(text("SELECT slot FROM llm_job_counts WHERE n <> 0")).scalars().all()
    engine.dispose()
    assert len(set(slots)) > 1 and all(0 <= slot < 2 * SLOTS for slot in slots)
    assert store.counts_by_status() == {("generate", "pending"): 40}


@pytest.fixture
def old_database(database_url: str) -> Iterator[Engine]:
    """A database as it was before the counters: the jobs tables only, no counter table, no triggers."""
    engine = create_db_engine(database_url, pool_size=10)
    SQLModel.metadata.create_all(engine, tables=[T, ApiKeyRow.__table__])  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


def test_init_db_backfills_an_existing_database_once(old_database: Engine) -> None:
    store = JobStore(old_database)
    for index in range(12):
        job_id = create(store, JobKind.PREVIEW if index % 4 == 0 else JobKind.GENERATE)
        if index % 2:
            store.start(job_id)
        if index % 3 == 0:
            store.cancel(job_id)
    expected = truth(old_database)
    init_db(old_database)
    assert store.counts_by_status() == expected
    init_db(old_database)  # a second run neither recounts into the totals nor doubles them
    assert store.counts_by_status() == expected
    create(store)
    assert store.counts_by_status() == truth(old_database)


def test_init_db_counts_exactly_while_writers_run(old_database: Engine) -> None:
    """Jobs written while the triggers are installed are counted once: by the backfill or by a trigger."""
    store = JobStore(old_database)
    for _ in range(50):
        create(store)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            job_id = create(store)
            store.start(job_id)
            store.complete(job_id, {"content": "ok"})

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        init_db(old_database)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert store.counts_by_status() == truth(old_database)


def test_init_db_installs_every_trigger(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            names = conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'llm_jobs'::regclass "
                                      "AND NOT tgisinternal")).scalars().all()
            assert sorted(names) == sorted(TRIGGERS)
        else:
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all()
            assert sorted(names) == sorted(TRIGGERS[:3])  # SQLite has no TRUNCATE


def test_postgres_truncate_empties_the_counts(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    init_db(engine)
    store = JobStore(engine)
    for _ in range(3):
        create(store)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE llm_jobs"))
    assert store.counts_by_status() == {}
    create(store)
    assert store.counts_by_status() == truth(engine) == {("generate", "pending"): 1}
    engine.dispose()
