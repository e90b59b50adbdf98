"""``agentic ask`` against the real app on a live port (mock provider, jobs run by the test's fake executor)."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agentic import cli
from agentic.cli.ask import _JobFollower
from agentic.cli.progress import _Progress
from agentic.client import Job
from agentic.domain.jobs import JobStatus
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.mock import MockLLMRepository
from tests.e2e.live import EVENT_CANCEL, LiveStack, live_stack


@pytest.fixture
def stack(sqlite_url: str) -> Iterator[LiveStack]:
    with live_stack(sqlite_url, hold=True) as live:
        yield live


def ask(stack: LiveStack, *args: str, key: str | None = None, input: str | None = None) -> Result:
    env = {"AGENTIC_URL": stack.url, "AGENTIC_API_KEY": key if key is not None else stack.api_key}
    return CliRunner().invoke(cli.main, ["ask", *args], env=env, input=input, catch_exceptions=False)


def mock_answer(prompt: str, model: str, max_tokens: int | None = None) -> str:
    request = LLMRequest(messages=[Message(role="user", content=prompt)], model=model, max_tokens=max_tokens)
    return MockLLMRepository().generate(request).content


def release_soon(stack: LiveStack, delay: float = 0.4) -> None:
    threading.Timer(delay, stack.release).start()


def test_a_quick_model_answers_directly(stack: LiveStack) -> None:
    result = ask(stack, "What is durable execution?", "--model", "mock-quick-1")
    assert result.exit_code == 0, result.output
    assert mock_answer("What is durable execution?", "mock-quick-1") in result.stdout
    assert "status: completed" in result.stdout
    assert re.search(r"tokens: \d+ prompt \+ \d+ completion = \d+ total", result.stdout)
    assert "answered directly by mock" in result.stdout
    assert stack.events == []  # nothing was queued


def test_a_queued_job_shows_its_status_then_streams_its_text(stack: LiveStack) -> None:
    release_soon(stack)
    result = ask(stack, "Tell me about queues", "--model", "mock-slow-1", "--max-tokens", "40")
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    assert re.match(r"job job_\S+ queued \(model mock-slow-1\)", lines[0])
    expected = mock_answer("Tell me about queues", "mock-slow-1", 40)
    assert expected in out
    order = [out.index("status: pending"), out.index("status: processing"), out.index(expected),
             out.index("status: completed")]
    assert order == sorted(order)
    assert re.search(r"tokens: \d+ prompt \+ \d+ completion = \d+ total · \d+\.\ds", out)
    assert stack.errors == []


def test_the_text_is_streamed_not_printed_at_the_end(stack: LiveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    deltas: list[str] = []
    original = _Progress.add_text

    def spy(self: _Progress, delta: str) -> None:
        if delta:
            deltas.append(delta)
        original(self, delta)

    monkeypatch.setattr(_Progress, "add_text", spy)
    release_soon(stack)
    result = ask(stack, "stream please", "--model", "mock-slow-1", "--max-tokens", "60")
    assert result.exit_code == 0, result.output
    assert len(deltas) > 3  # many SSE deltas, not one final blob
    assert "".join(deltas) == mock_answer("stream please", "mock-slow-1", 60)


def test_ctrl_c_then_yes_cancels_the_job(stack: LiveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_once(monkeypatch)
    result = ask(stack, "never mind", "--model", "mock-slow-1", input="y\n")
    assert result.exit_code == cli.EXIT_INTERRUPTED, result.output
    assert "Cancel job job_" in result.output
    assert "status: cancelled" in result.stdout
    job_id = re.search(r"job (job_\S+) queued", result.stdout).group(1)  # type: ignore[union-attr]
    job = stack.container.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED
    assert EVENT_CANCEL in stack.event_names()


def test_ctrl_c_then_no_keeps_following(stack: LiveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_once(monkeypatch, then=stack.release)
    result = ask(stack, "carry on", "--model", "mock-slow-1", "--max-tokens", "10", input="n\n")
    assert result.exit_code == 0, result.output
    assert "still following" in result.stdout
    assert "status: completed" in result.stdout
    assert EVENT_CANCEL not in stack.event_names()


def interrupt_once(monkeypatch: pytest.MonkeyPatch, then: Any = None) -> None:
    """The first wait for the job raises KeyboardInterrupt, as Ctrl-C would."""
    original = _JobFollower.follow
    calls = {"n": 0}

    def follow(self: _JobFollower) -> Job:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        if then is not None:
            then()
        return original(self)

    monkeypatch.setattr(_JobFollower, "follow", follow)


def test_a_wrong_key_prints_the_problem_and_exits_1(stack: LiveStack) -> None:
    result = ask(stack, "hello", "--model", "mock-quick-1", key="agk_" + "x" * 40)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "(401)" in result.stderr
    assert "code=" in result.stderr
    assert "Traceback" not in result.output


def test_a_validation_error_names_the_field(stack: LiveStack) -> None:
    result = ask(stack, "hello", "--model", "not a model id!")
    assert result.exit_code == 1
    assert "(422)" in result.stderr
    assert "field=model" in result.stderr


def test_no_key_is_a_usage_error(stack: LiveStack) -> None:
    result = CliRunner().invoke(cli.main, ["ask", "hi"], env={"AGENTIC_URL": stack.url, "AGENTIC_API_KEY": None})
    assert result.exit_code == 2
    assert "AGENTIC_API_KEY" in result.output


def test_an_unreachable_server_exits_1() -> None:
    result = CliRunner().invoke(cli.main, ["ask", "hi", "--url", "http://127.0.0.1:9", "--key", "agk_x"])
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr


def test_the_prompt_can_come_from_stdin(stack: LiveStack) -> None:
    result = ask(stack, "-", "--model", "mock-quick-1", input="piped prompt\n")
    assert result.exit_code == 0, result.output
    assert mock_answer("piped prompt\n", "mock-quick-1") in result.stdout


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_spinner_runs_until_text_arrives() -> None:
    out = _Tty()
    progress = _Progress(out, tty=True)
    progress.set_status("pending")
    time.sleep(0.35)
    progress.add_text("Hello")
    progress.add_text(" world")
    shown = out.getvalue()
    assert "pending" in shown and "\r\x1b[K" in shown
    assert shown.endswith("Hello world")
    time.sleep(0.25)
    assert out.getvalue() == shown  # the spinner stopped for good once text streamed
    assert "status:" not in shown  # status lines are for logs; a terminal gets the spinner


def test_a_queued_job_streams_on_postgres_too(postgres_url: str) -> None:
    """On PostgreSQL the SSE route wakes on NOTIFY instead of polling; the client sees the same thing."""
    with live_stack(postgres_url, hold=True) as stack:
        release_soon(stack)
        result = ask(stack, "over NOTIFY", "--model", "mock-slow-1", "--max-tokens", "30")
    assert result.exit_code == 0, result.output
    assert "status: processing" in result.stdout
    assert mock_answer("over NOTIFY", "mock-slow-1", 30) in result.stdout
    assert "status: completed" in result.stdout


def test_a_reset_keeps_the_text_that_still_stands() -> None:
    out = io.StringIO()
    progress = _Progress(out, tty=False)
    progress.add_text("Hello world")
    progress.reset_text(2, 6)  # a retried attempt keeps "Hello " and goes on from there
    progress.add_text("there")
    assert progress.text == "Hello there"
    assert "attempt 2 starts over" in out.getvalue() and out.getvalue().endswith("Hello there")


def test_ask_runs_on_the_client_with_no_http_code_of_its_own() -> None:
    import inspect

    from agentic.cli import ask as ask_module

    source = inspect.getsource(ask_module)
    assert "import httpx" not in source and "SSEDecoder" not in source
    assert "from agentic.client import AgenticClient" in source
