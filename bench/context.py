"""What every benchmark gets: the sizes, the database under test, the stand-ins and the app server."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import Engine

from agentic.store.engine import create_db_engine
from bench.appserver import AppServer, ServerOptions, server_env
from bench.databases import Database
from bench.servers import StandIns
from bench.sizes import Sizes


class Closeable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closeable)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    sizes: Sizes
    db: Database
    stand_ins: StandIns
    workdir: Path
    server_options: ServerOptions = field(default_factory=ServerOptions)
    _server: AppServer | None = None
    _engines: list[Engine] = field(default_factory=list)
    _closeables: list[Closeable] = field(default_factory=list)

    def log(self, message: str) -> None:
        log(f"{self.db.name}: {message}")

    def app_server(self) -> AppServer:
        """agentic's app under its server (bench.serve), started on first use and kept for the database's benchmarks."""
        if self._server is None:
            env = server_env(self.db.url, self.stand_ins.url)
            server = AppServer(env, self.server_options, self.workdir / f"server-{self.db.name}.log")
            try:
                server.wait_ready()
            except Exception:
                server.close()
                raise
            self._server = server
        return self._server

    def engine(self, pool_size: int = 5) -> Engine:
        """An engine on the database under test, built the way agentic builds its own; disposed at close."""
        engine = create_db_engine(self.db.url, pool_size=pool_size)
        self._engines.append(engine)
        return engine

    def closing(self, thing: C) -> C:
        """``thing``, closed when the database's benchmarks are done."""
        self._closeables.append(thing)
        return thing

    def close(self) -> None:
        for thing in reversed(self._closeables):
            thing.close()
        self._closeables.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()
