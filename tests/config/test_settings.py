"""Settings: defaults, parsing, and an error naming the variable for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentic.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_need_no_keys() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///agentic.db"
    assert s.use_queue is False and s.llm_provider == "openrouter"
    assert s.job_retention_days == 7
    assert s.openrouter_api_key is None and s.anthropic_api_key is None


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USE_QUEUE", "true")
    monkeypatch.setenv("LLM_PROVIDER", "anthropic")
    monkeypatch.setenv("QUICK_MODELS", "gpt-4o-mini, *haiku*")
    monkeypatch.setenv("SLOW_MODELS", "o1*,deepseek/deepseek-r1")
    monkeypatch.setenv("QUEUE_TOKEN_THRESHOLD", "1234")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/app")
    s = load_settings()
    assert s.use_queue is True and s.llm_provider == "anthropic"
    assert s.quick_models == ["gpt-4o-mini", "*haiku*"]
    assert s.slow_models == ["o1*", "deepseek/deepseek-r1"]
    assert s.queue_token_threshold == 1234
    assert s.database_url == "postgresql+psycopg://u@db.example/app"


def test_dot_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JOB_RETENTION_DAYS=3\nPREVIEW_MODEL=openai/gpt-4.1-nano\n")
    s = load_settings()
    assert s.job_retention_days == 3 and s.preview_model == "openai/gpt-4.1-nano"


@pytest.mark.parametrize(("variable", "value"), [
    ("USE_QUEUE", "perhaps"),
    ("LLM_PROVIDER", "gpt"),
    ("QUEUE_TOKEN_THRESHOLD", "many"),
    ("QUEUE_TOKEN_THRESHOLD", "0"),
    ("JOB_RETENTION_DAYS", "0"),
    ("MAX_REQUEST_BYTES", "10"),
    ("OPENROUTER_BASE_URL", "not a url"),
    ("ANTHROPIC_BASE_URL", "ftp//x"),
    ("WEBHOOK_URL", "nope"),
    ("DATABASE_URL", "mysql://x"),
    ("PROVIDER_READ_TIMEOUT", "-1"),
    ("DEFAULT_ROUTE", "sideways"),
    ("INNGEST_SIGNING_KEY", "signkey-prod-not_hex"),
    ("INNGEST_SIGNING_KEY_FALLBACK", "plainly-wrong"),
])
def test_each_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert variable in str(caught.value)


def test_webhook_url_without_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "https://hooks.example/agentic")
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        load_settings()


def test_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-very-secret")
    monkeypatch.setenv("QUEUE_TOKEN_THRESHOLD", "bad")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "sk-or-very-secret" not in str(caught.value)
    settings = load_settings(queue_token_threshold=10)
    assert "sk-or-very-secret" not in repr(settings)


@pytest.mark.parametrize(("value", "dev"), [("1", True), ("true", True), ("http://127.0.0.1:8288", True),
                                            ("0", False), ("false", False), ("", False)])
def test_inngest_dev_is_read_as_the_sdk_reads_it(monkeypatch: pytest.MonkeyPatch, value: str, dev: bool) -> None:
    monkeypatch.setenv("INNGEST_DEV", value)
    assert load_settings().inngest_is_dev is dev


def test_a_well_formed_signing_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_SIGNING_KEY", "signkey-branch-0123456789abcdefABCDEF")
    assert load_settings().inngest_signing_key is not None


def test_long_call_settings_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.step_time_budget_seconds == 240 and s.max_continuations == 40
    assert "openai/*" in s.offload_models and "mock-offload*" in s.offload_models
    monkeypatch.setenv("STEP_TIME_BUDGET_SECONDS", "1")
    monkeypatch.setenv("OFFLOAD_MODELS", "openai/o3*, deepseek/deepseek-r1")
    s = load_settings()
    assert s.step_time_budget_seconds == 1 and s.offload_models == ["openai/o3*", "deepseek/deepseek-r1"]
    for variable, bad in (("STEP_TIME_BUDGET_SECONDS", "0.5"), ("MAX_CONTINUATIONS", "0"),
                          ("MAX_CONTINUATIONS", "501")):
        monkeypatch.setenv(variable, bad)
        with pytest.raises(ConfigError, match=variable):
            load_settings()
        monkeypatch.delenv(variable)
