"""dev-cluster status/down without a running cluster, and probe() on a dead one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from devtools.devcluster.cli import dev_cluster
from devtools.devcluster.local import probe
from devtools.devcluster.supervisor import read_status, write_status


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_status_and_down_when_nothing_runs(tmp_path: Path) -> None:
    runner = CliRunner()
    status = runner.invoke(dev_cluster, ["status", f"--state-dir={tmp_path}"])
    assert status.exit_code == 1
    assert "not running (never started)" in status.output
    down = runner.invoke(dev_cluster, ["down", f"--state-dir={tmp_path}"])
    assert down.exit_code == 0 and "no dev cluster running" in down.output


def test_a_supervisor_that_died_counts_as_not_running(tmp_path: Path) -> None:
    write_status(tmp_path, "ready")
    recorded = read_status(tmp_path)
    assert recorded is not None and recorded["phase"] == "ready"
    (tmp_path / "supervisor.json").write_text(json.dumps({"pid": _dead_pid(), "phase": "ready"}))
    status = CliRunner().invoke(dev_cluster, ["status", f"--state-dir={tmp_path}"])
    assert status.exit_code == 1 and "not running (ready)" in status.output


def test_probe_reports_dead_components(tmp_path: Path) -> None:
    from devtools.devcluster import pki

    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    ca = pki.make_ca(pki_dir)
    pki.issue(ca, pki_dir, "admin", "kubernetes-admin", organizations=("system:masters",), client=True)
    ports = {"etcd": 1, "etcd_peer": 2, "apiserver": 3, "controller_manager": 4, "scheduler": 5}
    pid = _dead_pid()
    state = {"ports": ports, "pids": {"kube-apiserver": pid, "kwok": pid}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    statuses = {s.name: s for s in probe(tmp_path)}
    assert not statuses["kube-apiserver"].alive and statuses["kube-apiserver"].healthy is False
    assert not statuses["kwok"].alive and statuses["kwok"].healthy is None
    assert probe(tmp_path / "nowhere") == []
