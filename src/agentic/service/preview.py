"""Tile previews: content of 250 characters or less is its own preview; longer content is summarised."""

from __future__ import annotations

import re

from agentic.domain.llm import (
    PREVIEW_MAX_CHARS,
    LLMRequest,
    LLMResponse,
    Message,
    PreviewRequest,
    PreviewResult,
)
from agentic.providers.base import LLMProvider
from agentic.service.generation import Handler, Ready

PREVIEW_PROMPT = (
    "Write a preview of the content below in plain text (no markdown, no quotes), at most "
    f"{PREVIEW_MAX_CHARS} characters. It is shown on hover and helps decide whether to open the full "
    "content. Do not repeat the title. Reply with the preview only.\n\nTitle: {title}\n\nContent:\n{content}"
)


def generate_preview(llm: LLMProvider, model: str, request: PreviewRequest) -> PreviewResult:
    """The preview for ``request``, at once."""
    return PREVIEW_HANDLER.run(llm, request, model)


def preview_prompt(request: PreviewRequest, model: str) -> LLMRequest | Ready[PreviewResult]:
    """Short content is its own preview; longer content is summarised by ``model``."""
    if not request.needs_ai:
        return Ready(PreviewResult(preview=request.content, used_ai=False))
    prompt = PREVIEW_PROMPT.format(title=request.title, content=request.content)
    return LLMRequest(messages=[Message(role="user", content=prompt)], model=model, temperature=0.3, max_tokens=120)


def preview_result(request: PreviewRequest, response: LLMResponse) -> PreviewResult:
    # An answer that was nothing but the title (or markup) falls back to the content's own opening.
    preview = shorten(clean_preview(response.content, request.title)) or shorten(request.content)
    return PreviewResult(preview=preview, used_ai=True)


#: The preview job kind's handler.
PREVIEW_HANDLER = Handler(prompt=preview_prompt, result=preview_result)


_MARKUP = re.compile(r"\*\*|__|`+|^\s{0,3}#{1,6}\s+|^\s*(?:[-*+]|\d+[.)])\s+|^\s*>\s?", re.MULTILINE)
_DASHES = "\u2013\u2014"  # en and em dash
_LABEL = re.compile(rf"^(?:preview|summary|tl;?dr)\s*[:\-{_DASHES}]\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"  # straight, curly and angle quotes


def clean_preview(text: str, title: str) -> str:
    """The model's answer as plain text: markdown markers, a "Preview:" label, wrapping quotes and a
    leading repetition of the title are removed (models add them despite the prompt)."""
    text = _LABEL.sub("", _unquote(text))
    text = _LABEL.sub("", _unquote(" ".join(_MARKUP.sub("", text).split())))
    title = " ".join(title.split())
    if title and text.lower().startswith(title.lower()):
        rest = text[len(title):]
        if not rest or not rest[0].isalnum():  # the whole title, not the first word of a sentence
            text = rest.lstrip(f" :-{_DASHES}.,;|").strip()
    text = _unquote(_LABEL.sub("", text))
    return text[:1].upper() + text[1:] if text else text


def _unquote(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def shorten(text: str, limit: int = PREVIEW_MAX_CHARS) -> str:
    """Trim to ``limit`` characters at a word boundary, with an ellipsis when cut."""
    text = " ".join(text.strip().strip('"').split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"
