"""Render the Helm chart with the real ``helm`` binary (shared by tests/chart and e2e).

``helm`` comes from the pinned control-plane build (``devtools.devcluster.build.bin_dir()``,
built by ``scripts/build-controlplane``) or from PATH; tests skip when neither has one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "resource-agent"
CRDS = ROOT / "crds"
RELEASE = "ra"
NAMESPACE = "resource-agent"


def helm_binary() -> Path | None:
    """The pinned build's helm (never starts a build), else helm from PATH, else None."""
    try:
        from devtools.devcluster.build import bin_dir

        built = bin_dir() / "helm"
        if built.is_file():
            return built
    except Exception:  # no checkout layout or no go.mod: fall back to PATH
        pass
    found = shutil.which("helm")
    return Path(found) if found else None


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        self.stderr = result.stderr
        self.returncode = result.returncode


def run_helm(helm: Path, *args: str, check: bool = True, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(helm), *args]
    if kubeconfig is not None:
        command.append(f"--kubeconfig={kubeconfig}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise HelmError(list(args), result)
    return result


def set_args(values: dict[str, Any] | None) -> list[str]:
    """``--set-json key=<json>`` for each dotted key (so types survive exactly)."""
    import json

    args: list[str] = []
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def template(
    helm: Path,
    values: dict[str, Any] | None = None,
    *extra: str,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> str:
    """``helm template`` of the chart; returns the manifest text."""
    args = ["template", release, str(CHART), f"--namespace={namespace}", *set_args(values), *extra]
    return run_helm(helm, *args).stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"] if "template" in workload["spec"] else workload["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)
