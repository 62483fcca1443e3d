"""Cluster providers for the e2e suite: ``local`` (built control plane), ``kind``, ``existing``.

Each yields a :class:`ClusterHandle`, the object behind the ``cluster`` fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.devcluster.build import BuildError, ensure_binaries
from devtools.devcluster.local import LocalCluster, kwok_command
from devtools.devcluster.nodes import NodeSpec, add_nodes
from devtools.devcluster.process import Component

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

PROVIDERS = ("local", "kind", "existing")


@dataclass
class ClusterHandle:
    """A cluster the tests may use: admin kubeconfig, clients and the matching CLI tools."""

    provider: str
    kubeconfig: Path
    bin_dir: Path | None
    state_dir: Path
    local: LocalCluster | None = None
    _kwok: Component | None = field(default=None, repr=False)

    def api_client(self) -> ApiClient:
        """A new kubernetes ApiClient with the admin credentials."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def tool(self, name: str) -> Path:
        """``name`` from the built bin dir (version-matched), else from PATH."""
        if self.bin_dir is not None and (self.bin_dir / name).exists():
            return self.bin_dir / name
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"no '{name}' binary: build the control plane (scripts/build-controlplane)")
        return Path(found)

    @property
    def kubectl_path(self) -> Path:
        return self.tool("kubectl")

    @property
    def helm_path(self) -> Path:
        return self.tool("helm")

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises CalledProcessError on failure when ``check``."""
        return _run([str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args], check, input)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster."""
        return _run([str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args], check, None)

    def add_nodes(self, specs: Iterable[NodeSpec], timeout: float = 60.0) -> list[str]:
        """Create simulated (kwok) nodes and wait until they are Ready; returns their names."""
        if self.local is None and self._kwok is None:
            self._start_kwok()
        with self.api_client() as client:
            return add_nodes(client, specs, timeout=timeout)

    def close(self) -> None:
        if self._kwok is not None:
            self._kwok.stop()

    def _start_kwok(self) -> None:
        """On kind/existing clusters, run kwok here so simulated nodes work there too."""
        if self.bin_dir is None:
            pytest.skip("simulated nodes need the built kwok binary (scripts/build-controlplane)")
        self._kwok = Component("kwok", kwok_command(self.bin_dir, self.kubeconfig), self.state_dir / "kwok.log")
        self._kwok.start()


def _run(command: list[str], check: bool, input: str | None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
    return result


def _optional_bin_dir() -> Path | None:
    try:
        return ensure_binaries()
    except BuildError:
        return None


@contextmanager
def local_provider(tmp: Path) -> Iterator[ClusterHandle]:
    """A fresh control plane from the built binaries, state in ``tmp``."""
    try:
        bin_dir = ensure_binaries()
    except BuildError as exc:
        pytest.skip(f"local control plane unavailable: {exc}")
    with LocalCluster(tmp / "cluster", bin_dir) as local:
        handle = ClusterHandle("local", local.kubeconfig, bin_dir, tmp, local=local)
        yield handle


@contextmanager
def kind_provider(request: pytest.FixtureRequest, tmp: Path) -> Iterator[ClusterHandle]:
    """A kind cluster via pytest-kind; skipped where Docker does not answer."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("--cluster=kind needs a working Docker ('docker info' failed)")
    kind = request.getfixturevalue("kind_cluster")
    handle = ClusterHandle("kind", Path(kind.kubeconfig_path).resolve(), _optional_bin_dir(), tmp)
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def existing_provider(tmp: Path) -> Iterator[ClusterHandle]:
    """The cluster ``$KUBECONFIG`` points at."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        pytest.skip("--cluster=existing needs KUBECONFIG to be set")
    handle = ClusterHandle("existing", Path(kubeconfig.split(os.pathsep)[0]), _optional_bin_dir(), tmp)
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def provide(name: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[ClusterHandle]:
    """The cluster of provider ``name``."""
    if name == "local":
        with local_provider(tmp) as handle:
            yield handle
    elif name == "kind":
        with kind_provider(request, tmp) as handle:
            yield handle
    elif name == "existing":
        with existing_provider(tmp) as handle:
            yield handle
    else:
        raise pytest.UsageError(f"unknown --cluster={name}; choose from {', '.join(PROVIDERS)}")
