"""What the app registers with Inngest, read the way Inngest reads it: a signed in-band sync (PUT) against
the production app, plus ``get_config`` for settings-driven values. And how the client and app start."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from agentic.config import ConfigError, Settings, load_settings
from agentic.functions import FunctionDeps, build_functions
from agentic.inngest.client import APP_ID, create_inngest_client
from agentic.metrics import Metrics
from agentic.providers.mock import MockLLMRepository
from agentic.runner import JobRunner
from agentic.store.jobs import JobStore
from agentic.web.app import create_app
from tests.functions.conftest import SIGNING_KEY, AppHarness
from tests.functions.executor import response_signature_valid, sign_body

APP_URL = "https://agentic.test/api/inngest"
CANCEL = [{"event": "llm/generate.cancel", "if": "async.data.job_id == event.data.job_id"}]


def in_band_sync(harness: AppHarness, *, signing_key: str | None = SIGNING_KEY) -> Any:
    body = json.dumps({"url": APP_URL}).encode()
    headers = {"Content-Type": "application/json", "X-Inngest-Sync-Kind": "in_band",
               "X-Inngest-Server-Kind": "cloud"}
    if signing_key is not None:
        headers["X-Inngest-Signature"] = sign_body(body, signing_key)
    return harness.executor.client.put("/api/inngest", data=body, headers=headers)


def step_config(fn_id: str, retries: int) -> dict[str, Any]:
    return {"step": {"id": "step", "name": "step", "retries": {"attempts": retries},
                     "runtime": {"type": "http", "url": f"{APP_URL}?fnId={fn_id}&stepId=step"}}}


def failure_handler(fn_id: str) -> dict[str, Any]:
    return {"triggers": [{"event": "inngest/function.failed",
                          "expression": f"event.data.function_id == '{fn_id}'"}],
            "steps": step_config(f"{fn_id}-failure", 0)}


def test_in_band_sync_registers_the_functions_exactly(make_app: Callable[..., AppHarness]) -> None:
    harness = make_app()

    response = in_band_sync(harness)

    assert response.status_code == 200, response.get_data()
    assert response.headers["x-inngest-sync-kind"] == "in_band"
    assert response_signature_valid(response, SIGNING_KEY)
    body = response.get_json()
    assert body["app_id"] == "agentic" and body["url"] == APP_URL
    functions = {fn["id"]: fn for fn in body["functions"]}
    assert set(functions) == {"agentic-llm-generate", "agentic-llm-generate-failure", "agentic-preview-generate",
                              "agentic-preview-generate-failure", "agentic-llm-cancel", "agentic-llm-cleanup"}

    generate = functions["agentic-llm-generate"]
    assert generate["triggers"] == [{"event": "llm/generate.request"}]
    assert generate["throttle"] == {"key": "event.data.user_id", "limit": 5, "period": "1m", "burst": 1}
    assert generate["steps"] == step_config("agentic-llm-generate", 3)
    assert generate["cancel"] == CANCEL
    assert generate["idempotency"] == "event.data.job_id"
    assert "rateLimit" not in generate and "debounce" not in generate

    preview = functions["agentic-preview-generate"]
    assert preview["triggers"] == [{"event": "preview/generate.request"}]
    assert preview["throttle"] == {"key": "event.data.user_id", "limit": 10, "period": "1m", "burst": 1}
    assert preview["steps"] == step_config("agentic-preview-generate", 2)
    assert preview["cancel"] == CANCEL
    assert preview["idempotency"] == "event.data.job_id"

    for fn_id in ("agentic-llm-generate", "agentic-preview-generate"):
        handler = functions[f"{fn_id}-failure"]
        assert {k: handler[k] for k in ("triggers", "steps")} == failure_handler(fn_id)
        assert "throttle" not in handler and not handler.get("cancel")

    cancel = functions["agentic-llm-cancel"]
    assert cancel["triggers"] == [{"event": "llm/generate.cancel"}]
    assert "throttle" not in cancel and "cancel" not in cancel  # it must never cancel itself

    cleanup = functions["agentic-llm-cleanup"]
    assert cleanup["triggers"] == [{"cron": "TZ=UTC 0 2 * * *"}]
    assert cleanup["steps"] == step_config("agentic-llm-cleanup", 3)


@pytest.mark.parametrize("signing_key", [None, "signkey-test-00000000000000ff"])
def test_in_band_sync_must_be_signed_with_our_key(make_app: Callable[..., AppHarness],
                                                  signing_key: str | None) -> None:
    response = in_band_sync(make_app(), signing_key=signing_key)

    assert response.status_code == 401
    assert response.get_json() == {"message": "Unauthorized"}


def test_throttle_follows_the_settings(make_settings: Callable[..., Settings], store: JobStore) -> None:
    settings = make_settings(generate_throttle_limit=2, generate_throttle_period_seconds=7200,
                             preview_throttle_limit=30, preview_throttle_period_seconds=90)
    runner = JobRunner(store=store, llm=MockLLMRepository(), metrics=Metrics())
    client = create_inngest_client(settings)
    fns = {fn.local_id: fn for fn in build_functions(client, FunctionDeps(settings, runner))}

    generate = fns["llm-generate"].get_config(APP_URL).main.to_dict()
    preview = fns["preview-generate"].get_config(APP_URL).main.to_dict()

    assert isinstance(generate, dict) and isinstance(preview, dict)
    assert generate["throttle"] == {"key": "event.data.user_id", "limit": 2, "period": "2h", "burst": 1}
    assert preview["throttle"] == {"key": "event.data.user_id", "limit": 30, "period": "90s", "burst": 1}
    assert generate.get("concurrency") is None and preview.get("concurrency") is None  # no cap unless asked


def test_a_per_user_concurrency_cap_is_registered_when_set(make_settings: Callable[..., Settings],
                                                           store: JobStore) -> None:
    settings = make_settings(concurrency_per_user=2)
    runner = JobRunner(store=store, llm=MockLLMRepository(), metrics=Metrics())
    fns = {fn.local_id: fn for fn in build_functions(create_inngest_client(settings), FunctionDeps(settings, runner))}
    for fn_id in ("llm-generate", "preview-generate"):
        config = fns[fn_id].get_config(APP_URL).main.to_dict()
        assert isinstance(config, dict)
        assert config["concurrency"] == [{"key": "event.data.user_id", "limit": 2, "scope": None}]


def test_client_is_the_agentic_app_in_dev_mode(make_settings: Callable[..., Settings]) -> None:
    client = create_inngest_client(make_settings(inngest_dev="1"))

    assert client.app_id == APP_ID == "agentic"
    assert client.is_production is False


def test_client_is_in_cloud_mode_with_a_signing_key(make_settings: Callable[..., Settings]) -> None:
    client = create_inngest_client(make_settings(inngest_dev="0", inngest_signing_key=SIGNING_KEY))

    assert client.is_production is True
    assert client.signing_key == SIGNING_KEY


@pytest.mark.parametrize("inngest_dev", [None, "0", "false", ""])
def test_production_app_refuses_to_start_without_a_signing_key(make_settings: Callable[..., Settings],
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               inngest_dev: str | None) -> None:
    monkeypatch.delenv("INNGEST_DEV", raising=False)
    settings = make_settings(inngest_dev=inngest_dev)

    with pytest.raises(ConfigError, match="INNGEST_SIGNING_KEY"):
        create_app(settings)


def test_dev_mode_starts_without_a_signing_key(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(inngest_dev="1"))

    response = app.test_client().get("/api/inngest")

    assert response.status_code == 200
    assert response.get_json()["mode"] == "dev"


def test_signed_inspection_in_production(make_app: Callable[..., AppHarness]) -> None:
    harness = make_app()
    client = harness.executor.client

    unsigned = client.get("/api/inngest")
    signed = client.get("/api/inngest", headers={"X-Inngest-Signature": sign_body(b"", SIGNING_KEY),
                                                 "X-Inngest-Server-Kind": "cloud"})

    assert unsigned.status_code == 401
    assert signed.status_code == 200
    assert signed.get_json()["mode"] == "cloud"
    assert signed.get_json()["function_count"] == 4  # the failure handlers are not counted


def test_settings_load_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_DEV", "0")
    monkeypatch.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)

    settings = load_settings(database_url="sqlite://")

    assert settings.inngest_is_dev is False
    assert create_inngest_client(settings).is_production is True
