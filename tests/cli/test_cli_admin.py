"""The operator commands: db init, keys, jobs, cleanup, configuration errors, and start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import respx
from click.testing import CliRunner
from httpx import Response
from sqlalchemy import Engine, inspect, update

from agentic.cli import JOB_STATUSES, main
from agentic.domain.errors import ErrorCode
from agentic.domain.jobs import JobKind, JobStatus
from agentic.store.engine import create_db_engine
from agentic.store.jobs import JobStore
from agentic.store.keys import ApiKeyStore, looks_like_key
from agentic.store.tables import JobRow, utcnow
from tests.cli.cli_support import Invoke, cli_env

_JOBS = JobRow.__table__  # type: ignore[attr-defined]


def _run(database_url: str, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=cli_env(database_url, **env), catch_exceptions=False)
    return result.exit_code, result.output


def _new_job(store: JobStore, user: str = "alice", model: str = "mock-slow-1") -> str:
    job, _ = store.create(kind=JobKind.GENERATE, user_id=user, model=model, provider="mock",
                          request={"messages": [{"role": "user", "content": "hi"}], "model": model})
    return job.id


# ---- db init and keys, on SQLite and PostgreSQL -----------------------------------------------------------


def test_db_init_creates_the_tables_and_can_run_again(database_url: str) -> None:
    for _ in range(2):
        code, output = _run(database_url, "db", "init")
        assert code == 0, output
        assert output.startswith("database ready: ")
    engine = create_db_engine(database_url)
    try:
        assert {"llm_jobs", "api_keys"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_init_never_prints_the_database_password() -> None:
    code, output = _run("postgresql+psycopg://agentic:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=1",
                        "db", "init")
    assert code == 1
    assert "s3cret-pw" not in output
    assert "Traceback" not in output
    assert output.startswith("error: database:")


def test_keys_create_prints_the_key_alone_on_the_last_line_and_it_authenticates(database_url: str) -> None:
    assert _run(database_url, "db", "init")[0] == 0
    code, output = _run(database_url, "keys", "create", "alice", "--label", "laptop")
    assert code == 0, output
    secret = output.rstrip("\n").splitlines()[-1]
    assert looks_like_key(secret)
    assert secret == secret.strip()
    engine = create_db_engine(database_url)
    try:
        key = ApiKeyStore(engine).authenticate(secret)
        assert key is not None
        assert (key.user_id, key.label) == ("alice", "laptop")
        assert key.id in output
    finally:
        engine.dispose()


def test_keys_list_and_revoke(database_url: str) -> None:
    assert _run(database_url, "db", "init")[0] == 0
    alice = _run(database_url, "keys", "create", "alice")[1].splitlines()[-1]
    _run(database_url, "keys", "create", "bob", "-l", "ci")
    engine = create_db_engine(database_url)
    try:
        alice_key = ApiKeyStore(engine).authenticate(alice)
        assert alice_key is not None

        code, listing = _run(database_url, "keys", "list")
        assert code == 0
        assert alice_key.id in listing and "bob" in listing and "ci" in listing
        assert listing.count("active") == 2
        assert alice not in listing  # secrets are never stored, so never listed

        code, only_alice = _run(database_url, "keys", "list", "--user", "alice", "--json")
        rows = [json.loads(line) for line in only_alice.splitlines()]
        assert [(r["id"], r["user_id"], r["active"]) for r in rows] == [(alice_key.id, "alice", True)]

        code, output = _run(database_url, "keys", "revoke", alice_key.id)
        assert code == 0 and f"revoked {alice_key.id}" in output
        assert ApiKeyStore(engine).authenticate(alice) is None
        assert "revoked" in _run(database_url, "keys", "list", "-u", "alice")[1]

        code, output = _run(database_url, "keys", "revoke", alice_key.id)
        assert code == 1
        assert "no active key" in output
    finally:
        engine.dispose()


def test_keys_create_refuses_an_empty_user(db_engine: Engine) -> None:
    result = CliRunner().invoke(main, ["keys", "create", " "], env=cli_env(str(db_engine.url)))
    assert result.exit_code == 2
    assert "must not be empty" in result.output


# ---- jobs ---------------------------------------------------------------------------------------------------


def test_jobs_list_filters_by_user_and_status_and_limits(invoke: Invoke, db_engine: Engine) -> None:
    store = JobStore(db_engine)
    first = _new_job(store, "alice")
    second = _new_job(store, "alice")
    bobs = _new_job(store, "bob", model="mock-slow-2")
    store.start(second)

    everything = invoke("jobs", "list").output
    assert all(job_id in everything for job_id in (first, second, bobs))
    assert everything.index(bobs) < everything.index(first)  # newest first

    alices = invoke("jobs", "list", "--user", "alice").output
    assert first in alices and second in alices and bobs not in alices

    processing = invoke("jobs", "list", "--status", "processing").output
    assert second in processing and first not in processing

    assert len(invoke("jobs", "list", "--json", "-n", "2").output.splitlines()) == 2
    assert invoke("jobs", "list", "--user", "nobody").output.strip() == "no jobs"


def test_jobs_list_rejects_an_unknown_status(db_engine: Engine) -> None:
    result = CliRunner().invoke(main, ["jobs", "list", "--status", "done"], env=cli_env(str(db_engine.url)))
    assert result.exit_code == 2
    assert "pending" in result.output


def test_jobs_show_prints_status_usage_and_output(invoke: Invoke, db_engine: Engine) -> None:
    from agentic.domain.llm import Usage

    store = JobStore(db_engine)
    job_id = _new_job(store)
    store.start(job_id)
    store.complete(job_id, {"id": "r1", "model": "mock-slow-1", "content": "the answer", "provider": "mock"},
                   Usage.of(3, 2))
    result = invoke("jobs", "show", job_id)
    assert result.exit_code == 0
    assert "completed" in result.output
    assert "3 prompt + 2 completion = 5 total" in result.output
    assert result.output.rstrip().endswith("the answer")
    as_json = json.loads(invoke("jobs", "show", job_id, "--json").output)
    assert as_json["id"] == job_id and as_json["status"] == "completed"


def test_jobs_show_unknown_job_fails(invoke: Invoke, db_engine: Engine) -> None:
    result = invoke("jobs", "show", "job_missing")
    assert result.exit_code == 1
    assert "no job with id 'job_missing'" in result.output


def test_jobs_cancel_cancels_a_pending_job_and_sends_the_cancel_event(invoke: Invoke, db_engine: Engine) -> None:
    store = JobStore(db_engine)
    job_id = _new_job(store)
    with respx.mock(assert_all_called=False) as router:
        sent = router.post(url__regex=r"/e/[^/]+$").mock(return_value=Response(200, json={"ids": ["x"],
                                                                                          "status": 200}))
        result = invoke("jobs", "cancel", job_id)
    assert result.exit_code == 0, result.output
    assert f"cancelled {job_id}" in result.output
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.cancel_requested_at is not None
    events = json.loads(sent.calls.last.request.content)
    assert events[0]["name"] == "llm/generate.cancel"
    assert events[0]["data"] == {"job_id": job_id, "user_id": "alice"}


def test_jobs_cancel_of_a_processing_job_records_the_request(invoke: Invoke, db_engine: Engine) -> None:
    store = JobStore(db_engine)
    job_id = _new_job(store)
    store.start(job_id)
    with respx.mock(assert_all_called=False) as router:
        router.post(url__regex=r"/e/[^/]+$").mock(return_value=Response(200, json={"ids": ["x"], "status": 200}))
        result = invoke("jobs", "cancel", job_id)
    assert result.exit_code == 0, result.output
    assert "cancel requested" in result.output
    assert store.cancel_requested(job_id)


def test_jobs_cancel_refuses_finished_and_unknown_jobs(invoke: Invoke, db_engine: Engine) -> None:
    store = JobStore(db_engine)
    job_id = _new_job(store)
    store.start(job_id)
    store.complete(job_id, {"id": "r", "model": "m", "content": "x", "provider": "mock"})
    finished = invoke("jobs", "cancel", job_id)
    assert finished.exit_code == 1
    assert "already completed" in finished.output
    missing = invoke("jobs", "cancel", "job_nope")
    assert missing.exit_code == 1
    assert "no job with id" in missing.output


def test_job_statuses_match_the_domain() -> None:
    assert set(JOB_STATUSES) == {s.value for s in JobStatus}


# ---- cleanup --------------------------------------------------------------------------------------------------


def _age(engine: Engine, job_id: str, **ago: timedelta) -> None:
    values = {column: utcnow() - delta for column, delta in ago.items()}
    with engine.begin() as conn:
        conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(**values))


def test_cleanup_deletes_old_finished_jobs_in_batches_and_fails_stuck_ones(database_url: str) -> None:
    assert _run(database_url, "db", "init")[0] == 0
    engine = create_db_engine(database_url)
    store = JobStore(engine)
    try:
        old = []
        for _ in range(5):
            job_id = _new_job(store)
            store.start(job_id)
            store.complete(job_id, {"id": "r", "model": "m", "content": "x", "provider": "mock"})
            _age(engine, job_id, finished_at=timedelta(days=10))
            old.append(job_id)
        recent = _new_job(store)
        store.start(recent)
        store.fail(recent, ErrorCode.INTERNAL, "boom")
        old_pending = _new_job(store)
        _age(engine, old_pending, created_at=timedelta(days=30), updated_at=timedelta(days=30))
        stuck = _new_job(store)
        store.start(stuck)
        _age(engine, stuck, updated_at=timedelta(hours=5))
        busy = _new_job(store)
        store.start(busy)

        code, output = _run(database_url, "cleanup", JOB_RETENTION_DAYS="7", CLEANUP_BATCH_SIZE="2",
                            STUCK_JOB_MINUTES="60")
        assert code == 0, output
        assert "deleted 5 finished job(s) older than 7 day(s)" in output
        assert "3 batch(es)" in output
        assert "failed 1 stuck job(s)" in output and stuck in output
        assert "failed 1 job(s) never started" in output and old_pending in output

        assert all(store.get(job_id) is None for job_id in old)
        def status_of(job_id: str) -> tuple[JobStatus, str | None]:
            job = store.get(job_id)
            assert job is not None, f"{job_id} was deleted"
            return job.status, job.error_code

        assert status_of(recent)[0] is JobStatus.FAILED  # finished, but within retention
        assert status_of(old_pending) == (JobStatus.FAILED, "queue_lost")  # pending for 30 days: never started
        assert status_of(stuck) == (JobStatus.FAILED, "stuck")
        assert status_of(busy)[0] is JobStatus.PROCESSING  # recently active: not stuck

        code, output = _run(database_url, "cleanup")
        assert "deleted 0 finished job(s)" in output and "failed 0 stuck job(s)" in output
    finally:
        engine.dispose()


# ---- errors an operator can fix --------------------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value"), [
    ("DATABASE_URL", "mysql://somewhere/db"),
    ("JOB_RETENTION_DAYS", "0"),
    ("LLM_PROVIDER", "skynet"),
])
@pytest.mark.parametrize("command", [("db", "init"), ("keys", "list"), ("cleanup",)])
def test_bad_configuration_exits_2_naming_the_variable(sqlite_url: str, variable: str, value: str,
                                                       command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, list(command), env=cli_env(sqlite_url, **{variable: value}))
    assert result.exit_code == 2, result.output
    assert variable in result.stderr
    assert "invalid configuration" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_production_mode_without_a_signing_key_exits_2_for_commands_that_need_inngest(db_engine: Engine) -> None:
    job_id = _new_job(JobStore(db_engine))
    env: dict[str, str | None] = {**cli_env(str(db_engine.url), INNGEST_DEV="0"), "INNGEST_SIGNING_KEY": None}
    result = CliRunner().invoke(main, ["jobs", "cancel", job_id], env=env)
    assert result.exit_code == 2
    assert "INNGEST_SIGNING_KEY" in result.stderr
    # ... while the commands that only need the database still work.
    assert CliRunner().invoke(main, ["jobs", "list"], env=env).exit_code == 0


def test_a_database_without_tables_says_to_run_db_init(sqlite_url: str) -> None:
    code, output = _run(sqlite_url, "jobs", "list")
    assert code == 1
    assert "agentic db init" in output
    assert "Traceback" not in output


def test_importing_the_cli_loads_no_heavy_modules() -> None:
    code = ("import sys, agentic.cli; heavy = [m for m in ('sqlalchemy', 'flask', 'httpx', 'pydantic', 'gunicorn',"
            " 'inngest') if m in sys.modules]; print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
