"""``create_app``: the Flask app serving the API under /api and the Inngest functions at /api/inngest.

Creating the app does no I/O (no database connection, no listener thread), so a serverless cold start is
cheap; everything that talks to the outside is built on first use.
"""

from __future__ import annotations

import inngest.flask
from flask import Flask, request

from agentic.config import Settings, load_settings
from agentic.web.container import Container, build_container
from functions import FunctionDeps, build_functions

CONTAINER_KEY = "agentic.container"
INNGEST_ENDPOINT = "inngest_api"
#: Inngest's calls carry the run's step state (Inngest caps it at 32 MiB and hosts cap bodies lower);
#: the API's MAX_REQUEST_BYTES must not cut them off.
INNGEST_MAX_REQUEST_BYTES = 32 * 1024 * 1024


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Flask:
    settings = settings or (container.settings if container else load_settings())
    container = container or build_container(settings)
    app = Flask("agentic", static_folder=None)
    # Bounds every body while it is read, chunked ones included; the API also checks Content-Length first.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions[CONTAINER_KEY] = container

    @app.before_request
    def _inngest_body_limit() -> None:
        if request.endpoint == INNGEST_ENDPOINT:
            request.max_content_length = max(INNGEST_MAX_REQUEST_BYTES, settings.max_request_bytes)

    from agentic.web.api import register_api
    from agentic.web.playground import playground_bp

    register_api(app, container)
    app.register_blueprint(playground_bp)  # GET / : the playground page (holds no secrets, needs no key)
    inngest.flask.serve(app, container.inngest,
                        build_functions(container.inngest, FunctionDeps(settings, container.runner)))
    return app


def container_of(app: Flask) -> Container:
    container: Container = app.extensions[CONTAINER_KEY]
    return container
