"""JobStore on SQLite and PostgreSQL: guarded transitions, races, idempotency, paging, cleanup."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import Job, JobKind, JobStatus
from agentic.domain.llm import Usage
from agentic.store.jobs import IdempotencyConflict, InvalidCursor, JobStore
from agentic.store.tables import JobRow, utcnow

T = JobRow.__table__  # type: ignore[attr-defined]
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def new_job(store: JobStore, user: str = "alice", **kw: object) -> Job:
    job, created = store.create(kind=JobKind.GENERATE, user_id=user, request=REQUEST, model="m", **kw)  # type: ignore[arg-type]
    assert created
    return job


def status_of(store: JobStore, job_id: str) -> JobStatus:
    job = store.get(job_id)
    assert job is not None
    return job.status


def at(store: JobStore, status: JobStatus) -> Job:
    """A job driven to ``status`` through the allowed path."""
    job = new_job(store)
    if status is JobStatus.PENDING:
        return job
    if status is JobStatus.CANCELLED:
        assert store.cancel(job.id)
        return job
    if status is JobStatus.FAILED:
        assert store.fail(job.id, ErrorCode.INTERNAL, "boom")
        return job
    assert store.start(job.id)
    if status is JobStatus.COMPLETED:
        assert store.complete(job.id, {"content": "done"})
    return job


# ---- creation ----------------------------------------------------------------------------------

def test_create_makes_a_pending_job_with_an_unguessable_id(store: JobStore) -> None:
    a, b = new_job(store), new_job(store)
    assert a.status is JobStatus.PENDING and a.attempts == 0 and a.partial_output == ""
    assert a.id != b.id and a.id.startswith("job_") and len(a.id) >= 24
    assert a.created_at.tzinfo is not None and a.request == REQUEST


def test_create_with_the_same_idempotency_key_returns_the_first_job(store: JobStore) -> None:
    first, created = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST, idempotency_key="k1")
    again, created_again = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST,
                                        idempotency_key="k1")
    other_user, created_other = store.create(kind=JobKind.GENERATE, user_id="bob", request=REQUEST,
                                             idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    assert created_other and other_user.id != first.id


def test_reusing_an_idempotency_key_for_another_request_is_a_conflict(store: JobStore) -> None:
    first, _ = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST, idempotency_key="k1")
    with pytest.raises(IdempotencyConflict) as caught:
        store.create(kind=JobKind.GENERATE, user_id="alice", request={**REQUEST, "model": "other"},
                     idempotency_key="k1")
    assert caught.value.job.id == first.id


def test_idempotent_create_under_concurrency_makes_one_job(store: JobStore) -> None:
    def create(_: int) -> tuple[str, bool]:
        job, created = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST,
                                    idempotency_key="same-key")
        return job.id, created

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, range(48)))
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(T)).scalar_one() == 1


# ---- transitions -------------------------------------------------------------------------------

ALL = list(JobStatus)
ALLOWED = {
    (JobStatus.PENDING, JobStatus.PROCESSING), (JobStatus.PROCESSING, JobStatus.COMPLETED),
    (JobStatus.PENDING, JobStatus.FAILED), (JobStatus.PROCESSING, JobStatus.FAILED),
    (JobStatus.PENDING, JobStatus.CANCELLED), (JobStatus.PROCESSING, JobStatus.CANCELLED),
}


def move(store: JobStore, job_id: str, target: JobStatus) -> Job | None:
    """The transition to ``target``: the row it wrote, or None when refused."""
    moves: dict[JobStatus, Callable[[], Job | None]] = {
        JobStatus.PROCESSING: lambda: store.start(job_id),
        JobStatus.COMPLETED: lambda: store.complete(job_id, {"content": "ok"}, Usage.of(3, 4)),
        JobStatus.FAILED: lambda: store.fail(job_id, ErrorCode.UPSTREAM_ERROR, "boom"),
        JobStatus.CANCELLED: lambda: store.cancel(job_id),
        JobStatus.PENDING: lambda: None,  # nothing moves a job back to pending
    }
    return moves[target]()


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_each_transition_is_allowed_or_refused(store: JobStore, current: JobStatus, target: JobStatus) -> None:
    job = at(store, current)
    before = store.get(job.id)
    applied = move(store, job.id, target)
    after = store.get(job.id)
    assert before is not None and after is not None
    if (current, target) in ALLOWED:
        assert applied is not None and after.status is target
        assert applied == after  # the transition returned the row as it wrote it: nothing to read back
        assert after.updated_at >= before.updated_at
    else:
        assert not applied
        assert after == before  # a refused transition changes nothing at all


def test_terminal_jobs_record_finish_time_and_outcome(store: JobStore) -> None:
    done = at(store, JobStatus.PROCESSING)
    assert store.complete(done.id, {"content": "ok"}, Usage.of(3, 4))
    job = store.get(done.id)
    assert job is not None and job.finished_at is not None and job.started_at is not None
    assert (job.prompt_tokens, job.completion_tokens, job.total_tokens) == (3, 4, 7)
    assert job.response == {"content": "ok"} and job.attempts == 1

    failed = at(store, JobStatus.PROCESSING)
    store.fail(failed.id, ErrorCode.RATE_LIMITED, "slow down")
    job = store.get(failed.id)
    assert job is not None and (job.error_code, job.error_message) == ("rate_limited", "slow down")


def test_start_is_refused_once_cancellation_was_requested(store: JobStore) -> None:
    job = new_job(store)
    assert store.request_cancel(job.id)
    assert not store.start(job.id)
    assert status_of(store, job.id) is JobStatus.PENDING
    assert store.cancel_requested(job.id)


def test_request_cancel_is_refused_for_terminal_and_foreign_jobs(store: JobStore) -> None:
    done = at(store, JobStatus.COMPLETED)
    assert not store.request_cancel(done.id)
    mine = new_job(store, user="alice")
    assert not store.request_cancel(mine.id, user_id="mallory")
    assert store.request_cancel(mine.id, user_id="alice")


def test_failing_an_unqueued_job_can_release_its_idempotency_key(store: JobStore) -> None:
    job, _ = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST, idempotency_key="k")
    assert store.fail(job.id, ErrorCode.QUEUE_UNAVAILABLE, "down", release_idempotency_key=True)
    retry, created = store.create(kind=JobKind.GENERATE, user_id="alice", request=REQUEST, idempotency_key="k")
    assert created and retry.id != job.id


RACE_THREADS = 24


@pytest.mark.parametrize("round_", range(3))
def test_racing_complete_fail_and_cancel_has_exactly_one_winner(store: JobStore, round_: int) -> None:
    job = at(store, JobStatus.PROCESSING)
    barrier = threading.Barrier(RACE_THREADS)
    actions: list[tuple[JobStatus, Callable[[], Job | None]]] = []
    for i in range(RACE_THREADS):
        kind = i % 3
        if kind == 0:
            actions.append((JobStatus.COMPLETED, lambda i=i: store.complete(job.id, {"content": f"by {i}"})))
        elif kind == 1:
            actions.append((JobStatus.FAILED, lambda i=i: store.fail(job.id, ErrorCode.UPSTREAM_ERROR, f"by {i}")))
        else:
            actions.append((JobStatus.CANCELLED, lambda: store.cancel(job.id)))

    def run(action: tuple[JobStatus, Callable[[], Job | None]]) -> tuple[JobStatus, Job | None]:
        barrier.wait()
        return action[0], action[1]()

    with ThreadPoolExecutor(max_workers=RACE_THREADS) as pool:
        results = list(pool.map(run, actions))
    winners = [target for target, applied in results if applied is not None]
    assert len(winners) == 1
    final = store.get(job.id)
    assert final is not None and final.status is winners[0]
    # The row is consistent with the winner, with nothing of the losers mixed in.
    if final.status is JobStatus.COMPLETED:
        assert final.response is not None and final.error_code is None
    elif final.status is JobStatus.FAILED:
        assert final.error_code == "upstream_error" and final.response is None
    else:
        assert final.response is None and final.error_code is None and final.cancel_requested_at is not None
    assert final.finished_at is not None


def test_racing_starts_count_one_attempt(store: JobStore) -> None:
    job = new_job(store)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: store.start(job.id), range(12)))
    assert sum(result is not None for result in results) == 1
    final = store.get(job.id)
    assert final is not None and final.attempts == 1


# ---- progress ----------------------------------------------------------------------------------

def test_progress_appends_only_while_processing(store: JobStore) -> None:
    job = new_job(store)
    assert not store.append_progress(job.id, "too early")
    store.start(job.id)
    for piece in ["Hel", "lo", ", world"]:
        assert store.append_progress(job.id, piece)
    current = store.get(job.id)
    assert current is not None and current.partial_output == "Hello, world"
    assert store.reset_progress(job.id)
    current = store.get(job.id)
    assert current is not None and current.partial_output == ""
    store.cancel(job.id)
    assert not store.append_progress(job.id, "after the end")


def test_concurrent_appends_lose_nothing(store: JobStore) -> None:
    job = at(store, JobStatus.PROCESSING)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: store.append_progress(job.id, "x"), range(80)))
    current = store.get(job.id)
    assert current is not None and current.partial_output == "x" * 80


def test_note_error_and_record_attempt_keep_the_job_processing(store: JobStore) -> None:
    job = at(store, JobStatus.PROCESSING)
    assert store.note_error(job.id, ErrorCode.RATE_LIMITED, "429")
    assert store.record_attempt(job.id)
    current = store.get(job.id)
    assert current is not None and current.status is JobStatus.PROCESSING
    assert (current.error_code, current.attempts) == ("rate_limited", 2)


# ---- reads ---------------------------------------------------------------------------------------

def test_get_hides_other_users_jobs(store: JobStore) -> None:
    job = new_job(store, user="alice")
    assert store.get(job.id, user_id="alice") is not None
    assert store.get(job.id, user_id="bob") is None
    assert store.get("job_missing", user_id="alice") is None


def test_list_pages_newest_first_without_gaps_or_repeats(store: JobStore) -> None:
    ids = [new_job(store, user="alice").id for _ in range(7)]
    new_job(store, user="bob")
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_for_owner("alice", limit=3, cursor=cursor)
        seen.extend(j.id for j in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))


def test_list_filters_by_status(store: JobStore) -> None:
    done = at(store, JobStatus.COMPLETED)
    at(store, JobStatus.PENDING)
    page = store.list_for_owner("alice", status=JobStatus.COMPLETED)
    assert [j.id for j in page.items] == [done.id]


def test_a_forged_cursor_is_refused(store: JobStore) -> None:
    with pytest.raises(InvalidCursor):
        store.list_for_owner("alice", cursor="not-a-cursor!!")


def test_counts_by_status(store: JobStore) -> None:
    at(store, JobStatus.PENDING)
    at(store, JobStatus.PENDING)
    at(store, JobStatus.COMPLETED)
    assert store.counts_by_status() == {("generate", "pending"): 2, ("generate", "completed"): 1}


# ---- maintenance -------------------------------------------------------------------------------

def backdate(store: JobStore, job_id: str, **fields: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(T).where(T.c.id == job_id).values(**fields))


def test_cleanup_deletes_only_old_finished_jobs_in_batches(store: JobStore) -> None:
    old = utcnow() - timedelta(days=10)
    old_finished = []
    for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED) * 2:
        job = at(store, status)
        backdate(store, job.id, finished_at=old, created_at=old)
        old_finished.append(job.id)
    recent = at(store, JobStatus.COMPLETED)
    old_pending = new_job(store)
    old_processing = at(store, JobStatus.PROCESSING)
    backdate(store, old_pending.id, created_at=old, updated_at=old)
    backdate(store, old_processing.id, created_at=old, updated_at=old)

    cutoff = utcnow() - timedelta(days=7)
    batches = []
    while (deleted := store.delete_finished_batch(cutoff, batch_size=4)) > 0:
        batches.append(deleted)
    assert batches == [4, 2]
    for job_id in old_finished:
        assert store.get(job_id) is None
    for survivor in (recent, old_pending, old_processing):
        assert store.get(survivor.id) is not None


def test_stuck_processing_jobs_are_failed_and_others_left_alone(store: JobStore) -> None:
    long_ago = utcnow() - timedelta(hours=5)
    stuck = at(store, JobStatus.PROCESSING)
    backdate(store, stuck.id, updated_at=long_ago)
    busy = at(store, JobStatus.PROCESSING)
    old_pending = new_job(store)
    backdate(store, old_pending.id, updated_at=long_ago)

    failed = store.fail_stuck(utcnow() - timedelta(hours=3))
    assert [job.id for job in failed] == [stuck.id]
    assert failed[0].status is JobStatus.FAILED  # the rows as written
    job = store.get(stuck.id)
    assert job is not None and job.status is JobStatus.FAILED and job.error_code == "stuck"
    assert status_of(store, busy.id) is JobStatus.PROCESSING
    assert status_of(store, old_pending.id) is JobStatus.PENDING


def test_nul_characters_from_a_provider_never_break_a_write(store: JobStore) -> None:
    """PostgreSQL text and JSONB refuse NUL; provider output is stored with U+FFFD in its place."""
    job = at(store, JobStatus.PROCESSING)
    assert store.append_progress(job.id, "a\x00b")
    assert store.note_error(job.id, ErrorCode.STREAM_ERROR, "bad\x00byte")
    assert store.save_result(job.id, {"content": "x\x00y", "nested": ["\x00"]})
    assert store.complete(job.id)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.partial_output == "a\ufffdb"
    assert done.response == {"content": "x\ufffdy", "nested": ["\ufffd"]}


def test_complete_is_refused_once_cancellation_was_requested(store: JobStore) -> None:
    """A cancel answered 202 while store-result runs must win: the completing transition checks the request."""
    job = at(store, JobStatus.PROCESSING)
    assert store.save_result(job.id, {"content": "the answer"})
    assert store.request_cancel(job.id)

    assert not store.complete(job.id)

    assert status_of(store, job.id) is JobStatus.PROCESSING
    assert store.cancel(job.id) and status_of(store, job.id) is JobStatus.CANCELLED


def test_jobs_left_pending_past_the_bound_are_failed_queue_lost(store: JobStore) -> None:
    """The worker died after inserting the row and before recording the failed send: no run will ever
    start the job. The sweep fails it with a code instead of leaving it pending forever."""
    long_ago = utcnow() - timedelta(days=2)
    lost = new_job(store)
    backdate(store, lost.id, created_at=long_ago, updated_at=long_ago)
    waiting = new_job(store)  # a throttled queue: recent, left alone
    old_processing = at(store, JobStatus.PROCESSING)
    backdate(store, old_processing.id, created_at=long_ago)

    failed = store.fail_lost_pending(utcnow() - timedelta(days=1))

    assert [job.id for job in failed] == [lost.id]
    job = store.get(lost.id)
    assert job is not None and job.status is JobStatus.FAILED and job.error_code == ErrorCode.QUEUE_LOST
    assert job.finished_at is not None and not store.start(lost.id)  # a late run cannot revive it
    assert status_of(store, waiting.id) is JobStatus.PENDING
    assert status_of(store, old_processing.id) is JobStatus.PROCESSING


def test_a_database_error_does_not_carry_the_statements_parameters(store: JobStore) -> None:
    """A failed statement's message (logged with its traceback) must not hold a prompt or a key."""
    with pytest.raises(SQLAlchemyError) as error, store.engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE x = :prompt"), {"prompt": "my secret prompt"})

    assert "my secret prompt" not in str(error.value)


def test_truncating_progress_keeps_the_first_characters(store: JobStore) -> None:
    job = at(store, JobStatus.PROCESSING)
    store.append_progress(job.id, "héllo wörld ✓")
    assert store.truncate_progress(job.id, 7)
    assert status_of(store, job.id) is JobStatus.PROCESSING
    current = store.get(job.id)
    assert current is not None and current.partial_output == "héllo w"  # characters, not bytes
    assert not store.truncate_progress(job.id, 7)  # nothing beyond: nothing written
