"""Which serving engines (vLLM, SGLang) run on this node, and where their /metrics are.

Sources:
- URLs given directly (`--serving-url`, repeatable, or the config file's
  `serving_urls`), each with the engine kind: `vllm=http://10.0.0.5:8000`,
  `sglang=http://10.0.0.6:30000`. A path other than `/` is kept (the metrics
  path defaults to `/metrics`).
- Pods on this node with the annotation `resource.optiinfra.io/serving-engine`
  (`vllm` or `sglang`) and `resource.optiinfra.io/serving-port` (the port of
  the engine's HTTP server, which serves `/metrics`); optionally
  `resource.optiinfra.io/serving-metrics-path`. The pod IP is the host; the
  instance id is `<namespace>/<pod>`, the same id an LMCache instance annotated
  on the same pod gets, which is how a vLLM is linked to its LMCache.

Pure: no HTTP, no Kubernetes client (the collector hands in the pods).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENGINES = ("vllm", "sglang")
ENGINE_ANNOTATION = "resource.optiinfra.io/serving-engine"
PORT_ANNOTATION = "resource.optiinfra.io/serving-port"
PATH_ANNOTATION = "resource.optiinfra.io/serving-metrics-path"
DEFAULT_PATH = "/metrics"

_KIND = re.compile(r"^(?P<kind>[a-z]+)=(?P<url>.+)$")


class DiscoveryError(ValueError):
    """A URL spec or annotation that cannot name a serving endpoint."""


@dataclass(frozen=True)
class Endpoint:
    """One serving engine's HTTP server: its kind and the URL of its Prometheus metrics."""

    id: str
    engine: str  # "vllm" | "sglang"
    url: str  # full URL of the metrics, e.g. http://10.0.0.5:8000/metrics
    pod: str | None = None
    namespace: str | None = None
    pod_uid: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment (they may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.hostname or ""
    if parts.hostname and ":" in parts.hostname:
        netloc = f"[{parts.hostname}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_url_spec(spec: str) -> Endpoint:
    """Parse `vllm=http://host:port[/path]` (or `sglang=...`) into an endpoint."""
    text = spec.strip()
    match = _KIND.match(text)
    if match is None:
        raise DiscoveryError(f"bad serving URL {redact_url(text)!r}: expected ENGINE=URL with ENGINE one of {', '.join(ENGINES)}")
    kind, url = match["kind"], match["url"].strip()
    if kind not in ENGINES:
        raise DiscoveryError(f"bad serving URL: unknown engine {kind!r} (known: {', '.join(ENGINES)})")
    if "://" not in url:
        url = f"http://{url}"
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DiscoveryError(f"bad serving URL {shown!r}: invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise DiscoveryError(f"bad serving URL {shown!r}: expected http(s)://host:port")
    if parts.username is not None or parts.password is not None:
        raise DiscoveryError(f"bad serving URL {shown!r}: credentials in the URL are not accepted")
    path = parts.path.rstrip("/") or DEFAULT_PATH
    full = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return Endpoint(id=redact_url(base), engine=kind, url=full)


def endpoints_from_specs(specs: Iterable[str]) -> list[Endpoint]:
    """Endpoints named directly, in order, without duplicates."""
    seen: dict[str, Endpoint] = {}
    for spec in specs:
        endpoint = parse_url_spec(spec)
        seen.setdefault(endpoint.url, endpoint)
    return list(seen.values())


def endpoint_from_pod(pod: Mapping[str, Any]) -> Endpoint | None:
    """The endpoint an annotated, running pod serves; None when not annotated or not running."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if ENGINE_ANNOTATION not in annotations and PORT_ANNOTATION not in annotations:
        return None
    status = pod.get("status") or {}
    ip = status.get("podIP") or status.get("pod_ip")
    if not ip or status.get("phase") != "Running":
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    engine = str(annotations.get(ENGINE_ANNOTATION, "")).strip().lower()
    if engine not in ENGINES:
        raise DiscoveryError(f"pod {namespace}/{name}: {ENGINE_ANNOTATION} must be one of {', '.join(ENGINES)}, got {engine!r}")
    try:
        port = int(annotations.get(PORT_ANNOTATION, ""))
    except ValueError:
        raise DiscoveryError(f"pod {namespace}/{name}: {PORT_ANNOTATION} must be an integer") from None
    if not 0 < port <= 65535:
        raise DiscoveryError(f"pod {namespace}/{name}: {PORT_ANNOTATION} {port} is out of range")
    path = "/" + str(annotations.get(PATH_ANNOTATION, DEFAULT_PATH)).lstrip("/")
    host = f"[{ip}]" if ":" in ip else ip
    return Endpoint(
        id=f"{namespace}/{name}",
        engine=engine,
        url=f"http://{host}:{port}{path}",
        pod=name,
        namespace=namespace,
        pod_uid=metadata.get("uid"),
    )


def endpoints_from_pods(pods: Iterable[Mapping[str, Any]]) -> tuple[list[Endpoint], list[str]]:
    """Endpoints of annotated pods, and one error per pod whose annotations are wrong."""
    endpoints: list[Endpoint] = []
    errors: list[str] = []
    for pod in pods:
        try:
            endpoint = endpoint_from_pod(pod)
        except DiscoveryError as exc:
            errors.append(str(exc))
            continue
        if endpoint is not None:
            endpoints.append(endpoint)
    return endpoints, errors


def merge(direct: Iterable[Endpoint], discovered: Iterable[Endpoint]) -> list[Endpoint]:
    """All endpoints once; a pod and a direct URL naming the same metrics URL are one (the pod's id wins)."""
    merged: dict[str, Endpoint] = {}
    for endpoint in [*discovered, *direct]:
        merged.setdefault(endpoint.url, endpoint)
    return list(merged.values())
