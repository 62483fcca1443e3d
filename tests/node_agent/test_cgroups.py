"""Process -> pod and container from /proc/<pid>/cgroup."""

from __future__ import annotations

import pytest

from resource_agent.node_agent.cgroups import pod_and_container

UID = "1f6b1f4e-8f0c-4c1e-9d1a-3c2b6a5d4e7f"
CID = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope", (UID, CID)),
        (f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope", (UID, CID)),
        (f"0::/kubepods/besteffort/pod{UID}/{CID}", (UID, CID)),
        (f"12:memory:/kubepods/burstable/pod{UID}/{CID}\n11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}", (UID, CID)),
        (f"0::/kubepods/pod{UID}", (UID, None)),
        ("0::/system.slice/containerd.service", (None, None)),
        ("", (None, None)),
    ],
)
def test_pod_and_container(cgroup: str, expected: tuple[str | None, str | None]) -> None:
    assert pod_and_container(cgroup) == expected
