"""The chat-completions simulator: its modes, its derived answers, and `python -m` use."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from devtools.llm_server import FakeLLMServer, Mode, derived_answer
from resource_agent.api.insight import InsightAnswer
from resource_agent.llm.prompts import build_messages
from resource_agent.llm.redaction import Redactor
from resource_agent.llm.service import AnswerError, parse_answer
from tests.llm.conftest import NODE, memory_finding, thermal_finding


def test_derived_answer_is_valid_and_follows_the_findings() -> None:
    messages = build_messages(NODE, [memory_finding(), thermal_finding()], None, Redactor())

    answer = InsightAnswer.model_validate(derived_answer({"messages": messages}))

    assert answer.priority == 1
    assert answer.steps[0].startswith("F1: check-cooling")
    assert len(answer.steps) == 2


def test_derived_answer_without_a_data_block_is_still_valid() -> None:
    answer = InsightAnswer.model_validate(derived_answer({"messages": [{"role": "user", "content": "hi"}]}))
    assert answer.summary and 1 <= answer.priority <= 5


def _chat(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=5)


def test_fail_and_garbage_modes() -> None:
    with FakeLLMServer(mode=Mode.FAIL) as failing, pytest.raises(openai.InternalServerError):
        _chat(failing.openai_base_url).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with FakeLLMServer(mode=Mode.GARBAGE) as garbage:
        reply = _chat(garbage.openai_base_url).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(AnswerError, match="not valid JSON"):
            parse_answer(reply.choices[0].message.content or "")


def test_unknown_path_is_404() -> None:
    with FakeLLMServer() as server:
        response = httpx.post(f"{server.url}/v2/chat/completions", json={})
    assert response.status_code == 404


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def module_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.llm_server", "--port", str(port), "--mode", "ok"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the simulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_runs_as_a_module(module_server: str) -> None:
    messages = build_messages(NODE, [thermal_finding()], None, Redactor())
    reply = _chat(f"{module_server}/v1").chat.completions.create(model="my-model", messages=messages)  # type: ignore[arg-type]

    assert reply.model == "my-model"
    assert parse_answer(reply.choices[0].message.content or "").priority == 1
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
