"""Map a process to its Kubernetes pod and container from /proc/<pid>/cgroup (pure parsing + one read).

Handles cgroup v1 and v2, and both kubelet cgroup drivers:
- systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`
- cgroupfs: `/kubepods/burstable/pod<uid>/<id>`
"""

from __future__ import annotations

import re
from pathlib import Path

_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_CONTAINER = re.compile(r"^(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?$")


def pod_and_container(cgroup_text: str) -> tuple[str | None, str | None]:
    """(pod UID, container id) from the text of /proc/<pid>/cgroup; (None, None) outside Kubernetes."""
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        if "kubepods" not in path:
            continue
        pod = _POD.search(path)
        if pod is None:
            continue
        container = _CONTAINER.match(path.rstrip("/").rsplit("/", 1)[-1])
        return pod.group(1).replace("_", "-"), container.group(1) if container else None
    return None, None


def process_pod(host_proc: Path, pid: int) -> tuple[str | None, str | None]:
    """(pod UID, container id) of a host process; (None, None) when it is gone or not in a pod."""
    try:
        return pod_and_container((host_proc / str(pid) / "cgroup").read_text())
    except OSError:
        return None, None


def process_name(host_proc: Path, pid: int) -> str | None:
    try:
        return (host_proc / str(pid) / "comm").read_text().strip() or None
    except OSError:
        return None
