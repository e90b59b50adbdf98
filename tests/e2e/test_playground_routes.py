"""Serving the playground (no browser needed): the page, its assets, its headers, and nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agentic.config import load_settings
from agentic.web.app import create_app
from agentic.web.playground import STATIC_DIR

PAGE_IDS = ("api-key", "model", "prompt", "send", "status", "output", "usage", "cancel", "jobs", "error")


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Flask]:
    yield create_app(load_settings(database_url=sqlite_url, inngest_dev="1"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_page_is_served_at_the_root_without_a_key(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in page, element_id


def test_the_page_is_locked_down_by_its_headers(client: FlaskClient) -> None:
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_every_asset_the_page_references_is_served(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/playground/[^"]+)"', page)
    assert {"/playground/playground.js", "/playground/playground.css"} <= set(assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
    assert client.get("/playground/playground.js").mimetype in ("text/javascript", "application/javascript")
    assert client.get("/playground/playground.css").mimetype == "text/css"


def test_the_page_uses_nothing_from_other_origins() -> None:
    for path in STATIC_DIR.iterdir():
        content = path.read_text()
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", content), path.name
        assert "@import" not in content and "url(http" not in content, path.name


def test_the_page_has_no_inline_script_or_style(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # the CSP would block it anyway
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers


@pytest.mark.parametrize("path", ["/playground/../playground.py", "/playground/%2e%2e/app.py",
                                  "/playground/missing.js", "/playground/"])
def test_nothing_outside_the_static_folder_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_api_still_answers_json_problems(client: FlaskClient) -> None:
    response = client.get("/api/jobs")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
