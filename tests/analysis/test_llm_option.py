"""`analyze --llm` runs the same insight workflow as the operator, against a local endpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from devtools.llm_server import FakeLLMServer, Mode
from resource_agent.cli import main
from resource_agent.node_agent.recording import write_recording
from resource_agent.scenarios import generate


def recording(tmp_path: Path) -> Path:
    path = tmp_path / "thermal.jsonl"
    write_recording(path, list(generate("thermal-throttle", seed=0, samples=20)))
    return path


def llm_env(server: FakeLLMServer) -> dict[str, str]:
    return {
        "RESOURCE_AGENT_LLM_PROVIDER": "openai-compatible",
        "RESOURCE_AGENT_LLM_BASE_URL": server.openai_base_url,
        "RESOURCE_AGENT_LLM_MODEL": "local-test",
        "RESOURCE_AGENT_LLM_MAX_RETRIES": "0",
    }


def test_analyze_with_llm_adds_the_insight(tmp_path: Path) -> None:
    with FakeLLMServer(mode=Mode.OK) as server:
        result = CliRunner().invoke(
            main, ["analyze", "--input", str(recording(tmp_path)), "--format", "json", "--node-name", "node-x", "--llm"],
            env=llm_env(server),
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["insight"]["model"] == "local-test"
    assert document["insight"]["steps"]
    assert len(server.requests) == 1
    assert "node-x" not in server.requests[0].text  # redacted before it left


def test_failing_llm_still_prints_the_rule_based_result(tmp_path: Path) -> None:
    with FakeLLMServer(mode=Mode.GARBAGE) as server:
        result = CliRunner().invoke(
            main, ["analyze", "--input", str(recording(tmp_path)), "--format", "json", "--llm"], env=llm_env(server)
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "insight" not in document and document["findings"]
    assert len(server.requests) == 2  # the answer, and one retry with the validation error


def test_llm_without_a_provider_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["analyze", "--input", str(recording(tmp_path)), "--llm"], env={"RESOURCE_AGENT_LLM_PROVIDER": "none"}
    )
    assert result.exit_code == 2
    assert "no LLM provider configured" in result.output


def test_groq_api_key_alone_turns_on_the_insight_in_scan(monkeypatch) -> None:
    """The one setting a Groq user gives: GROQ_API_KEY. The real groq SDK is pointed at the local server
    through its own GROQ_BASE_URL variable (the Groq cloud is out of reach here)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", *(n for n in os.environ if n.startswith("RESOURCE_AGENT_LLM_"))):
        monkeypatch.delenv(name, raising=False)
    with FakeLLMServer(mode=Mode.OK) as server:
        env = {"GROQ_API_KEY": "gsk-test-only", "GROQ_BASE_URL": server.groq_base_url, "RESOURCE_AGENT_LLM_MAX_RETRIES": "0"}
        result = CliRunner().invoke(
            main, ["scan", "--scenario", "thermal-throttle", "--duration", "6s", "--interval", "1s", "-o", "json", "--llm"], env=env
        )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["insight"]["model"] == "openai/gpt-oss-20b"  # Groq's default model
    assert document["insight"]["provider"] == "groq"
    assert [request.path for request in server.requests] == ["/openai/v1/chat/completions"]
    assert "gsk-test-only" in server.requests[0].headers.get("authorization", "")
