"""Faults at the network edge, for the client tests: httpx transports wrapping the real one.

``LoseFirstAnswer`` forwards a request to the server and then drops the answer (the server did the work,
the client saw a connection error); ``CutStreams`` delivers the first bytes of an event stream and then
breaks the connection, as a proxy or a flaky network would. Both count what went through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx


class _CutBody(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, after: int) -> None:
        self.inner, self.after = inner, after

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.inner:
            if sent + len(chunk) >= self.after:
                yield chunk[: self.after - sent]
                raise httpx.RemoteProtocolError("peer closed connection mid-stream (test fault)")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _AsyncCutBody(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, after: int) -> None:
        self.inner, self.after = inner, after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.inner:
            if sent + len(chunk) >= self.after:
                yield chunk[: self.after - sent]
                raise httpx.RemoteProtocolError("peer closed connection mid-stream (test fault)")
            sent += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class Faults:
    """What to break, shared by the sync and async transports."""

    def __init__(self, *, lose_first: str | None = None, cut_streams: int = 0, cut_after: int = 400,
                 refuse_connects: int = 0) -> None:
        self.lose_first = lose_first  # "POST /api/llm/generate": the first such answer is lost
        self.cut_streams = cut_streams  # how many event streams to cut
        self.cut_after = cut_after  # bytes of each cut stream that get through
        self.refuse_connects = refuse_connects  # the first n requests fail to connect
        self.requests: list[httpx.Request] = []
        self.lost = 0
        self.cuts = 0

    def before(self, request: httpx.Request) -> None:
        self.requests.append(request)
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise httpx.ConnectError("connection refused (test fault)", request=request)

    def lose(self, request: httpx.Request) -> bool:
        if self.lose_first is not None and f"{request.method} {request.url.path}" == self.lose_first:
            self.lose_first = None
            self.lost += 1
            return True
        return False

    def cut(self, request: httpx.Request, response: httpx.Response) -> bool:
        if self.cuts < self.cut_streams and request.url.path.endswith("/events") and response.status_code == 200:
            self.cuts += 1
            return True
        return False

    def sent(self, method: str, path_end: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(path_end)]


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.before(request)
        response = self.inner.handle_request(request)
        if self.faults.lose(request):
            response.read()
            response.close()
            raise httpx.ReadError("connection reset before the answer arrived (test fault)", request=request)
        if self.faults.cut(request, response):
            assert isinstance(response.stream, httpx.SyncByteStream)
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=_CutBody(response.stream, self.faults.cut_after), request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncFaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.before(request)
        response = await self.inner.handle_async_request(request)
        if self.faults.lose(request):
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset before the answer arrived (test fault)", request=request)
        if self.faults.cut(request, response):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=_AsyncCutBody(response.stream, self.faults.cut_after), request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
