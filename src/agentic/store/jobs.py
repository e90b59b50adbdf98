"""The job store: every state change is one compare-and-set UPDATE, so concurrent writers cannot both win.

A transition returns the row it wrote (``UPDATE … RETURNING``), or None when the compare-and-set did not
apply, so callers never read the row back (one round trip, and the row is the one written).

On PostgreSQL each write also sends ``NOTIFY agentic_jobs, '<job id>'`` in the same transaction, so
watchers (the SSE route) wake when the row changes instead of polling it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.dml import Update

from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import ALLOWED_FROM, TERMINAL_STATUSES, Job, JobKind, JobStatus
from agentic.domain.llm import Usage
from agentic.store import counts
from agentic.store.cursor import InvalidCursor, decode_cursor, encode_cursor
from agentic.store.tables import JobRow, utcnow

JOB_CHANNEL = "agentic_jobs"
MAX_PAGE_SIZE = 100

_T = JobRow.__table__  # type: ignore[attr-defined]
_INSERT = _T.insert()
# The hot reads, built once: building a SELECT and its cache key on every call cost more than the
# PostgreSQL round trip itself (a poll's read went from ~550 to ~380 us; BENCHMARKS.md, F10).
_BY_ID = select(_T).where(_T.c.id == bindparam("job_id"))
_BY_ID_AND_OWNER = _BY_ID.where(_T.c.user_id == bindparam("user_id"))
_CANCEL_STATE = select(_T.c.status, _T.c.cancel_requested_at).where(_T.c.id == bindparam("job_id"))
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""

    def __init__(self, job: Job) -> None:
        super().__init__("this Idempotency-Key was already used for a different request")
        self.job = job


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_cursor: str | None


def new_job_id() -> str:
    """128 random bits: unguessable, URL-safe, and usable as the Inngest event id."""
    return "job_" + secrets.token_urlsafe(16)


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # On PostgreSQL a single statement needs no BEGIN/COMMIT around it: autocommit halves the round
        # trips of every read and write. SQLite keeps explicit transactions (faster there).
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine

    # ---- creation and reads -------------------------------------------------------------------

    def create(
        self,
        *,
        kind: JobKind,
        user_id: str,
        request: Mapping[str, Any],
        model: str | None = None,
        provider: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a pending job; returns (job, created).

        With an idempotency key, a second create for the same (user, key) returns the first job and
        ``created=False``; if the request differs, :class:`IdempotencyConflict` is raised.
        """
        now = utcnow()
        job_id = new_job_id()
        values: dict[str, Any] = {
            "id": job_id, "kind": kind.value, "user_id": user_id, "status": JobStatus.PENDING.value,
            "provider": provider, "model": model, "request": clean_json(dict(request)), "partial_output": "",
            "attempts": 0, "idempotency_key": idempotency_key, "created_at": now, "updated_at": now,
        }
        if idempotency_key is None:
            # Nothing can be watching a job that did not exist yet: no NOTIFY, and no need to read it back.
            with self._single.begin() as conn:
                conn.execute(_INSERT, values)
            return _to_job(values), True
        with self.engine.begin() as conn:
            insert = self._insert_ignoring_duplicates(conn).values(**values)
            # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
            returned = conn.execute(insert.on_conflict_do_nothing(
                index_elements=["user_id", "idempotency_key"]).returning(*_T.c)).first()
            inserted = returned is not None
            row = returned if returned is not None else conn.execute(select(_T).where(
                _T.c.user_id == user_id, _T.c.idempotency_key == idempotency_key)).one()
        job = _to_job(row._mapping)
        if not inserted and _canonical(job.request) != _canonical(values["request"]):
            raise IdempotencyConflict(job)
        return job, inserted

    def get(self, job_id: str, *, user_id: str | None = None) -> Job | None:
        """The job, or None. With ``user_id``, another user's job is None too (no existence leak)."""
        if "\x00" in job_id:  # no id holds one; PostgreSQL would refuse the query rather than find nothing
            return None
        with self._single.connect() as conn:
            return self._get(conn, job_id, user_id=user_id)

    def list_for_owner(
        self, user_id: str, *, status: JobStatus | None = None, limit: int = 20, cursor: str | None = None,
    ) -> JobPage:
        """The owner's jobs, newest first, keyset-paginated (stable under inserts)."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query: Select[Any] = select(_T).where(_T.c.user_id == user_id)
        if status is not None:
            query = query.where(_T.c.status == status.value)
        if cursor is not None:
            created_at, job_id = decode_cursor(cursor)
            query = query.where(tuple_(_T.c.created_at, _T.c.id) < tuple_(created_at, job_id))
        query = query.order_by(_T.c.created_at.desc(), _T.c.id.desc()).limit(limit + 1)
        with self._single.connect() as conn:
            rows = conn.execute(query).all()
        items = [_to_job(r._mapping) for r in rows[:limit]]
        more = len(rows) > limit
        return JobPage(items=items, next_cursor=encode_cursor(items[-1]) if more and items else None)

    # ---- guarded transitions ------------------------------------------------------------------

    def start(self, job_id: str) -> Job | None:
        """pending -> processing, counting the attempt. Refused once cancellation was requested."""
        now = utcnow()
        return self._transition(
            job_id, JobStatus.PROCESSING,
            {"started_at": now, "attempts": _T.c.attempts + 1},
            extra_where=_T.c.cancel_requested_at.is_(None),
        )

    def save_result(self, job_id: str, response: Mapping[str, Any], usage: Usage | None = None) -> bool:
        """Store the provider's response on a processing job (``complete`` then makes it final).

        The output lives in the row, not in an Inngest step's memo, which must stay small.
        """
        # A response supersedes the errors that earlier attempts noted.
        values: dict[str, Any] = {"response": clean_json(dict(response)), "updated_at": utcnow(),
                                  "error_code": None, "error_message": None}
        if usage is not None:
            values.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                          total_tokens=usage.total_tokens)
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value).values(**values)
        return self._write(stmt, job_id)

    def complete(self, job_id: str, response: Mapping[str, Any] | None = None, usage: Usage | None = None
                 ) -> Job | None:
        """processing -> completed (with the response, unless ``save_result`` stored it already).

        A cancelled or failed job stays as it is: the update applies only to a processing row, and never to
        one whose cancellation was requested (that request was answered 202: the job must end cancelled).
        """
        values: dict[str, Any] = {"finished_at": utcnow(), "error_code": None, "error_message": None}
        if response is not None:
            values["response"] = clean_json(dict(response))
        if usage is not None:
            values.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                          total_tokens=usage.total_tokens)
        return self._transition(job_id, JobStatus.COMPLETED, values, extra_where=_T.c.cancel_requested_at.is_(None))

    def fail(self, job_id: str, code: ErrorCode, message: str, *, release_idempotency_key: bool = False
             ) -> Job | None:
        """pending | processing -> failed with an error code and message.

        ``release_idempotency_key`` frees the key of a job that never got queued, so the client's retry
        with the same Idempotency-Key creates a fresh job instead of replaying the failure.
        """
        values: dict[str, Any] = {"error_code": code, "error_message": clean_text(message[:2000]),
                                  "finished_at": utcnow()}
        if release_idempotency_key:
            values["idempotency_key"] = None
        return self._transition(job_id, JobStatus.FAILED, values)

    def cancel(self, job_id: str, *, response: Mapping[str, Any] | None = None) -> Job | None:
        """pending | processing -> cancelled (keeping whatever partial output there is)."""
        now = utcnow()
        values: dict[str, Any] = {"finished_at": now,
                                  "cancel_requested_at": func.coalesce(_T.c.cancel_requested_at, now)}
        if response is not None:
            values["response"] = clean_json(dict(response))
        return self._transition(job_id, JobStatus.CANCELLED, values)

    def finalize_cancelled(self, job_id: str, response: Mapping[str, Any], text: str) -> bool:
        """Attach the stopped run's partial response to a job cancelled while it streamed.

        The cancel may land before the run's last progress write (which only applies while processing);
        ``text`` is everything the run streamed, so nothing generated before the stop is lost.
        """
        stmt = update(_T).where(
            _T.c.id == job_id, _T.c.status == JobStatus.CANCELLED.value, _T.c.response.is_(None),
        ).values(response=clean_json(dict(response)), partial_output=clean_text(text), updated_at=utcnow())
        return self._write(stmt, job_id)

    def request_cancel(self, job_id: str, *, user_id: str | None = None) -> Job | None:
        """Record a cancellation request on a job that is not finished; the job as recorded, or None."""
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status.not_in(_TERMINAL)).values(
            cancel_requested_at=func.coalesce(_T.c.cancel_requested_at, utcnow()), updated_at=utcnow())
        if user_id is not None:
            stmt = stmt.where(_T.c.user_id == user_id)
        return self._write_returning(stmt, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        """True when cancellation was requested or the job already ended (so work should stop)."""
        with self._single.connect() as conn:
            row = conn.execute(_CANCEL_STATE, {"job_id": job_id}).first()
        return row is None or row.cancel_requested_at is not None or row.status in _TERMINAL

    # ---- progress -----------------------------------------------------------------------------

    def record_attempt(self, job_id: str) -> bool:
        """Count one more attempt at the provider call of a processing job."""
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value).values(
            attempts=_T.c.attempts + 1, updated_at=utcnow())
        return self._write(stmt, job_id)

    def reset_progress(self, job_id: str) -> bool:
        """Clear the partial output, so a retried attempt does not repeat the text of the one before."""
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value).values(
            partial_output="", updated_at=utcnow())
        return self._write(stmt, job_id)

    def truncate_progress(self, job_id: str, length: int) -> bool:
        """Keep the first ``length`` characters of the partial output (a retried segment of a long answer
        restarts from the text its earlier segments committed)."""
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value,
                                func.length(_T.c.partial_output) > length).values(
            partial_output=func.substr(_T.c.partial_output, 1, length), updated_at=utcnow())
        return self._write(stmt, job_id)

    def append_progress(self, job_id: str, text_delta: str) -> bool:
        """Append streamed text to a processing job (server-side concatenation: O(delta) per write)."""
        if not text_delta:
            return False
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value).values(
            partial_output=_T.c.partial_output + clean_text(text_delta), updated_at=utcnow())
        return self._write(stmt, job_id)

    def note_error(self, job_id: str, code: ErrorCode, message: str) -> bool:
        """Remember the last error of a processing job (it stays processing: a retry may still succeed).

        When retries run out, the failure handler fails the job with this code and message.
        """
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status == JobStatus.PROCESSING.value).values(
            error_code=code, error_message=clean_text(message[:2000]), updated_at=utcnow())
        return self._write(stmt, job_id)

    # ---- maintenance --------------------------------------------------------------------------

    def delete_finished_batch(self, older_than: datetime, batch_size: int) -> int:
        """Delete up to ``batch_size`` finished jobs whose finish time is before ``older_than``.

        Never touches a pending or processing job. On PostgreSQL the batch skips rows locked by others,
        so cleanup never waits on (or blocks) live writers for long.
        """
        victims = (
            select(_T.c.id)
            .where(_T.c.status.in_(_TERMINAL), _T.c.finished_at < older_than)
            .limit(batch_size)
        )
        if self._postgres:
            # Oldest first, skipping rows live writers hold. SQLite gets no ORDER BY: its plan would sort
            # every expired row on every batch (quadratic), and any expired rows will do.
            victims = victims.order_by(_T.c.finished_at).with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            return conn.execute(delete(_T).where(_T.c.id.in_(victims.scalar_subquery()))).rowcount

    def fail_stuck(self, older_than: datetime, *, message: str | None = None) -> list[Job]:
        """Fail jobs left ``processing`` with no change since ``older_than``; returns them as written.

        The same compare-and-set and the same notification as :meth:`fail`, for every stuck row at once.
        """
        message = message or "the job stopped making progress and was failed by the stuck-job sweep"
        now = utcnow()
        stmt = (
            update(_T)
            .where(_T.c.status == JobStatus.PROCESSING.value, _T.c.updated_at < older_than)
            .values(status=JobStatus.FAILED.value, error_code=ErrorCode.STUCK.value, error_message=message,
                    finished_at=now, updated_at=now)
        )
        return self._write_all(stmt)

    def fail_lost_pending(self, older_than: datetime) -> list[Job]:
        """Fail jobs still ``pending`` since before ``older_than`` (no run ever started them); the rows written."""
        now = utcnow()
        stmt = (
            update(_T)
            .where(_T.c.status == JobStatus.PENDING.value, _T.c.created_at < older_than)
            .values(status=JobStatus.FAILED.value, error_code=ErrorCode.QUEUE_LOST.value,
                    error_message="the job was never started: its event was not accepted or its run was lost",
                    finished_at=now, updated_at=now)
        )
        return self._write_all(stmt)

    def counts_by_status(self) -> dict[tuple[str, str], int]:
        """(kind, status) -> number of jobs, for metrics: read from the trigger-kept counters, so the
        cost does not grow with the table (store/counts.py)."""
        with self._single.connect() as conn:
            return counts.read(conn)

    def ping(self) -> None:
        with self._single.connect() as conn:
            conn.execute(text("SELECT 1"))

    # ---- internals ----------------------------------------------------------------------------

    def _transition(
        self, job_id: str, target: JobStatus, values: Mapping[str, Any], *, extra_where: Any = None,
    ) -> Job | None:
        allowed = [s.value for s in ALLOWED_FROM[target]]
        stmt = update(_T).where(_T.c.id == job_id, _T.c.status.in_(allowed))
        if extra_where is not None:
            stmt = stmt.where(extra_where)
        return self._write_returning(stmt.values(status=target.value, updated_at=utcnow(), **values), job_id)

    def _write_returning(self, stmt: Update, job_id: str) -> Job | None:
        """Run a guarded UPDATE of one row; the row as written, or None when the guard did not match."""
        written = self._write_all(stmt)
        return written[0] if written else None

    def _write_all(self, stmt: Update) -> list[Job]:
        """Run a guarded UPDATE returning every row it wrote; on PostgreSQL each row's NOTIFY rides on the
        same statement (RETURNING pg_notify), delivered when it commits."""
        if self._postgres:
            with self._single.connect() as conn:
                rows = conn.execute(stmt.returning(*_T.c, func.pg_notify(JOB_CHANNEL, _T.c.id))).all()
        else:
            with self.engine.begin() as conn:
                rows = conn.execute(stmt.returning(*_T.c)).all()
        return [_to_job(row._mapping) for row in rows]

    def _write(self, stmt: Update, job_id: str) -> bool:
        """Run a guarded UPDATE; says whether it applied. On PostgreSQL the NOTIFY rides on the same
        single autocommit statement (RETURNING pg_notify), delivered when it commits."""
        if self._postgres:
            with self._single.connect() as conn:
                return conn.execute(stmt.returning(func.pg_notify(JOB_CHANNEL, _T.c.id))).first() is not None
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def _insert_ignoring_duplicates(self, conn: Connection) -> Any:
        # Imported here: loading a dialect SQLAlchemy does not use costs start-up time (cold starts).
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(_T)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(_T)

    @staticmethod
    def _get(conn: Connection, job_id: str, *, user_id: str | None = None) -> Job | None:
        if user_id is None:
            row = conn.execute(_BY_ID, {"job_id": job_id}).first()
        else:
            row = conn.execute(_BY_ID_AND_OWNER, {"job_id": job_id, "user_id": user_id}).first()
        return _to_job(row._mapping) if row is not None else None


def clean_text(text: str) -> str:
    """PostgreSQL text and JSONB cannot hold NUL; a provider may still send one. Keep the rest."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def _to_job(row: Mapping[str, Any] | RowMapping) -> Job:
    return Job.model_validate(dict(row))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


__all__ = ["JOB_CHANNEL", "IdempotencyConflict", "InvalidCursor", "JobPage", "JobStore", "new_job_id"]

