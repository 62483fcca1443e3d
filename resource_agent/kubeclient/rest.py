"""JSON GET and server-side apply over httpx, with the connection from `kubeclient.config`."""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from resource_agent import __version__
from resource_agent.kubeclient.config import Connection

APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body goes as JSON


class ApiError(Exception):
    """The API server answered with an error status; the message is its Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if message else f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


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


class _Bearer(httpx.Auth):
    """The connection's bearer token, read for every request (a rotated token file is picked up)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._connection.bearer_token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class KubeClient:
    """JSON GET and server-side apply against one API server; raises ApiError or httpx.HTTPError."""

    def __init__(self, connection: Connection, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=connection.server, verify=ssl_context(connection), auth=_Bearer(connection), timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": f"resource-agent/{__version__}"},
        )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return self._request("GET", path, params=params)

    def apply(self, path: str, body: dict[str, Any], field_manager: str, *, force: bool = True) -> dict[str, Any]:
        """Server-side apply of `body` at `path` (an object or its /status) as `field_manager`."""
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self._request("PATCH", path, params=params, content=json.dumps(body), headers={"Content-Type": APPLY_PATCH})

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _api_error(response)
        document: dict[str, Any] = response.json()
        return document

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _api_error(response: httpx.Response) -> ApiError:
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text[:200]
    return ApiError(response.status_code, response.reason_phrase, message)


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
