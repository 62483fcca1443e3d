"""The agent's HTTP endpoints: /metrics, /healthz, /readyz, /report (stdlib ThreadingHTTPServer)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from resource_agent.config.listen import parse_listen
from resource_agent.node_agent.agent import Agent

log = logging.getLogger(__name__)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(agent: Agent, listen: str | tuple[str, int]) -> ThreadingHTTPServer:
    """A server bound to `listen` (`host:port` or a parsed pair) answering for `agent` (not yet serving)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(agent.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200 if agent.alive else 503, b"ok\n" if agent.alive else b"sampling stopped\n")
            elif path == "/readyz":
                self._send(200 if agent.ready else 503, b"ready\n" if agent.ready else b"no sample yet\n")
            elif path == "/report":
                summary = agent.summary()
                if summary is None:
                    self._send(503, b'{"error": "no summary yet"}\n', "application/json")
                else:
                    self._send(200, json.dumps(summary.to_wire()).encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz, /report\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    host, port = parse_listen(listen) if isinstance(listen, str) else listen
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
