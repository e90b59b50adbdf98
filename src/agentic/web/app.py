"""``create_app``: the Flask app serving the API under /api and the Inngest functions at /api/inngest.

Creating the app does no I/O (no database connection, no listener thread), so a serverless cold start is
cheap; everything that talks to the outside is built on first use.
"""

from __future__ import annotations

import time

import inngest.flask
from flask import Flask, Response, request

from agentic.bootstrap import Container, build_container, inngest_functions
from agentic.config import Settings, load_settings

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
    def _inngest_guard() -> Response | None:
        if request.endpoint == INNGEST_ENDPOINT:
            request.max_content_length = max(INNGEST_MAX_REQUEST_BYTES, settings.max_request_bytes)
            if not settings.inngest_is_dev and stale_signature(request.headers.get("X-Inngest-Signature")):
                return Response('{"message":"Unauthorized"}', status=401, mimetype="application/json")
        return None

    from agentic.web.api import register_api
    from agentic.web.mock_gateway import register_mock_gateway
    from agentic.web.playground import playground_bp

    register_api(app, container)
    app.register_blueprint(playground_bp)  # GET / : the playground page (holds no secrets, needs no key)
    register_mock_gateway(app, settings)  # mock mode only: the offline provider for offloaded calls
    # Only Inngest's signed syncs may register the app: an unsigned PUT would register it at the URL the
    # request names, signed with our key. Dev mode is unaffected (the dev server does not sign).
    inngest.flask.serve(app, container.inngest, inngest_functions(container), enable_unauthed_sync=False)
    return app


#: The Python SDK does not check a signature's age; we refuse one older (or newer) than this, so a captured
#: signed request cannot be replayed later.
SIGNATURE_MAX_AGE_SECONDS = 300


def stale_signature(header: str | None) -> bool:
    """True when a signature header has no readable ``t=`` or one further than 5 minutes from now.

    An absent header is left to the SDK (it answers 401 in production)."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split("&") if "=" in part)
    try:
        signed_at = int(parts["t"])
    except (KeyError, ValueError):
        return True
    return abs(time.time() - signed_at) > SIGNATURE_MAX_AGE_SECONDS


def container_of(app: Flask) -> Container:
    container: Container = app.extensions[CONTAINER_KEY]
    return container
