"""The runner's pieces the steps rely on: throttled progress writes, throttled cancellation checks, and
the preview text clean-up. Real store on both databases, real OpenRouter repository behind respx; only the
clock is ours to move."""

from __future__ import annotations

import pytest
import respx

from agentic.domain.jobs import JobStatus
from agentic.domain.llm import PREVIEW_MAX_CHARS, PreviewRequest
from agentic.providers.openrouter import OpenRouterRepository
from agentic.runner import CancelWatch, ProgressWriter
from agentic.service.preview import clean_preview, generate_preview
from agentic.store.jobs import JobStore
from tests.functions.conftest import create_generate_job, reload, sent_bodies, sse_chunks, sse_response


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_written_at_most_once_per_interval(store: JobStore) -> None:
    job = create_generate_job(store)
    store.start(job.id)
    clock = Clock()
    writer = ProgressWriter(store, job.id, interval=1.0, clock=clock)

    for token in ["a", "b", "c"]:
        writer.add(token)
    assert reload(store, job).partial_output == ""  # buffered: no write per token

    clock.now += 1.0
    writer.add("d")
    assert reload(store, job).partial_output == "abcd"  # one write for the whole interval

    writer.add("e")
    writer.flush()
    assert reload(store, job).partial_output == "abcde"


def test_cancel_watch_reads_the_row_at_most_once_per_interval(store: JobStore) -> None:
    job = create_generate_job(store)
    store.start(job.id)
    clock = Clock()
    watch = CancelWatch(store, job.id, interval=0.5, clock=clock)

    assert watch() is False
    store.request_cancel(job.id)
    assert watch() is False  # not re-read before the interval
    clock.now += 0.5
    assert watch() is True
    assert reload(store, job).status is JobStatus.PROCESSING  # the watch only reads


@pytest.mark.parametrize("answer, expected", [
    ("Plain summary.", "Plain summary."),
    ('"Quoted summary."', "Quoted summary."),
    ("Preview: the gist.", "The gist."),
    ("**Roadmap** - what ships when.", "What ships when."),
    ("Roadmap: what ships when.", "What ships when."),
    ("Roadmaps are covered here.", "Roadmaps are covered here."),  # a word, not the title repeated
    ("# Heading\n\n- first point\n- second point", "Heading first point second point"),
    ("It's the users' choice.", "It's the users' choice."),
])
def test_clean_preview(answer: str, expected: str) -> None:
    assert clean_preview(answer, "Roadmap") == expected


def test_preview_is_plain_bounded_and_uses_the_preview_model(openrouter: OpenRouterRepository,
                                                             chat_route: respx.Route) -> None:
    chat_route.return_value = sse_response(sse_chunks("Roadmap: ", *["word "] * 200))
    request = PreviewRequest(title="Roadmap", content="c" * (PREVIEW_MAX_CHARS + 1))

    result = generate_preview(openrouter, "openai/preview-model", request)

    assert result.used_ai is True
    assert len(result.preview) <= PREVIEW_MAX_CHARS and result.preview.endswith("…")
    assert not result.preview.lower().startswith("roadmap")
    [sent] = sent_bodies(chat_route)
    assert sent["model"] == "openai/preview-model"


def test_preview_of_only_the_title_falls_back_to_the_content(openrouter: OpenRouterRepository,
                                                             chat_route: respx.Route) -> None:
    chat_route.return_value = sse_response(sse_chunks("**Roadmap**"))
    request = PreviewRequest(title="Roadmap", content="The plan for the year. " * 20)

    result = generate_preview(openrouter, "m", request)

    assert result.used_ai is True
    assert result.preview.startswith("The plan for the year.") and len(result.preview) <= PREVIEW_MAX_CHARS


def test_short_content_never_reaches_the_provider(openrouter: OpenRouterRepository,
                                                  chat_route: respx.Route) -> None:
    result = generate_preview(openrouter, "m", PreviewRequest(title="t", content="x" * PREVIEW_MAX_CHARS))

    assert (result.preview, result.used_ai) == ("x" * PREVIEW_MAX_CHARS, False)
    assert chat_route.call_count == 0
