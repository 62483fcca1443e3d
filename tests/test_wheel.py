"""The wheel as users install it: product only, and every product command runs from a clean venv.

Builds the wheel with uv, checks it holds no developer tooling or tests, installs
it into a fresh virtual environment (dependencies from the locked versions, uv's
cache first) and runs `crds`, `collect`, `scan`, `analyze`, `agent` and
`operator` from a directory outside the checkout, so nothing is imported from
the source tree.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests" / "evaluation" / "cases" / "healthy-idle-node.jsonl"

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (scripts/setup installs it)")
    return uv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("resource_agent-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv with the wheel and its locked dependencies installed."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    requirements = venv.parent / "requirements.txt"
    subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet", "-o", str(requirements)],
        cwd=ROOT, check=True, timeout=120,
    )
    install = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r", str(requirements), str(wheel)]
    subprocess.run(install, check=True, timeout=600)
    return venv / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESOURCE_AGENT_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(bin_dir / "resource-agent"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_holds_the_product_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.endswith(".dist-info/") and ".dist-info/" not in name}
    assert top_level == {"resource_agent"}, top_level
    assert not [name for name in names if "devtools" in name or name.startswith("tests/")]
    assert "resource_agent/cli/__init__.py" in names and "resource_agent/analysis/rules/gpu.py" in names


def test_product_commands_run_from_a_clean_venv(installed: Path, tmp_path: Path) -> None:
    crds = _run(installed, "crds", cwd=tmp_path)
    assert crds.returncode == 0 and "kind: CustomResourceDefinition" in crds.stdout, crds.stderr

    collect = _run(installed, "collect", "--format", "json", cwd=tmp_path)
    assert collect.returncode == 0, collect.stderr
    assert '"system"' in collect.stdout and '"available": true' in collect.stdout

    scan = _run(installed, "scan", "--duration", "2s", "--interval", "1s", "--format", "json", cwd=tmp_path)
    assert scan.returncode == 0 and '"scores"' in scan.stdout, scan.stderr

    analyze = _run(installed, "analyze", "--input", str(RECORDING), "--format", "json", cwd=tmp_path)
    assert analyze.returncode == 0 and '"findings"' in analyze.stdout, analyze.stderr

    operator = _run(installed, "operator", "--fleet-interval", "1m30s", "--metrics-listen", "nonsense", cwd=tmp_path)
    assert operator.returncode == 2 and "metrics_listen" in operator.stderr, operator.stderr  # settings checked before kopf starts

    demo = _run(installed, "demo", cwd=tmp_path)
    assert demo.returncode != 0 and "needs a source checkout" in demo.stderr, demo.stderr


def test_agent_from_a_clean_venv_serves_and_stops(installed: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESOURCE_AGENT_")}
    process = subprocess.Popen(
        [str(installed / "resource-agent"), "agent", "--interval", "1m30s", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read() if process.stdout else ""
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"resource_agent_" in response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
