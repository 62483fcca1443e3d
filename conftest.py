"""Repository-wide pytest setup: the ``--cluster`` option, the ``cluster`` fixture and a test PKI (``tls_files``).

``--cluster=local`` (default) starts a real control plane from the built
binaries, ``kind`` uses pytest-kind (needs Docker), ``existing`` uses
``$KUBECONFIG``. Tests that take the ``cluster`` fixture get the ``cluster``
marker, so ``-m 'not cluster'`` runs everything else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.providers import PROVIDERS, ClusterHandle, provide


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        choices=PROVIDERS,
        default="local",
        help="Kubernetes for tests marked 'cluster': local control plane (default), kind, or existing (KUBECONFIG)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    """The cluster chosen with ``--cluster``; one per test session (per xdist worker)."""
    with provide(request.config.getoption("--cluster"), request, tmp_path_factory.mktemp("cluster")) as handle:
        yield handle


@pytest.fixture
def namespace(cluster: ClusterHandle) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount, so pods are admitted), deleted after the test."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    name = f"test-{uuid.uuid4().hex[:8]}"
    with cluster.api_client() as client:
        core = CoreV1Api(client)
        body: Any = {"metadata": {"name": name}}  # the client takes plain dicts as well as its models
        core.create_namespace(body)
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", name)
                break
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield name
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate for 127.0.0.1, its key), made with openssl."""
    from devtools.devcluster.pki import PKIError, issue, make_ca

    directory = tmp_path_factory.mktemp("tls")
    try:
        ca = make_ca(directory, "resource-agent-test-ca")
        server = issue(ca, directory, "server", "resource-agent", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True)
    except PKIError as exc:
        pytest.skip(str(exc))
    return ca.cert, server.cert, server.key
