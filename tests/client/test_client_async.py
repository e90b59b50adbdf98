"""AsyncAgenticClient against the real app served on a loopback port: the same surface as the sync client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agentic.client import (
    AsyncAgenticClient,
    AuthenticationError,
    Completed,
    InvalidRequestError,
    JobFinishedError,
    JobHandle,
    NotFoundError,
    Preview,
    ProviderError,
)
from tests.client.conftest import QUICK, SLOW, mock_answer
from tests.client.faults import AsyncFaultyTransport, Faults
from tests.e2e.live import USER_ID, LiveStack


def connect(stack: LiveStack, faults: Faults | None = None, **options: object) -> AsyncAgenticClient:
    transport = AsyncFaultyTransport(faults) if faults is not None else None
    return AsyncAgenticClient(stack.url, stack.api_key, transport=transport, **options)  # type: ignore[arg-type]


def test_a_queued_job_streams_through_dropped_connections_to_the_exact_text(
        make_stack: Callable[..., LiveStack], database_url: str) -> None:
    stack = make_stack(database_url, mock_tokens_per_second=200.0)
    prompt = "Explain asyncio and durable jobs"
    faults = Faults(cut_streams=2, cut_after=300)

    async def run() -> tuple[str, str]:
        async with connect(stack, faults) as client:
            handle = await client.generate(SLOW, prompt, max_tokens=250)
            assert isinstance(handle, JobHandle)
            text, final = "", ""
            async for event in client.stream(handle.job_id):
                text = event.apply(text)
                if event.job is not None:
                    final = event.job.text
            return text, final

    text, final = asyncio.run(run())
    assert faults.cuts == 2
    assert text == final == mock_answer(prompt, SLOW, 250)


def test_a_generate_retried_after_a_lost_answer_returns_the_same_job(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True)
    faults = Faults(lose_first="POST /api/llm/generate")

    async def run() -> JobHandle:
        async with connect(stack, faults) as client:
            handle = await client.generate(SLOW, "async, once", max_tokens=10)
            assert isinstance(handle, JobHandle)
            return handle

    handle = asyncio.run(run())
    assert faults.lost == 1 and handle.replayed
    page = stack.container.jobs.list_for_owner(USER_ID, status=None, limit=10, cursor=None)
    assert [job.id for job in page.items] == [handle.job_id]


def test_wait_answers_pages_and_errors(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(hold=True)

    async def run() -> None:
        async with connect(stack, max_retries=0) as client:
            quick = await client.generate(QUICK, "quick", max_tokens=5)
            assert isinstance(quick, Completed) and quick.content == mock_answer("quick", QUICK, 5)
            preview = await client.preview("Title", "Short.")
            assert isinstance(preview, Preview) and preview.preview == "Short."

            handles = [await client.generate(SLOW, f"async {i}", max_tokens=8) for i in range(3)]
            ids = [h.job_id for h in handles if isinstance(h, JobHandle)]
            assert [job.id async for job in client.jobs(limit=2)] == list(reversed(ids))

            stack.release()
            job = await client.wait(ids[0], timeout=60)
            assert job.status == "completed" and job.text == mock_answer("async 0", SLOW, 8)

            with pytest.raises(JobFinishedError):
                await client.cancel(ids[0])
            with pytest.raises(NotFoundError):
                await client.job("job_missing")
            with pytest.raises(InvalidRequestError) as invalid:
                await client.generate(SLOW, "x", temperature=9)
            assert invalid.value.field == "temperature"
            with pytest.raises(ProviderError):
                await client.generate(QUICK, "[mock:fail]")
        async with AsyncAgenticClient(stack.url, "agk_" + "y" * 40, max_retries=0) as stranger:
            with pytest.raises(AuthenticationError):
                await stranger.job(ids[0])

    asyncio.run(run())
