"""Which LMCache instances run on this node, and at which URLs.

An LMCache instance serves one internal API server per process: port
`internal_api_server_port_start` (default 6999) for the scheduler and
`start + 1 + N` for worker N. An instance is therefore a list of base URLs,
one per port, that are scraped and combined.

Sources:
- URLs given directly (`--lmcache-url`, the config file's `lmcache_urls`).
  One spec names one instance; several ports share the host:
  `http://10.0.0.5:6999,7000,7001` (or `10.0.0.5:6999+2`: first port and the
  number of worker ports that follow it).
- Pods on this node with the annotation `resource.optiinfra.io/lmcache-port`
  (the first port) and optionally `resource.optiinfra.io/lmcache-workers`
  (how many worker ports follow). The pod IP is the host.

`list_node_pods` asks the API server through the agent's small client (`resource_agent.kubeclient`) and keeps
of each pod only what the discoveries read (`pod_fields`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from resource_agent.kubeclient.config import load_connection
from resource_agent.kubeclient.rest import shared_client
from resource_agent.lmcache.config import redact_url

ANNOTATION_PREFIX = "resource.optiinfra.io/"  # of every annotation pod discovery reads (LMCache and serving)
PORT_ANNOTATION = "resource.optiinfra.io/lmcache-port"
WORKERS_ANNOTATION = "resource.optiinfra.io/lmcache-workers"
MAX_WORKERS = 256

_SPEC = re.compile(r"^(?P<scheme>https?://)?(?P<host>\[[^\]]+\]|[^:/,+\s]+):(?P<ports>[0-9,+ ]+)/?$")


class DiscoveryError(ValueError):
    """A URL spec or annotation that cannot name an LMCache instance."""


@dataclass(frozen=True)
class Instance:
    """One LMCache instance: a stable id and one base URL per process."""

    id: str
    urls: tuple[str, ...]
    pod: str | None = None
    namespace: str | None = None


def port_urls(scheme: str, host: str, first_port: int, workers: int) -> tuple[str, ...]:
    """Base URLs of the scheduler port and the `workers` ports that follow it."""
    if not 0 < first_port <= 65535 or not 0 <= workers <= MAX_WORKERS or first_port + workers > 65535:
        raise DiscoveryError(f"port {first_port} with {workers} workers is out of range")
    return tuple(f"{scheme}://{host}:{port}" for port in range(first_port, first_port + workers + 1))


def parse_url_spec(spec: str) -> Instance:
    """Parse `[http://]host:6999,7000,7001` or `[http://]host:6999+2` into an instance."""
    text = spec.strip()
    shown = redact_url(text if "://" in text else f"http://{text}")  # never echo credentials
    match = _SPEC.match(text)
    if match is None or urlsplit(text if "://" in text else f"http://{text}").username is not None:
        raise DiscoveryError(f"bad LMCache URL {shown!r}: expected [http://]host:PORT[,PORT...] or host:PORT+WORKERS")
    scheme = (match["scheme"] or "http://").removesuffix("://")
    host, ports = match["host"], match["ports"].replace(" ", "")
    try:
        if "+" in ports:
            first, workers = ports.split("+", 1)
            urls = port_urls(scheme, host, int(first), int(workers))
        else:
            numbers = [int(port) for port in ports.split(",")]
            if any(not 0 < port <= 65535 for port in numbers) or len(set(numbers)) != len(numbers):
                raise DiscoveryError(f"bad LMCache URL {shown!r}: ports must be distinct and in 1-65535")
            urls = tuple(f"{scheme}://{host}:{port}" for port in numbers)
    except ValueError as exc:
        raise DiscoveryError(f"bad LMCache URL {shown!r}: {exc}") from None
    return Instance(id=urls[0], urls=urls)


def instance_from_pod(pod: Mapping[str, Any]) -> Instance | None:
    """The instance an annotated, running pod serves; None when not annotated or not ready to scrape.

    `pod` is the pod as a JSON-like dict (metadata.annotations, status.podIP, ...).
    """
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if PORT_ANNOTATION not in annotations:
        return None
    status = pod.get("status") or {}
    ip = status.get("podIP") or status.get("pod_ip")
    if not ip or status.get("phase") != "Running":
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    try:
        first = int(annotations[PORT_ANNOTATION])
        workers = int(annotations.get(WORKERS_ANNOTATION, "0"))
    except ValueError:
        raise DiscoveryError(f"pod {namespace}/{name}: annotations {PORT_ANNOTATION}/{WORKERS_ANNOTATION} must be integers") from None
    host = f"[{ip}]" if ":" in ip else ip
    return Instance(id=f"{namespace}/{name}", urls=port_urls("http", host, first, workers), pod=name, namespace=namespace)


def instances_from_pods(pods: Iterable[Mapping[str, Any]]) -> tuple[list[Instance], list[str]]:
    """Instances of annotated pods, and one error per pod whose annotations are wrong."""
    instances: list[Instance] = []
    errors: list[str] = []
    for pod in pods:
        try:
            instance = instance_from_pod(pod)
        except DiscoveryError as exc:
            errors.append(str(exc))
            continue
        if instance is not None:
            instances.append(instance)
    return instances, errors


POD_LIST_REUSE_SECONDS = 2.0  # the LMCache and serving discoveries refresh in the same sample: one request serves both
_recent_lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_recent_lock = threading.Lock()


def list_node_pods(node_name: str, timeout_seconds: float = 3.0) -> list[dict[str, Any]]:
    """Pods scheduled on `node_name` (in-cluster config, else kubeconfig), each reduced by `pod_fields` as it is
    parsed; a list made less than POD_LIST_REUSE_SECONDS ago is reused (callers only read it)."""
    with _recent_lock:
        recent = _recent_lists.get(node_name)
    if recent is not None and time.monotonic() - recent[0] < POD_LIST_REUSE_SECONDS:
        return recent[1]
    api = shared_client(load_connection(), timeout=timeout_seconds)
    answer = api.get("/api/v1/pods", object_hook=_reduce_pods, fieldSelector=f"spec.nodeName={node_name}")
    pods: list[dict[str, Any]] = answer["items"]
    with _recent_lock:
        _recent_lists[node_name] = (time.monotonic(), pods)
    return pods


def pod_fields(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What the LMCache and serving discoveries read of a pod: metadata name, namespace, uid and the annotations
    under ANNOTATION_PREFIX; status podIP and phase; the containers' name, image and ports.

    A serving node's pod is ~11 KiB of JSON (managedFields, env, volumes, probes, statuses), several times that
    as Python objects: 40 such pods cost the agent 2 MiB of RSS every discovery interval in full, ~0.1 reduced."""
    metadata, spec, status = (_object(pod.get(key)) for key in ("metadata", "spec", "status"))
    containers = [container for container in spec.get("containers") or [] if isinstance(container, dict)]
    annotations = {key: value for key, value in _object(metadata.get("annotations")).items() if key.startswith(ANNOTATION_PREFIX)}
    return {
        "metadata": {key: metadata[key] for key in ("name", "namespace", "uid") if key in metadata} | {"annotations": annotations},
        "spec": {"containers": [{key: c[key] for key in ("name", "image", "ports") if key in c} for c in containers]},
        "status": {key: status[key] for key in ("podIP", "phase") if key in status},
    }


def _reduce_pods(value: dict[str, Any]) -> Any:
    """json.loads' object_hook for a pod list: every pod reduced to `pod_fields` as soon as it is parsed (the list's
    own object has metadata and items, no spec)."""
    return pod_fields(value) if "metadata" in value and "spec" in value else value


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def merge(direct: Iterable[Instance], discovered: Iterable[Instance]) -> list[Instance]:
    """All instances once; a pod and a direct URL naming the same first port are one instance (the pod's id wins)."""
    merged: dict[str, Instance] = {}
    by_url: dict[str, str] = {}
    for instance in [*discovered, *direct]:
        if instance.urls[0] in by_url:
            continue
        merged[instance.id] = instance
        by_url[instance.urls[0]] = instance.id
    return list(merged.values())
