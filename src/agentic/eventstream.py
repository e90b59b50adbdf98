"""Parsing ``text/event-stream`` (Server-Sent Events), incrementally and free of I/O.

Used where we read event streams: the OpenRouter provider and ``agentic.client`` (which ``agentic ask`` uses).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """An incremental parser for the text/event-stream format (WHATWG HTML §9.2), free of I/O.

    Chunks may split anywhere, even inside a UTF-8 sequence or between the ``\\r`` and ``\\n`` of a line end.
    Comments (``: OPENROUTER PROCESSING``) and unknown fields are dropped. Unlike the spec, :meth:`flush`
    dispatches an event left unterminated at the end of the stream, since a final ``data: [DONE]`` without
    its blank line still means what it says.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # pieces of a line whose end has not arrived yet
        self._skip_lf = False  # the last chunk ended in "\r", so a leading "\n" completes that line end
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: str | bytes) -> list[SSEEvent]:
        """Consume a chunk and return the events it completed."""
        return self._split(self._utf8.decode(chunk) if isinstance(chunk, bytes) else chunk)

    def flush(self) -> list[SSEEvent]:
        """End of stream: finish the last line and dispatch any event still pending."""
        events = self._split(self._utf8.decode(b"", final=True))
        if self._partial:
            events.extend(self._line("".join(self._partial)))
            self._partial = []
        events.extend(self._dispatch())
        return events

    def _split(self, text: str) -> list[SSEEvent]:
        """Cut new text into lines. Only new text is scanned, and pieces are joined once per line, so a long
        line arriving in many small chunks costs linear time."""
        if not text:
            return []
        if not self._started:
            text, self._started = text.removeprefix("\ufeff"), True
        if self._skip_lf:
            text, self._skip_lf = text.removeprefix("\n"), False
        events: list[SSEEvent] = []
        # str.split is several times faster than the regex; most streams never send a "\r".
        pieces = _LINE_END.split(text) if "\r" in text else text.split("\n")
        self._skip_lf = text.endswith("\r")
        for piece in pieces[:-1]:
            line = piece
            if self._partial:
                self._partial.append(piece)
                line, self._partial = "".join(self._partial), []
            events.extend(self._line(line))
        if pieces[-1]:
            self._partial.append(pieces[-1])
        return events

    def _line(self, line: str) -> list[SSEEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return []

    def _dispatch(self) -> list[SSEEvent]:
        if not self._data:
            self._event = ""
            return []
        event = SSEEvent(data="\n".join(self._data), event=self._event or "message", id=self._id)
        self._data = []
        self._event = ""
        return [event]


__all__ = ["SSEDecoder", "SSEEvent"]
