"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (simulated nodes and pods).

Everything runs from the binaries that :mod:`devtools.devcluster.build`
makes, with real TLS, Node+RBAC authorization and ServiceAccount tokens, and
keeps its state (certificates, etcd data, kubeconfigs, one log per component)
in one directory.

    with LocalCluster() as cluster:
        subprocess.run([cluster.bin_dir / "kubectl", "--kubeconfig", cluster.kubeconfig, "get", "ns"])
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from devtools.devcluster import pki
from devtools.devcluster.build import ensure_binaries
from devtools.devcluster.kubeconfig import kubeconfig, write_kubeconfig
from devtools.devcluster.process import Component, ComponentError, pid_alive

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
STATE_FILE = "state.json"
LOOPBACK = "127.0.0.1"


class ClusterError(RuntimeError):
    """The cluster could not start, or is already running in this state directory."""


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one cluster."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def free(cls) -> Ports:
        """Ports the kernel says are free right now (all held open together, so distinct)."""
        sockets = [socket.socket() for _ in range(5)]
        try:
            for sock in sockets:
                sock.bind((LOOPBACK, 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


def kwok_command(bin_dir: Path, kubeconfig_path: Path) -> list[str]:
    """kwok managing the nodes annotated ``kwok.x-k8s.io/node=fake`` (and their pods)."""
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={kubeconfig_path}",
        f"--config={KWOK_STAGES}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
        "--node-lease-duration-seconds=40",
        f"--cidr={POD_CIDR}",
    ]


def _https_status(port: int, path: str, context: ssl.SSLContext, timeout: float = 2.0) -> int:
    """HTTP status of ``GET https://127.0.0.1:<port><path>``, or 0 when nothing answers."""
    connection = http.client.HTTPSConnection(LOOPBACK, port, context=context, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def _admin_context(pki_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
    return context


def _insecure_context() -> ssl.SSLContext:
    """For the health endpoints of kube-controller-manager and kube-scheduler (self-signed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class LocalCluster:
    """Start and stop a local control plane; use as a context manager."""

    def __init__(
        self,
        state_dir: Path | None = None,
        bin_dir: Path | None = None,
        *,
        ready_timeout: float = 120.0,
        keep_state: bool = False,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._owns_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="resource-agent-cluster-"))
        self._bin_dir = bin_dir
        self.ready_timeout = ready_timeout
        self.keep_state = keep_state
        self.progress = progress
        self.ports = Ports.free()
        self.components: list[Component] = []
        self.startup_seconds: float | None = None
        self._stopped = threading.Event()

    # -- paths -------------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = ensure_binaries(progress=self.progress)
        return self._bin_dir

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate of a user in system:masters)."""
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        """Start every component and wait until the cluster serves requests."""
        started = time.monotonic()
        bin_dir = self.bin_dir
        self._prepare_state_dir()
        self._make_credentials()
        _register(self)
        try:
            commands = self._commands(bin_dir)
            deadline = time.monotonic() + self.ready_timeout
            # Clients of the apiserver start once its RBAC bootstrap is done, or they fail on 403s.
            self._launch(commands, ("etcd", "kube-apiserver"))
            self._wait_ready(("kube-apiserver",), deadline)
            self._launch(commands, ("kube-controller-manager", "kube-scheduler", "kwok"))
            self._wait_ready(("kube-controller-manager", "kube-scheduler", "default-serviceaccount"), deadline)
        except BaseException:
            self.stop(remove_state=False)
            raise
        self.startup_seconds = time.monotonic() - started
        self.progress(f"control plane ready at {self.server} in {self.startup_seconds:.1f}s")
        return self

    def stop(self, remove_state: bool | None = None) -> None:
        """Stop all components (newest first); remove a temporary state dir unless kept."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for component in reversed(self.components):
            component.stop()
        _unregister(self)
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if remove_state is None:
            remove_state = self._owns_dir and not self.keep_state
        if remove_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def restart(self, name: str, *, sig: int = signal.SIGKILL, down_seconds: float = 0.0) -> float:
        """Kill component ``name`` with ``sig`` (its state is kept), start it again after ``down_seconds``
        with the same command, and wait until the apiserver is ready; returns the seconds from start to ready.
        """
        component = next(c for c in self.components if c.name == name)
        if component.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(component.process.pid, sig)
            component.process.wait(timeout=30)
        time.sleep(down_seconds)
        started = time.monotonic()
        component.start()
        self._write_state()
        self._wait_ready(("kube-apiserver",), time.monotonic() + self.ready_timeout)
        return time.monotonic() - started

    def check(self) -> None:
        """Raise ComponentError when any component has died."""
        for component in self.components:
            component.check()

    # -- clients -----------------------------------------------------------------------------

    def api_client(self) -> ApiClient:
        """A kubernetes ApiClient authenticated as the admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context that trusts the cluster CA and presents the admin certificate."""
        return _admin_context(self.pki_dir)

    # -- internals ---------------------------------------------------------------------------

    def _prepare_state_dir(self) -> None:
        state = self.state_dir / STATE_FILE
        if state.exists():
            previous = json.loads(state.read_text())
            live = [pid for pid in previous.get("pids", {}).values() if pid_alive(pid)]
            if live:
                raise ClusterError(f"a cluster is already running in {self.state_dir} (pids {live})")
        for name in ("pki", "etcd", "logs", "kubeconfigs", "kube-controller-manager", "kube-scheduler",
                     STATE_FILE, "kubeconfig"):
            path = self.state_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self.pki_dir.mkdir(parents=True, mode=0o700)
        (self.state_dir / "kubeconfigs").mkdir(mode=0o700)

    def _make_credentials(self) -> None:
        d = self.pki_dir
        ca = pki.make_ca(d)
        pki.issue(ca, d, "etcd-server", "etcd", dns_names=("localhost",), ip_addresses=(LOOPBACK,), server=True)
        pki.issue(ca, d, "apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
        pki.issue(
            ca, d, "apiserver", "kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"),
            ip_addresses=(LOOPBACK, SERVICE_IP),
            server=True,
        )  # fmt: skip
        pki.new_key(d / "sa.key")
        pki.public_key(d / "sa.key", d / "sa.pub")
        users = {
            "admin": ("kubernetes-admin", ("system:masters",)),
            "kube-controller-manager": ("system:kube-controller-manager", ()),
            "kube-scheduler": ("system:kube-scheduler", ()),
            "kwok": ("kwok-controller", ("system:masters",)),
        }
        for name, (user, groups) in users.items():
            pair = pki.issue(ca, d, name, user, organizations=groups, client=True)
            document = kubeconfig(self.server, ca.cert, user=user, client_cert=pair.cert, client_key=pair.key)
            path = self.kubeconfig if name == "admin" else self.state_dir / "kubeconfigs" / f"{name}.yaml"
            write_kubeconfig(path, document)

    def _commands(self, bin_dir: Path) -> dict[str, list[str]]:
        p, d, kc = self.ports, self.pki_dir, self.state_dir / "kubeconfigs"
        etcd_url = f"https://{LOOPBACK}:{p.etcd}"
        peer_url = f"http://{LOOPBACK}:{p.etcd_peer}"
        return {
            "etcd": [
                str(bin_dir / "etcd"), "--name=default", f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                f"--cert-file={d / 'etcd-server.crt'}", f"--key-file={d / 'etcd-server.key'}",
                f"--trusted-ca-file={d / 'ca.crt'}", "--client-cert-auth",
                "--unsafe-no-fsync", "--log-level=warn",
            ],
            "kube-apiserver": [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}", f"--etcd-cafile={d / 'ca.crt'}",
                f"--etcd-certfile={d / 'apiserver-etcd-client.crt'}",
                f"--etcd-keyfile={d / 'apiserver-etcd-client.key'}",
                f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={p.apiserver}",
                # A loopback advertise address cannot go into the `kubernetes` Service's endpoints.
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={d / 'apiserver.crt'}", f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--cert-dir={d}", f"--client-ca-file={d / 'ca.crt'}",
                "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
            ],
            "kube-controller-manager": [
                str(bin_dir / "kube-controller-manager"),
                *self._component_auth(kc / "kube-controller-manager.yaml", p.controller_manager),
                f"--cert-dir={self.state_dir / 'kube-controller-manager'}",
                f"--service-account-private-key-file={d / 'sa.key'}", f"--root-ca-file={d / 'ca.crt'}",
                f"--cluster-signing-cert-file={d / 'ca.crt'}", f"--cluster-signing-key-file={d / 'ca.key'}",
                "--use-service-account-credentials=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
            ],
            "kube-scheduler": [
                str(bin_dir / "kube-scheduler"),
                *self._component_auth(kc / "kube-scheduler.yaml", p.scheduler),
                f"--cert-dir={self.state_dir / 'kube-scheduler'}",
            ],
            "kwok": kwok_command(bin_dir, kc / "kwok.yaml"),
        }  # fmt: skip

    @staticmethod
    def _component_auth(kubeconfig_path: Path, port: int) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig_path}",
            f"--authentication-kubeconfig={kubeconfig_path}",
            f"--authorization-kubeconfig={kubeconfig_path}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={port}",
            "--leader-elect=false",
        ]

    def _write_state(self) -> None:
        state = {
            "supervisor": os.getpid(),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "bin_dir": str(self.bin_dir),
            "ports": self.ports.__dict__,
            "pids": {c.name: c.pid for c in self.components},
            "logs": {c.name: str(c.log) for c in self.components},
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _launch(self, commands: dict[str, list[str]], names: tuple[str, ...]) -> None:
        for name in names:
            component = Component(name, commands[name], self.log_dir / f"{name}.log")
            component.start()
            self.components.append(component)
        self._write_state()

    def _wait_ready(self, checks: tuple[str, ...], deadline: float) -> None:
        """Poll each check until it passes; fail fast when a component dies."""
        admin, insecure = self.ssl_context(), _insecure_context()
        p = self.ports
        probes: dict[str, tuple[str, Callable[[], bool]]] = {
            "kube-apiserver": ("kube-apiserver", lambda: _https_status(p.apiserver, "/readyz", admin) == 200),
            "kube-controller-manager": (
                "kube-controller-manager",
                lambda: _https_status(p.controller_manager, "/healthz", insecure) == 200,
            ),
            "kube-scheduler": ("kube-scheduler", lambda: _https_status(p.scheduler, "/healthz", insecure) == 200),
            "default-serviceaccount": (
                "kube-controller-manager",
                lambda: _https_status(p.apiserver, "/api/v1/namespaces/default/serviceaccounts/default", admin)
                == 200,
            ),
        }
        for check in checks:
            owner, ready = probes[check]
            while not ready():
                self.check()
                if time.monotonic() > deadline:
                    component = next(c for c in self.components if c.name == owner)
                    raise ComponentError(component, f"not ready ({check}) after {self.ready_timeout:.0f}s")
                time.sleep(0.1)


@dataclass(frozen=True)
class ComponentStatus:
    """What ``resource-agent dev-cluster status`` shows for one component."""

    name: str
    pid: int
    alive: bool
    healthy: bool | None  # None: the component has no health endpoint


def probe(state_dir: Path) -> list[ComponentStatus]:
    """Status of the components of the cluster recorded in ``state_dir`` (empty when none)."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    ports = state["ports"]
    pki_dir = state_dir / "pki"
    admin, insecure = _admin_context(pki_dir), _insecure_context()
    endpoints = {
        "etcd": (ports["etcd"], "/health", admin),
        "kube-apiserver": (ports["apiserver"], "/readyz", admin),
        "kube-controller-manager": (ports["controller_manager"], "/healthz", insecure),
        "kube-scheduler": (ports["scheduler"], "/healthz", insecure),
    }
    statuses = []
    for name, pid in state["pids"].items():
        alive = pid_alive(pid)
        endpoint = endpoints.get(name)
        healthy = None if endpoint is None else alive and _https_status(*endpoint) == 200
        statuses.append(ComponentStatus(name, pid, alive, healthy))
    return statuses


# -- teardown on exit and on signals ---------------------------------------------------------

_LIVE: set[LocalCluster] = set()
_LOCK = threading.Lock()
_HANDLED = (signal.SIGTERM, signal.SIGHUP)
_installed = False


def _register(cluster: LocalCluster) -> None:
    global _installed
    with _LOCK:
        _LIVE.add(cluster)
        if _installed:
            return
        _installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for signum in _HANDLED:
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)


def _unregister(cluster: LocalCluster) -> None:
    with _LOCK:
        _LIVE.discard(cluster)


def _stop_all() -> None:
    with _LOCK:
        clusters = list(_LIVE)
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Stop every cluster, then die of the signal as if no handler had been installed."""
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
