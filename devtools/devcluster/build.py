"""Build the pinned Kubernetes control-plane binaries from their Go modules.

The versions live in the go.mod files under ``e2e/controlplane/`` (one module
per upstream project, so their dependencies never couple). Binaries land in
``$RESOURCE_AGENT_CACHE/k8s-<version>/bin`` (default ``~/.cache/resource-agent``)
with a stamp keyed by the version and the modules' go.mod/go.sum, so a second
call returns at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STAMP = ".stamp"
CONTROLPLANE = Path("e2e") / "controlplane"
MODULES = ("kubernetes", "etcd", "kwok", "helm")


class BuildError(RuntimeError):
    """The binaries could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class Binary:
    """One binary: which wrapper module builds it, from which package, with which -X flags."""

    name: str
    module: str
    package: str
    ldflags: tuple[str, ...] = ()


def controlplane_dir() -> Path:
    """The ``e2e/controlplane`` directory of this checkout (the package is installed editable)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / CONTROLPLANE
        if (candidate / "kubernetes" / "go.mod").is_file():
            return candidate
    raise BuildError(f"cannot find {CONTROLPLANE}/ above {Path(__file__).parent}; is this a source checkout?")


def required_version(go_mod: Path, module: str) -> str:
    """The version of ``module`` that ``go_mod`` requires (e.g. ``v1.37.2``)."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.MULTILINE)
    if match is None:
        raise BuildError(f"{go_mod} does not require {module}")
    return match.group(1)


def kubernetes_version(root: Path | None = None) -> str:
    """The pinned Kubernetes release, e.g. ``v1.37.2``."""
    root = root or controlplane_dir()
    return required_version(root / "kubernetes" / "go.mod", "k8s.io/kubernetes")


def cache_root() -> Path:
    """``$RESOURCE_AGENT_CACHE``, or ``~/.cache/resource-agent``."""
    override = os.environ.get("RESOURCE_AGENT_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "resource-agent"


def bin_dir(version: str | None = None) -> Path:
    """Where the binaries of ``version`` (default: the pinned one) live."""
    return cache_root() / f"k8s-{version or kubernetes_version()}" / "bin"


def stamp_key(root: Path) -> str:
    """A hash of the pinned version and every wrapper module's go.mod and go.sum."""
    digest = hashlib.sha256(kubernetes_version(root).encode())
    for module in MODULES:
        for name in ("go.mod", "go.sum"):
            path = root / module / name
            digest.update(f"\0{module}/{name}\0".encode())
            digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def binaries(root: Path) -> list[Binary]:
    """What to build, with the version stamps upstream's release builds set."""
    k8s = kubernetes_version(root)
    major, minor = k8s.lstrip("v").split(".")[:2]
    k8s_flags: list[str] = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        k8s_flags += [
            f"{package}.gitVersion={k8s}",
            f"{package}.gitMajor={major}",
            f"{package}.gitMinor={minor}",
            f"{package}.gitTreeState=clean",
        ]
    helm_version = required_version(root / "helm" / "go.mod", "helm.sh/helm/v3")
    # Helm derives the Kubernetes version it assumes from its client-go (v0.N -> 1.N).
    helm_k8s_minor = required_version(root / "helm" / "go.mod", "k8s.io/client-go").split(".")[1]
    helm_flags = [f"helm.sh/helm/v3/internal/version.version={helm_version}"]
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        helm_flags += [f"{package}.k8sVersionMajor=1", f"{package}.k8sVersionMinor={helm_k8s_minor}"]
    kwok_version = required_version(root / "kwok" / "go.mod", "sigs.k8s.io/kwok")
    kwok_flags = [
        f"sigs.k8s.io/kwok/pkg/consts.Version={kwok_version.lstrip('v')}",
        f"sigs.k8s.io/kwok/pkg/consts.KubeVersion={k8s.lstrip('v')}",
    ]
    k8s_bins = [
        Binary(name, "kubernetes", f"k8s.io/kubernetes/cmd/{name}", tuple(k8s_flags))
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    ]
    return [
        *k8s_bins,
        Binary("etcd", "etcd", "go.etcd.io/etcd/server/v3"),
        Binary("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", tuple(kwok_flags)),
        Binary("helm", "helm", "helm.sh/helm/v3/cmd/helm", tuple(helm_flags)),
    ]


def go_executable() -> str:
    """The ``go`` command, or a BuildError that says how to get one."""
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed (no 'go' on PATH). The local control plane is built from "
            "Go modules: install Go 1.26 or newer (https://go.dev/dl/), or run the e2e tests "
            "with --cluster=kind or --cluster=existing."
        )
    return go


def is_built(directory: Path, key: str, names: list[str]) -> bool:
    """True when ``directory`` holds every binary and a stamp for ``key``."""
    stamp = directory / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != key:
        return False
    return all(os.access(directory / name, os.X_OK) for name in names)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise builds into ``directory`` across processes (e.g. pytest-xdist workers)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_one(go: str, root: Path, binary: Binary, out_dir: Path) -> None:
    """``go build`` one binary the way upstream releases are built (static, trimmed, stamped)."""
    ldflags = " ".join(["-s", "-w", *(f"-X {flag}" for flag in binary.ldflags)])
    target = out_dir / f".{binary.name}.tmp"
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off"}
    command = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(target), binary.package]
    result = subprocess.run(
        command, cwd=root / binary.module, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-30:])
        where = f"go build {binary.package} in {root / binary.module}"
        raise BuildError(f"building {binary.name} failed ({where}):\n{tail}")
    os.replace(target, out_dir / binary.name)


def ensure_binaries(progress: Callable[[str], None] = print) -> Path:
    """Build whatever is missing or stale and return the bin directory."""
    root = controlplane_dir()
    version = kubernetes_version(root)
    out_dir = bin_dir(version)
    key = stamp_key(root)
    wanted = binaries(root)
    names = [binary.name for binary in wanted]
    if is_built(out_dir, key, names):
        return out_dir
    with _locked(out_dir.parent):
        if is_built(out_dir, key, names):
            return out_dir
        go = go_executable()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / STAMP).unlink(missing_ok=True)
        progress(f"building Kubernetes {version} control plane into {out_dir} (a cold build takes ~10 min on 2 cores)")
        started = time.monotonic()
        for index, binary in enumerate(wanted, 1):
            began = time.monotonic()
            build_one(go, root, binary, out_dir)
            progress(f"  [{index}/{len(wanted)}] {binary.name:<24} {time.monotonic() - began:6.1f}s")
        (out_dir / STAMP).write_text(key + "\n")
        progress(f"built {len(wanted)} binaries in {time.monotonic() - started:.1f}s")
    return out_dir


def main() -> int:
    """``python -m devtools.devcluster.build``: build and print the bin directory."""
    try:
        directory = ensure_binaries(progress=lambda line: print(line, flush=True))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
