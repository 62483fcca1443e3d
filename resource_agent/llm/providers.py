"""LLM providers: the groq SDK and any OpenAI-compatible endpoint, behind one small protocol.

Both SDKs speak the same chat-completions API and retry 408/409/429/5xx and
timeouts themselves with exponential backoff, waiting what `Retry-After` /
`retry-after-ms` asks when it is reasonable (Groq SDK: up to 60 s, OpenAI SDK:
up to 120 s). That is configured here (`max_retries`, `timeout`) instead of
hand-written. Whatever still fails comes out as `ProviderError(reason)`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, Protocol

from resource_agent.llm.prompts import Message
from resource_agent.llm.settings import LLMSettings, ProviderKind, ResponseFormat

log = logging.getLogger(__name__)

UNUSED_API_KEY = "unused"  # in-cluster endpoints without auth still need a non-empty key for the SDK


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class ProviderError(Exception):
    """A request that failed for good; `reason` is a metric label, `retry_after` the seconds the provider asked for."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.retry_after = retry_after


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, messages: Sequence[Message], json_schema: dict[str, Any]) -> Completion: ...

    async def close(self) -> None: ...


class ChatCompletionsProvider:
    """A chat-completions client of either SDK (`groq.AsyncGroq` or `openai.AsyncOpenAI`)."""

    def __init__(
        self,
        name: str,
        sdk: ModuleType,
        client: Any,
        model: str,
        response_format: ResponseFormat,
        max_completion_tokens: int,
    ) -> None:
        self.name = name
        self.model = model
        self._sdk = sdk
        self._client = client
        self._response_format = response_format
        self._max_completion_tokens = max_completion_tokens

    async def complete(self, messages: Sequence[Message], json_schema: dict[str, Any]) -> Completion:
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),
                response_format=self._format(json_schema),
                max_completion_tokens=self._max_completion_tokens,
                temperature=0.2,
            )
        except self._sdk.APIError as error:
            raise ProviderError(_reason(self._sdk, error), str(error)[:300], _retry_after(error)) from error
        return _completion(response, self.model)

    async def close(self) -> None:
        await self._client.close()

    def _format(self, json_schema: dict[str, Any]) -> dict[str, Any]:
        if self._response_format is ResponseFormat.JSON_OBJECT:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": "insight_answer", "schema": json_schema, "strict": True},
        }


def build_provider(settings: LLMSettings) -> ChatCompletionsProvider | None:
    """The configured provider, or None when it is off or cannot be built (logged)."""
    model = settings.effective_model
    if settings.provider is ProviderKind.NONE:
        return None
    if model is None:
        log.error("LLM insight is off: provider %s needs RESOURCE_AGENT_LLM_MODEL", settings.provider.value)
        return None
    key = settings.effective_api_key
    base_url, timeout, max_retries = settings.effective_base_url, settings.timeout_seconds, settings.max_retries
    sdk: ModuleType
    if settings.provider is ProviderKind.GROQ:
        import groq

        if key is None:
            log.error("LLM insight is off: provider groq needs GROQ_API_KEY")
            return None
        client: Any = groq.AsyncGroq(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        sdk = groq
    else:
        import openai

        if settings.effective_base_url is None:
            log.error("LLM insight is off: provider openai-compatible needs RESOURCE_AGENT_LLM_BASE_URL (or OPENAI_BASE_URL)")
            return None
        client = openai.AsyncOpenAI(
            api_key=key or UNUSED_API_KEY, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        sdk = openai
    return ChatCompletionsProvider(
        settings.provider.value, sdk, client, model, settings.response_format, settings.max_completion_tokens
    )


def _reason(sdk: ModuleType, error: Exception) -> str:
    if isinstance(error, sdk.APITimeoutError):
        return "timeout"
    if isinstance(error, sdk.APIConnectionError):
        return "connection"
    if isinstance(error, sdk.RateLimitError):
        return "rate_limited"
    if isinstance(error, sdk.APIStatusError):
        return "server_error" if error.status_code >= 500 else "client_error"
    return "bad_response"


def _retry_after(error: Exception) -> float | None:
    """Seconds from the error response's `retry-after-ms` or `retry-after` (seconds or an HTTP date), if any."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    seconds = _seconds(value)
    if seconds is not None or not isinstance(value, str):
        return seconds
    with suppress(ValueError, TypeError, IndexError):
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    return None


def _seconds(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _completion(response: Any, requested_model: str) -> Completion:
    """Text and usage of a chat completion; a malformed body is a ProviderError, never a crash."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise ProviderError("bad_response", "no choices in the response")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str):
        raise ProviderError("bad_response", "no text content in the first choice")
    usage = getattr(response, "usage", None)
    model = getattr(response, "model", None)
    return Completion(
        text=text,
        model=model if isinstance(model, str) and model else requested_model,
        prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_count(getattr(usage, "completion_tokens", 0)),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
