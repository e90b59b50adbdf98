"""``python -m bench.serve --port P``: the benchmark's app (``bench.wsgi``) served the way ``agentic serve``
serves agentic: waitress worker processes (``agentic.server``), as many as it starts by default unless
``--workers`` says otherwise. Settings come from the environment (``bench.appserver.server_env``)."""

from __future__ import annotations

import argparse
import sys

from agentic.server import ServerOptions, serve
from agentic.web.app import container_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    from bench.wsgi import app

    container = container_of(app)
    settings = container.settings
    workers = args.workers
    if workers is None:  # imported here: bench.ab also serves copies of src/ from before these existed
        from agentic.server import default_workers
        from agentic.store.engine import is_in_memory_sqlite

        workers = default_workers(in_memory_database=is_in_memory_sqlite(settings.database_url))
    options = ServerOptions(host="127.0.0.1", port=args.port, workers=workers, threads=args.threads,
                            max_body_bytes=max(settings.max_request_bytes, settings.max_inngest_request_bytes))
    return serve(app, options, after_fork=lambda: container.engine.dispose(close=False))


if __name__ == "__main__":
    sys.exit(main())
