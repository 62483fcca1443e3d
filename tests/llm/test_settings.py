"""Settings from env and YAML, and when the feature is off."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from resource_agent.llm.service import InsightService, build_insight_service
from resource_agent.llm.settings import DEFAULT_GROQ_MODEL, LLMSettings, ProviderKind, ResponseFormat, load_llm_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GROQ_API_KEY", "OPENAI_API_KEY", "GROQ_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_off_by_default() -> None:
    settings = LLMSettings()

    assert settings.provider is ProviderKind.NONE and not settings.enabled
    assert settings.redact is True
    assert build_insight_service(settings, CollectorRegistry()) is None


def test_groq_from_env_uses_groq_api_key_and_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESOURCE_AGENT_LLM_PROVIDER", "groq")
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-secret")
    monkeypatch.setenv("RESOURCE_AGENT_LLM_REQUESTS_PER_MINUTE", "5")

    settings = LLMSettings()

    assert settings.effective_model == DEFAULT_GROQ_MODEL
    assert settings.effective_api_key == "gsk-from-secret"
    assert settings.requests_per_minute == 5
    assert "gsk-from-secret" not in repr(settings)
    assert isinstance(build_insight_service(settings, CollectorRegistry()), InsightService)


def test_explicit_key_wins_over_provider_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-var")
    monkeypatch.setenv("RESOURCE_AGENT_LLM_API_KEY", "explicit")

    assert LLMSettings(provider="openai-compatible").effective_api_key == "explicit"


def test_yaml_file_with_env_overriding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text(
        "provider: openai-compatible\nmodel: meta-llama/Llama-3.1-8B-Instruct\n"
        "base_url: http://vllm.inference.svc:8000/v1\nredact: false\nresponse_format: json_object\ntimeout_seconds: 20\n"
    )
    monkeypatch.setenv("RESOURCE_AGENT_LLM_TIMEOUT_SECONDS", "7.5")

    settings = load_llm_settings(path)

    assert settings.provider is ProviderKind.OPENAI_COMPATIBLE
    assert settings.base_url == "http://vllm.inference.svc:8000/v1"
    assert settings.redact is False
    assert settings.response_format is ResponseFormat.JSON_OBJECT
    assert settings.timeout_seconds == 7.5
    assert build_insight_service(settings, CollectorRegistry()) is not None  # no key needed in-cluster


@pytest.mark.parametrize(
    "values",
    [
        {"provider": "groq"},  # no GROQ_API_KEY
        {"provider": "openai-compatible", "model": "m"},  # no base URL
        {"provider": "openai-compatible", "base_url": "http://vllm:8000/v1"},  # no model
    ],
)
def test_misconfiguration_turns_the_feature_off(values: dict[str, str]) -> None:
    assert build_insight_service(LLMSettings(**values), CollectorRegistry()) is None


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValueError):
        LLMSettings(provider="claude")
    with pytest.raises(ValueError):
        LLMSettings(requests_per_minute=0)


def test_groq_api_key_alone_selects_groq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-only")

    settings = LLMSettings()

    assert settings.provider is ProviderKind.GROQ and settings.enabled
    assert settings.effective_model == DEFAULT_GROQ_MODEL and settings.effective_api_key == "gsk-only"
    assert isinstance(build_insight_service(settings, CollectorRegistry()), InsightService)


def test_openai_base_url_alone_selects_an_openai_compatible_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm.inference.svc:8000/v1")
    monkeypatch.setenv("RESOURCE_AGENT_LLM_MODEL", "meta-llama/Llama-3.1-8B-Instruct")

    settings = LLMSettings()

    assert settings.provider is ProviderKind.OPENAI_COMPATIBLE
    assert settings.effective_base_url == "http://vllm.inference.svc:8000/v1"
    assert isinstance(build_insight_service(settings, CollectorRegistry()), InsightService)


def test_groq_key_wins_over_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm:8000/v1")

    settings = LLMSettings()

    assert settings.provider is ProviderKind.GROQ and settings.effective_base_url is None


@pytest.mark.parametrize("named", ["none", "openai-compatible"])
def test_a_named_provider_wins_over_the_key(monkeypatch: pytest.MonkeyPatch, named: str, tmp_path: Path) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk")
    monkeypatch.setenv("RESOURCE_AGENT_LLM_PROVIDER", named)
    assert LLMSettings().provider.value == named
    monkeypatch.delenv("RESOURCE_AGENT_LLM_PROVIDER")
    path = tmp_path / "llm.yaml"
    path.write_text(f"provider: {named}\n")
    assert load_llm_settings(path).provider.value == named
