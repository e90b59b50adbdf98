"""Test helper shared by the provider tests: a response body that records how it was read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx


class Body(httpx.SyncByteStream):
    """A response body that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], *, fail_after: int | None = None,
                 error: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.error = error or httpx.RemoteProtocolError("peer closed connection mid-body")
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise self.error
            self.sent += 1
            yield chunk

    def close(self) -> None:
        self.closed = True
