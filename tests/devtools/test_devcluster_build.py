"""Build stamps, version pins and the "no Go" message, with a fake ``go`` instead of real builds."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from devtools.devcluster import build

FAKE_GO = """#!/bin/sh
# Records its arguments and writes the -o target, like 'go build -o TARGET PKG'.
echo "$PWD $@" >> "{log}"
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then printf '#!/bin/sh\\n' > "$2"; chmod +x "$2"; fi
  shift
done
"""


@pytest.fixture
def controlplane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of e2e/controlplane's go.mod/go.sum files, used in place of the real one."""
    root = tmp_path / "controlplane"
    for module in build.MODULES:
        (root / module).mkdir(parents=True)
        for name in ("go.mod", "go.sum"):
            shutil.copy(build.controlplane_dir() / module / name, root / module / name)
    monkeypatch.setattr(build, "controlplane_dir", lambda: root)
    monkeypatch.setenv("RESOURCE_AGENT_CACHE", str(tmp_path / "cache"))
    return root


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "gobin"
    bin_dir.mkdir()
    log = tmp_path / "go.log"
    go = bin_dir / "go"
    go.write_text(FAKE_GO.format(log=log))
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return log


def test_pins_are_read_from_the_go_modules() -> None:
    root = build.controlplane_dir()
    version = build.kubernetes_version(root)
    assert version.startswith("v1.")
    k8s_go_mod = (root / "kubernetes" / "go.mod").read_text()
    staging = f"v0.{version.split('.', 1)[1]}"
    assert f"k8s.io/client-go => k8s.io/client-go {staging}" in k8s_go_mod
    assert build.required_version(root / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3").startswith("v3.")


def test_version_ldflags_make_version_report_the_release() -> None:
    root = build.controlplane_dir()
    version = build.kubernetes_version(root)
    apiserver = next(b for b in build.binaries(root) if b.name == "kube-apiserver")
    assert f"k8s.io/component-base/version.gitVersion={version}" in apiserver.ldflags
    assert f"k8s.io/client-go/pkg/version.gitVersion={version}" in apiserver.ldflags
    assert f"k8s.io/component-base/version.gitMinor={version.split('.')[1]}" in apiserver.ldflags
    names = {b.name for b in build.binaries(root)}
    assert names == {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok", "helm"}


def test_cache_dir_is_versioned_and_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOURCE_AGENT_CACHE", str(tmp_path))
    assert build.bin_dir("v1.2.3") == tmp_path / "k8s-v1.2.3" / "bin"


def test_stamp_key_changes_with_go_sum(controlplane: Path) -> None:
    before = build.stamp_key(controlplane)
    assert build.stamp_key(controlplane) == before
    with open(controlplane / "kwok" / "go.sum", "a") as handle:
        handle.write("example.com/x v1.0.0 h1:AAAA=\n")
    assert build.stamp_key(controlplane) != before


def test_builds_once_then_skips(controlplane: Path, fake_go: Path) -> None:
    lines: list[str] = []
    out = build.ensure_binaries(progress=lines.append)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        b.name for b in build.binaries(controlplane)
    )
    assert len([line for line in lines if line.lstrip().startswith("[")]) == 7
    calls = fake_go.read_text().splitlines()
    assert len(calls) == 7
    assert all("-trimpath" in call for call in calls)
    assert any(call.startswith(str(controlplane / "etcd")) and "go.etcd.io/etcd/server/v3" in call for call in calls)

    lines.clear()
    assert build.ensure_binaries(progress=lines.append) == out
    assert lines == []
    assert len(fake_go.read_text().splitlines()) == 7


def test_changed_pins_rebuild(controlplane: Path, fake_go: Path) -> None:
    build.ensure_binaries(progress=lambda line: None)
    with open(controlplane / "helm" / "go.sum", "a") as handle:
        handle.write("example.com/x v1.0.0 h1:AAAA=\n")
    build.ensure_binaries(progress=lambda line: None)
    assert len(fake_go.read_text().splitlines()) == 14


def test_missing_go_says_what_to_do(controlplane: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(build.BuildError, match=r"Go is not installed.*https://go.dev/dl/"):
        build.ensure_binaries(progress=lambda line: None)


def test_failed_go_build_shows_its_output(
    controlplane: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\necho 'cannot find module providing package' >&2\nexit 1\n")
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(build.BuildError, match=r"(?s)building kube-apiserver failed.*cannot find module"):
        build.ensure_binaries(progress=lambda line: None)
    assert not (build.bin_dir() / build.STAMP).exists()
