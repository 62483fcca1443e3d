"""The LLM tests' fixtures (the local chat-completions server and services on both SDKs), for the injection tests."""

from tests.llm.conftest import make_service, provider_kind, registry, server  # noqa: F401
