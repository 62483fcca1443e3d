"""A local simulator of the chat-completions API (Groq and OpenAI-compatible), for tests, e2e and demos.

It listens on loopback and answers `POST /openai/v1/chat/completions` (Groq's
path) and `POST /v1/chat/completions` (OpenAI-compatible). By default it
answers with a valid InsightAnswer derived from the findings in the request's
data block; `mode` fail answers 500, garbage answers text that is not JSON.
Tests script individual replies (`Reply`) and read what was received
(`requests`). Run it with:

    python -m devtools.llm_server --port 8089 --mode ok
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click

from resource_agent.llm.prompts import DATA_BEGIN, DATA_END

log = logging.getLogger(__name__)

CHAT_PATHS = ("/openai/v1/chat/completions", "/v1/chat/completions")
_PRIORITY_BY_SEVERITY = {"critical": 1, "warning": 2, "info": 4}


class Mode(StrEnum):
    OK = "ok"
    FAIL = "fail"
    GARBAGE = "garbage"


@dataclass(frozen=True)
class Reply:
    """One scripted response. `content=None` on a 200 means: derive a valid answer from the request.

    `raw` replaces the whole body (a broken completion rather than a broken answer).
    """

    status: int = 200
    content: str | None = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    prompt_tokens: int | None = None  # default: request characters / 4
    completion_tokens: int | None = None  # default: answer characters / 4

    @classmethod
    def error(cls, status: int, retry_after: float | None = None) -> Reply:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        return cls(status=status, headers=headers)


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float  # time.monotonic()

    @property
    def text(self) -> str:
        """All message contents, joined: what left the cluster."""
        return "\n".join(str(message.get("content", "")) for message in self.body.get("messages", []))


class FakeLLMServer:
    """A threaded HTTP server on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, mode: Mode = Mode.OK) -> None:
        self.mode = mode
        self.requests: list[ReceivedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def groq_base_url(self) -> str:
        """For `groq.AsyncGroq(base_url=...)`: the SDK appends /openai/v1/chat/completions."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """For `openai.AsyncOpenAI(base_url=...)`: the SDK appends /chat/completions."""
        return f"{self.url}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Replies for the next requests, in order; after them the mode answers."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        if self.mode is Mode.FAIL:
            return Reply.error(500)
        if self.mode is Mode.GARBAGE:
            return Reply(content="Sure! Here is my analysis: {not json")
        return Reply()

    def _respond(self, handler: BaseHTTPRequestHandler, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            _send_json(handler, 400, _error_body(400, "request body is not JSON"))
            return
        request = ReceivedRequest(path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic())
        reply = self._next_reply(request)
        if reply.delay_seconds and self._stopping.wait(reply.delay_seconds):
            return
        if reply.raw is not None:
            _send(handler, reply.status, reply.raw.encode(), reply.headers)
            return
        if reply.status != 200:
            _send_json(handler, reply.status, _error_body(reply.status, "scripted failure"), reply.headers)
            return
        content = reply.content if reply.content is not None else json.dumps(derived_answer(body))
        _send_json(handler, 200, _completion_body(body, content, reply), reply.headers)


def derived_answer(request_body: dict[str, Any]) -> dict[str, Any]:
    """A valid InsightAnswer built from the findings in the request's data block."""
    context = _data_block(request_body)
    findings = context.get("findings", []) if isinstance(context, dict) else []
    findings = [item for item in findings if isinstance(item, dict)]
    node = context.get("node", "the node") if isinstance(context, dict) else "the node"
    priority = min((_PRIORITY_BY_SEVERITY.get(str(item.get("severity")), 5) for item in findings), default=5)
    steps = [
        f"{item.get('id', '?')}: {item.get('action', {}).get('type', 'investigate')} "
        f"for {item.get('target', {}).get('name', 'the target')} ({item.get('rule', 'rule')})"
        for item in findings[:10]
    ]
    return {
        "summary": f"Node {node} has {len(findings)} finding(s); the most urgent is priority {priority}.",
        "priority": priority,
        "steps": steps or ["No action needed."],
        "expectedImpact": "The findings' conditions clear once the steps are done.",
        "risks": ["Acting on a node that serves traffic may interrupt requests."],
        "confidence": 0.7,
    }


def _data_block(request_body: dict[str, Any]) -> Any:
    for message in request_body.get("messages", []):
        content = str(message.get("content", "")) if isinstance(message, dict) else ""
        begin = content.find(DATA_BEGIN + "\n")
        end = content.find("\n" + DATA_END, begin)
        if begin >= 0 and end > begin:
            try:
                return json.loads(content[begin + len(DATA_BEGIN) + 1 : end])
            except json.JSONDecodeError:
                return {}
    return {}


def _completion_body(request_body: dict[str, Any], content: str, reply: Reply) -> dict[str, Any]:
    request_chars = sum(len(str(m.get("content", ""))) for m in request_body.get("messages", []) if isinstance(m, dict))
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else request_chars // 4
    completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else len(content) // 4
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request_body.get("model", "fake-model")),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "code": kind}}


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    _send(handler, status, json.dumps(body).encode(), headers)


def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str] | None) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        log.debug("client went away before the reply (it timed out)")


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if path not in CHAT_PATHS:
                _send_json(self, 404, _error_body(404, f"no route {path}"))
                return
            server._respond(self, path, raw)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                _send_json(self, 200, {"status": "ok"})
            else:
                _send_json(self, 404, _error_body(404, f"no route {self.path}"))

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("fake-llm: " + format, *args)

    return Handler


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=int)
@click.option("--mode", type=click.Choice([mode.value for mode in Mode]), default=Mode.OK.value, show_default=True)
def main(host: str, port: int, mode: str) -> None:
    """Serve a simulated Groq / OpenAI-compatible chat-completions API until interrupted."""
    server = FakeLLMServer(host, port, Mode(mode))
    click.echo(f"fake LLM ({mode}) on {server.url}: Groq base {server.groq_base_url}, OpenAI base {server.openai_base_url}")
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
