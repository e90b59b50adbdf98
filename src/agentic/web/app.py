"""``create_app``: the Flask app serving the API under /api and the Inngest functions at /api/inngest.

Creating the app does no I/O (no database connection, no listener thread), so a serverless cold start is
cheap; everything that talks to the outside is built on first use.
"""

from __future__ import annotations

import inngest.flask
from flask import Flask, Response, request

from agentic.bootstrap import Container, build_container, inngest_functions
from agentic.config import Settings, load_settings
from agentic.web.inngest_guard import SIGNATURE_HEADER, SYNC_KIND_HEADER, is_in_band_sync, signature_problem
from agentic.web.tokens import install_log_redaction

CONTAINER_KEY = "agentic.container"
INNGEST_ENDPOINT = "inngest_api"
_UNAUTHORIZED = '{"message":"Unauthorized"}'


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Flask:
    settings = settings or (container.settings if container else load_settings())
    container = container or build_container(settings)
    install_log_redaction()  # access logs print request lines, and a job token can ride in ?token=
    app = Flask("agentic", static_folder=None)
    # Bounds every body while it is read, chunked ones included; the API also checks Content-Length first.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions[CONTAINER_KEY] = container

    @app.before_request
    def _inngest_guard() -> Response | None:
        # Runs before anything reads the body: in production an unsigned, malformed or stale call costs no
        # more than an API request (the SDK would parse the whole body before checking the HMAC).
        if request.endpoint != INNGEST_ENDPOINT:
            return None
        # Inngest's calls carry the run's step state: bounded by its own setting, not MAX_REQUEST_BYTES.
        request.max_content_length = settings.max_inngest_request_bytes
        if settings.inngest_is_dev:
            return None
        if signature_problem(request.headers.get(SIGNATURE_HEADER)) is not None:
            return Response(_UNAUTHORIZED, status=401, mimetype="application/json")
        if (request.method == "PUT" and settings.inngest_serve_origin is None
                and not is_in_band_sync(request.headers.get(SYNC_KIND_HEADER))):
            # An out-of-band sync registers the URL the request came in on: a forged Host would move our
            # functions elsewhere. Production registers only a pinned origin (or the signed in-band URL).
            return Response('{"message":"out-of-band sync needs INNGEST_SERVE_ORIGIN in production"}',
                            status=403, mimetype="application/json")
        if request.content_length is not None and request.content_length > settings.max_inngest_request_bytes:
            return Response('{"message":"request body too large"}', status=413, mimetype="application/json")
        return None

    from agentic.web.api import register_api
    from agentic.web.mock_gateway import register_mock_gateway
    from agentic.web.playground import playground_bp

    register_api(app, container)
    app.register_blueprint(playground_bp)  # GET / : the playground page (holds no secrets, needs no key)
    register_mock_gateway(app, settings)  # mock mode only: the offline provider for offloaded calls
    # Only Inngest's signed syncs may register the app: an unsigned PUT would register it at the URL the
    # request names, signed with our key. Dev mode is unaffected (the dev server does not sign).
    inngest.flask.serve(app, container.inngest, inngest_functions(container), enable_unauthed_sync=False,
                        serve_origin=settings.inngest_serve_origin)
    return app


def container_of(app: Flask) -> Container:
    container: Container = app.extensions[CONTAINER_KEY]
    return container
