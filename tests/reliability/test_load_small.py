"""The load run of scripts/load at a CI size: 300 generate requests from 16 clients (half retried with their
Idempotency-Key), then 40 SSE clients watching jobs that a fake executor drives to completion through
/api/inngest, against ``agentic serve`` (waitress) on PostgreSQL with a loopback event API.

It asserts the invariants, never timings: every 202 is one job row and one event (event id == job id; an id
sent twice only for a replayed request), no 5xx, every retry returned the same job, every SSE client got
its ``done`` and assembled exactly the stored text.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.support import LoadConfig, load_runner, markdown, run_load


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_a_small_load_run_loses_and_duplicates_nothing(postgres_url: str) -> None:
    # postgres_url skips (saying why) without a server; the runner makes and drops a schema of its own.
    config = LoadConfig(database_url=os.environ["TEST_DATABASE_URL"], requests=300, clients=16, retry_every=2,
                        sse_clients=40, drivers=8, workers=2, threads=64, time_limit=180)

    report = run_load(config)

    assert report.violations == [], markdown(report)
    generate, streams = report.generate, report.streams
    assert generate["answers_202"] == 300 and generate["answers_5xx"] == 0 and generate["transport_errors"] == 0
    assert generate["retried"] == 150 and generate["retries_same_job"] == 150
    assert generate["accepted_jobs"] == generate["job_rows"] == generate["distinct_event_ids"] == 300
    assert generate["events"] == 300 + generate["resent_ids"] and generate["unexplained_duplicates"] == 0
    assert generate["orphans"] == 0
    assert streams["sse_clients"] == streams["done_received"] == streams["done_completed"] == 40
    assert streams["text_matches"] == 40 and streams["runs_completed"] == 40
    summary = markdown(report)
    assert "| answered 202 / 5xx / transport errors | 300 / 0 / 0 |" in summary
    assert "Invariants: all held." in summary


def test_the_load_checks_catch_a_lost_job_a_duplicate_event_and_a_5xx(sqlite_url: str) -> None:
    """The runner's verdicts are only as good as its checks: fed a run with each fault, they report it."""
    from agentic.domain.jobs import JobKind
    from agentic.store.engine import create_db_engine, init_db
    from agentic.store.jobs import JobStore

    runner = load_runner()
    engine = create_db_engine(sqlite_url)
    init_db(engine)
    store = JobStore(engine)
    config = runner.LoadConfig(database_url="unused", requests=5, clients=1, sse_clients=0)
    records = [runner.RequestRecord(i, "u", f"load-tag-{i:05d}", retried=i % 2 == 0) for i in range(4)]
    events = []
    for record in records[:3]:  # the 4th request's job was never stored: a lost job
        job, _ = store.create(kind=JobKind.GENERATE, user_id="u", request={"i": record.index},
                              idempotency_key=record.idempotency_key)
        record.status, record.job_id, record.content_type = 202, job.id, "application/json"
        events.append(runner.ReceivedEvent("llm/generate.request", job.id, {"job_id": job.id, "user_id": "u"},
                                           {}, "/e/k"))
    records[3].status, records[3].job_id, records[3].content_type = 202, "job_lost", "application/json"
    records[0].retry_status, records[0].retry_job_id, records[0].retry_replayed = 202, records[0].job_id, True
    records[2].retry_status = 503  # a retry answered 5xx
    orphan, _ = store.create(kind=JobKind.GENERATE, user_id="u", request={"i": 4}, idempotency_key="load-tag-00004")
    refused = runner.RequestRecord(4, "u", "load-tag-00004", status=503, codes=["503 queue_unavailable"],
                                   refused_job_ids=[orphan.id])  # told it failed, yet left pending
    records.append(refused)
    events.append(events[1])  # job 1 was never retried: its event sent twice is a real duplicate
    report = runner.LoadReport(config)
    stack = runner._Stack(config, "http://unused", ["u"], {"u": "k"}, None, engine, report, runner._Deadline(60))

    runner._check_generate(stack, records, "tag", events, 1.0)
    engine.dispose()

    found = "\n".join(report.violations)
    assert "2 answers were 5xx" in found
    assert "1 jobs answered 202 have no row" in found
    assert "1 jobs answered 202 have no event" in found
    assert "1 job ids were sent more often than they were requested" in found
    assert "1 retries did not return the same job" in found
    assert "1 pending jobs were never answered 202 (orphans)" in found
    assert not report.ok
