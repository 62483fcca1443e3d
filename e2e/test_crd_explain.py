"""`kubectl explain` prints the CRDs' field descriptions, served by the real API server."""

from __future__ import annotations

import pytest

from devtools.demo.stack import wait_until
from e2e.providers import ClusterHandle
from e2e.test_admission import _crd_files, wait_established


@pytest.fixture(scope="module")
def crds(cluster: ClusterHandle) -> None:
    for path in _crd_files():
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for crd in ("resourcereports.resource.optiinfra.io", "resourcerecommendations.resource.optiinfra.io"):
        wait_established(cluster, crd)


def _explain(cluster: ClusterHandle, path: str) -> str:
    def printed() -> str | None:
        result = cluster.kubectl("explain", path, check=False)
        return result.stdout if result.returncode == 0 else None

    return " ".join(str(wait_until(printed, 60.0, what=f"kubectl explain {path}")).split())  # kubectl wraps lines


@pytest.mark.usefixtures("crds")
def test_explain_decision_prints_its_description(cluster: ClusterHandle) -> None:
    out = _explain(cluster, "rrec.spec.decision")
    assert "Approved asks the operator to carry out" in out, out
    assert "<empty>" not in out


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("rrep.status.gpu.devices.faults", "Standing hardware faults"),
        ("rrep.status.lmcache.instances.lookupHitRate", "lookup hits / lookup tokens"),
        ("rrec.status.insight.priority", "act now"),
    ],
)
def test_explain_prints_nested_descriptions(cluster: ClusterHandle, path: str, words: str) -> None:
    assert words in _explain(cluster, path)
