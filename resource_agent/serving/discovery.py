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
- Pods on this node that hold GPUs (a GPU process's cgroup names the pod's UID,
  or the kubelet's pod-resources API assigned it a GPU) but carry no annotation:
  a container whose name or image says `vllm` or `sglang` is scraped on the
  port it declares (the engine's default, vLLM 8000 / SGLang 30000, when it
  declares that or none), and a container that declares port 8000 or 30000 is
  taken for vLLM or SGLang. These endpoints are guesses (`guessed=True`): the
  collector drops one whose /metrics is not the engine's instead of reporting
  it unreachable.

Pure: no HTTP, no Kubernetes client (the collector hands in the pods).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENGINES = ("vllm", "sglang")
DEFAULT_PORTS = {"vllm": 8000, "sglang": 30000}  # `vllm serve --port`, `sglang.launch_server --port` defaults
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
    guessed: bool = False  # found from a GPU pod's containers, not named by a URL or an annotation

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


def _running_ip(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    ip = status.get("podIP") or status.get("pod_ip")
    return str(ip) if ip and status.get("phase") == "Running" else None


def _container_guess(container: Mapping[str, Any]) -> tuple[str, int] | None:
    """(engine, port) a container most likely serves, from its name, image and declared ports."""
    ports = [
        int(port.get("containerPort") or port.get("container_port") or 0)
        for port in container.get("ports") or []
        if str(port.get("protocol") or "TCP").upper() == "TCP"
    ]
    ports = [port for port in ports if 0 < port <= 65535]
    words = f"{container.get('name') or ''} {container.get('image') or ''}".lower()
    named = next((engine for engine in ENGINES if engine in words), None)
    if named is not None:
        default = DEFAULT_PORTS[named]
        if not ports or default in ports:
            return named, default
        return (named, ports[0]) if len(ports) == 1 else None  # several ports, none the default: no guess
    return next(((engine, port) for engine, port in DEFAULT_PORTS.items() if port in ports), None)


def endpoints_from_gpu_pods(pods: Iterable[Mapping[str, Any]], gpu_pods: Iterable[str]) -> list[Endpoint]:
    """Guessed endpoints of running, unannotated pods that hold GPUs.

    `gpu_pods` names the pods holding GPUs, by UID (GPU process cgroups) or by
    "<namespace>/<name>" (the kubelet's pod-resources API). One endpoint per pod: the first
    container with a guess."""
    holding = set(gpu_pods)
    endpoints = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        if ENGINE_ANNOTATION in annotations or PORT_ANNOTATION in annotations:
            continue  # annotated pods are endpoint_from_pod's
        name, namespace, uid = metadata.get("name"), metadata.get("namespace"), metadata.get("uid")
        if uid not in holding and f"{namespace}/{name}" not in holding:
            continue
        ip = _running_ip(pod)
        if ip is None:
            continue
        containers = (pod.get("spec") or {}).get("containers") or []
        guess = next((found for container in containers if (found := _container_guess(container)) is not None), None)
        if guess is None:
            continue
        engine, port = guess
        host = f"[{ip}]" if ":" in ip else ip
        endpoints.append(Endpoint(
            id=f"{namespace}/{name}", engine=engine, url=f"http://{host}:{port}{DEFAULT_PATH}",
            pod=name, namespace=namespace, pod_uid=uid, guessed=True,
        ))
    return endpoints


def merge(direct: Iterable[Endpoint], discovered: Iterable[Endpoint]) -> list[Endpoint]:
    """All endpoints once; a pod and a direct URL naming the same metrics URL are one (the pod's id wins)."""
    merged: dict[str, Endpoint] = {}
    for endpoint in [*discovered, *direct]:
        merged.setdefault(endpoint.url, endpoint)
    return list(merged.values())
