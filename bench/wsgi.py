"""What the benchmark's app server serves: agentic's app, plus one bare route as the poll baseline.

Settings come from the environment the launcher sets (``bench.appserver``).
"""

from __future__ import annotations

from flask import Flask

from agentic.web.app import create_app
from bench.appserver import CONST_PATH

CONST_BODY = {"id": "job_constant", "status": "completed"}


def bench_app() -> Flask:
    flask_app = create_app()

    @flask_app.get(CONST_PATH)
    def const() -> dict[str, str]:
        return CONST_BODY

    return flask_app


app = bench_app()
