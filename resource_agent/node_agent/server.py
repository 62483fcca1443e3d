"""The agent's HTTP endpoints: /metrics, /healthz, /readyz, /report (stdlib ThreadingHTTPServer).

The same small server serves the operator's /metrics (`make_metrics_server`), so both share
the optional TLS and the authentication and authorisation of `httpauth` (kube-rbac-proxy's
TokenReview + SubjectAccessReview).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from resource_agent.config.listen import parse_listen
from resource_agent.node_agent.agent import Agent
from resource_agent.node_agent.httpauth import CachedReviewer, EndpointOptions, Reviewer, decide

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
REQUEST_TIMEOUT_SECONDS = 30.0

Response = tuple[int, bytes, str]
Route = Callable[[], Response]


@dataclass(frozen=True)
class EndpointSecurity:
    """TLS (a server context) and who may read the endpoints (a reviewer); None for each means off."""

    reviewer: Reviewer | None = None
    tls: ssl.SSLContext | None = None


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context with the certificate chain and key (TLS 1.2 or newer)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


def endpoint_security(options: EndpointOptions, reviewer: Reviewer | None = None) -> EndpointSecurity:
    """The security of an endpoint from its settings; `reviewer` is wrapped in a cache."""
    tls = tls_context(options.tls_cert_file, options.tls_key_file) if options.tls_cert_file and options.tls_key_file else None
    cached = CachedReviewer(reviewer, options.cache_ttl_seconds) if reviewer is not None else None
    return EndpointSecurity(reviewer=cached, tls=tls)


def make_http_server(
    routes: Mapping[str, Route], listen: str | tuple[str, int], security: EndpointSecurity | None = None
) -> ThreadingHTTPServer:
    """A server bound to `listen` answering GET for `routes` (not yet serving)."""
    secured = security or EndpointSecurity()
    known = ", ".join(sorted(routes))

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_SECONDS

        def setup(self) -> None:
            super().setup()
            if isinstance(self.request, ssl.SSLSocket):
                self.request.do_handshake()  # here, in the request's thread, not in the accept loop

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            decision = decide(path, self.headers.get("Authorization"), secured.reviewer)
            if not decision.allowed:
                log.debug("refused GET %s from %s: %s", path, self.address_string(), decision.reason)
                headers = {"WWW-Authenticate": 'Bearer realm="resource-agent"'} if decision.status == 401 else {}
                self._send(decision.status, f"{decision.reason}\n".encode(), TEXT, headers)
                return
            route = routes.get(path)
            if route is None:
                self._send(404, f"not found: try {known}\n".encode())
                return
            self._send(*route())

        def _send(self, status: int, body: bytes, content_type: str = TEXT, headers: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    host, port = parse_listen(listen) if isinstance(listen, str) else listen
    server_class = _QuietServer6 if ":" in host else _QuietServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    if secured.tls is not None:
        server.socket = secured.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # a client that drops the connection or fails the TLS handshake is not the server's error
        log.debug("request from %s failed", client_address, exc_info=True)


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


def make_server(agent: Agent, listen: str | tuple[str, int], security: EndpointSecurity | None = None) -> ThreadingHTTPServer:
    """The agent's server: /metrics, /healthz, /readyz, /report."""

    def metrics() -> Response:
        return 200, generate_latest(agent.registry), CONTENT_TYPE_LATEST

    def healthz() -> Response:
        return (200, b"ok\n", TEXT) if agent.alive else (503, b"sampling stopped\n", TEXT)

    def readyz() -> Response:
        return (200, b"ready\n", TEXT) if agent.ready else (503, b"no sample yet\n", TEXT)

    def report() -> Response:
        summary = agent.summary()
        if summary is None:
            return 503, b'{"error": "no summary yet"}\n', JSON
        return 200, json.dumps(summary.to_wire()).encode(), JSON

    return make_http_server({"/metrics": metrics, "/healthz": healthz, "/readyz": readyz, "/report": report}, listen, security)


def make_metrics_server(
    registry: CollectorRegistry, listen: str | tuple[str, int], security: EndpointSecurity | None = None
) -> ThreadingHTTPServer:
    """A /metrics-only server for `registry` (the operator's)."""

    def metrics() -> Response:
        return 200, generate_latest(registry), CONTENT_TYPE_LATEST

    return make_http_server({"/metrics": metrics}, listen, security)


SHUTDOWN_POLL_SECONDS = 2.0  # serve_forever wakes this often to see a shutdown (socketserver's 0.5 s: ~1 ms CPU per 5 s idle)


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve on a daemon thread; `server.shutdown()` returns within SHUTDOWN_POLL_SECONDS."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, name="http", daemon=True)
    thread.start()
    return thread
