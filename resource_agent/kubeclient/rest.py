"""JSON GET and server-side apply over one keep-alive connection (stdlib http.client), with the connection from
`kubeclient.config`.

The agent makes a few calls a minute; http.client (already loaded by the /metrics server) carries them without
httpx and httpcore, which cost an agent that scrapes no LMCache or serving endpoint ~1.6 MiB of its RSS. Requests
go straight to the API server (no HTTP(S)_PROXY), as the in-cluster address is the Service IP.
"""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from resource_agent import __version__
from resource_agent.kubeclient.config import Connection

APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body goes as JSON
# A kept-alive connection the server or a middlebox closed meanwhile fails on reuse with one of these: try once more
# on a new connection (GET and apply are idempotent).
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionResetError, BrokenPipeError)


class ApiError(Exception):
    """The API server answered with an error status; the message is its Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if message else f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


class ApiUnreachable(OSError):
    """No answer from the API server: the connection, TLS or a read failed or timed out."""


def ssl_context(connection: Connection) -> ssl.SSLContext:
    """Trust the connection's CA (else the system's) and present its client certificate, if any."""
    context = ssl.create_default_context(cadata=connection.ca.decode() if connection.ca else None)
    if not connection.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if connection.client_cert and connection.client_key:
        with tempfile.TemporaryDirectory(prefix="resource-agent-") as folder:  # ssl loads a key pair from files only
            cert, key = Path(folder) / "tls.crt", Path(folder) / "tls.key"
            for path, data in ((cert, connection.client_cert), (key, connection.client_key)):
                path.touch(mode=0o600)
                path.write_bytes(data)
            context.load_cert_chain(cert, key)
    return context


class KubeClient:
    """JSON GET and server-side apply against one API server; raises ApiError or ApiUnreachable. Thread-safe (one
    request at a time)."""

    def __init__(self, connection: Connection, timeout: float = 30.0) -> None:
        address = urlsplit(connection.server)
        if address.scheme not in ("https", "http") or not address.hostname:
            raise ValueError(f"API server address {connection.server!r} is not an http(s) URL")
        self._connection, self._timeout = connection, timeout
        self._server, self._host, self._base_path = connection.server, address.hostname, address.path.rstrip("/")
        self._port = address.port or (443 if address.scheme == "https" else 80)
        self._tls = ssl_context(connection) if address.scheme == "https" else None
        self._lock = threading.Lock()
        self._http: http.client.HTTPConnection | None = None
        self.closed = False

    def get(self, path: str, object_hook: Callable[[dict[str, Any]], Any] | None = None, **params: str) -> dict[str, Any]:
        """GET `path` with `params`; `object_hook` is json.loads' (each JSON object as it is parsed, innermost first:
        lets a caller keep only what it reads of a large answer)."""
        return self._request("GET", path, params, object_hook=object_hook)

    def apply(self, path: str, body: dict[str, Any], field_manager: str, *, force: bool = True) -> dict[str, Any]:
        """Server-side apply of `body` at `path` (an object or its /status) as `field_manager`."""
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self._request("PATCH", path, params, json.dumps(body).encode(), APPLY_PATCH)

    def _request(self, method: str, path: str, params: dict[str, str], body: bytes | None = None,
                 content_type: str | None = None, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
        target = f"{self._base_path}{path}" + (f"?{urlencode(params)}" if params else "")
        headers = {"Accept": "application/json", "User-Agent": f"resource-agent/{__version__}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        token = self._connection.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with self._lock:
            if self.closed:
                raise ApiUnreachable(f"{self._server}: the client is closed")
            status, reason, data = self._exchange(method, target, body, headers)
        if status >= 400:
            raise _api_error(status, reason, data)
        try:
            document: dict[str, Any] = json.loads(data, object_hook=object_hook)
        except ValueError as exc:
            raise ApiUnreachable(f"{self._server}: {method} {path} answered HTTP {status} with a body that is not JSON") from exc
        return document

    def _exchange(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """One request and its whole answer; a kept-alive connection found stale is replaced once."""
        reused = self._http is not None
        try:
            try:
                return self._send(method, target, body, headers)
            except STALE_CONNECTION_ERRORS:
                if not reused:
                    raise
            return self._send(method, target, body, headers)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, TLS, garbled
            raise ApiUnreachable(f"{self._server}: {type(exc).__name__}: {exc}") from exc

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        try:
            if self._http is None:
                self._http = self._connect()
            self._http.request(method, target, body=body, headers=headers)
            response = self._http.getresponse()
            data = response.read()
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        return response.status, response.reason, data

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _drop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._drop()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _api_error(status: int, reason: str, data: bytes) -> ApiError:
    try:
        message = str(json.loads(data).get("message", ""))
    except (ValueError, AttributeError):
        message = data[:200].decode(errors="replace")
    return ApiError(status, reason, message)


_shared: dict[tuple[Connection, float], KubeClient] = {}
_shared_lock = threading.Lock()


def shared_client(connection: Connection, timeout: float = 30.0) -> KubeClient:
    """One long-lived client per process for periodic callers (a TLS handshake and an SSL context cost ~7 ms of
    CPU per call); replaced, and the old one closed, when the configuration changes."""
    key = (connection, timeout)
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            for old in _shared.values():
                old.close()
            _shared.clear()
            client = _shared[key] = KubeClient(connection, timeout)
        return client
