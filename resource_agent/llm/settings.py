"""LLM settings, layered like every other setting: defaults < YAML file < environment
(RESOURCE_AGENT_LLM_*, GROQ_API_KEY, OPENAI_API_KEY, OPENAI_BASE_URL) < explicit values.

When no provider is named (RESOURCE_AGENT_LLM_PROVIDER, `provider:` in the file), the
variables a user of the provider already has select it: GROQ_API_KEY selects Groq,
else OPENAI_BASE_URL selects an OpenAI-compatible endpoint. A named provider (even
`none`) always wins."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from resource_agent.config.layered import LayeredSettings

DEFAULT_GROQ_MODEL = "openai/gpt-oss-20b"


class ProviderKind(StrEnum):
    NONE = "none"
    GROQ = "groq"
    OPENAI_COMPATIBLE = "openai-compatible"


class ResponseFormat(StrEnum):
    JSON_SCHEMA = "json_schema"  # structured output: the provider enforces the answer's schema
    JSON_OBJECT = "json_object"  # JSON mode: any JSON object; the schema is only in the prompt


class LLMSettings(LayeredSettings):
    """How the operator asks an LLM to explain findings. provider=none (the default) turns it off."""

    env_prefix: ClassVar[str] = "RESOURCE_AGENT_LLM_"

    provider: ProviderKind = ProviderKind.NONE
    model: str | None = None  # default: openai/gpt-oss-20b on Groq; required for openai-compatible
    base_url: str | None = None  # Groq: the SDK's default; openai-compatible: e.g. http://vllm:8000/v1
    api_key: SecretStr | None = None
    groq_api_key: SecretStr | None = Field(default=None, validation_alias="GROQ_API_KEY")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    response_format: ResponseFormat = ResponseFormat.JSON_SCHEMA
    redact: bool = True
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)  # SDK retries on 408/409/429/5xx, honouring Retry-After
    max_completion_tokens: int = Field(default=2048, ge=64)
    requests_per_minute: int = Field(default=30, ge=1)
    daily_token_budget: int = Field(default=200_000, ge=0)
    cache_size: int = Field(default=256, ge=0)
    debounce_seconds: float = Field(default=900.0, ge=0)
    backoff_seconds: float = Field(default=30.0, ge=0)  # no requests after a failure; doubles per failure; 0: off
    backoff_max_seconds: float = Field(default=900.0, ge=0)

    @model_validator(mode="after")
    def _provider_from_the_environment(self) -> Self:
        """No provider named: GROQ_API_KEY selects Groq, else OPENAI_BASE_URL an OpenAI-compatible endpoint."""
        if "provider" in self.model_fields_set:
            return self
        if self.groq_api_key is not None:
            self.provider = ProviderKind.GROQ
        elif self.openai_base_url:
            self.provider = ProviderKind.OPENAI_COMPATIBLE
        return self

    @property
    def enabled(self) -> bool:
        return self.provider is not ProviderKind.NONE

    @property
    def effective_model(self) -> str | None:
        if self.model:
            return self.model
        return DEFAULT_GROQ_MODEL if self.provider is ProviderKind.GROQ else None

    @property
    def effective_base_url(self) -> str | None:
        """RESOURCE_AGENT_LLM_BASE_URL, else OPENAI_BASE_URL for an OpenAI-compatible provider."""
        if self.base_url:
            return self.base_url
        return self.openai_base_url if self.provider is ProviderKind.OPENAI_COMPATIBLE else None

    @property
    def effective_api_key(self) -> str | None:
        """RESOURCE_AGENT_LLM_API_KEY, else the provider's own variable (GROQ_API_KEY / OPENAI_API_KEY)."""
        own = self.groq_api_key if self.provider is ProviderKind.GROQ else self.openai_api_key
        key = self.api_key or own
        return key.get_secret_value() if key else None


def load_llm_settings(yaml_file: Path | str | None = None) -> LLMSettings:
    """Settings from the environment, over the YAML file's keys (the field names) when one is given."""
    return LLMSettings.load(yaml_file)
