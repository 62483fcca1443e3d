"""Child processes of the local control plane: one process group each, logs to a file.

Every component starts in its own session (so a signal reaches the whole
group) and, on Linux, with a parent-death signal, so that even a parent killed
with SIGKILL leaves no orphaned etcd or kube-apiserver behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file (empty when there is none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def stop_group(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class Component:
    """A running control-plane component."""

    name: str
    args: Sequence[str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, die_with_parent: bool = True) -> None:
        """Start the process with stdout and stderr appended to ``log``."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                list(self.args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        """Raise ComponentError when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ComponentError(self, f"exited with status {self.process.returncode}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process group and reap the process."""
        if self.process is None:
            return
        stop_group(self.process.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)


class ComponentError(RuntimeError):
    """A component died or did not become healthy; carries the tail of its log."""

    def __init__(self, component: Component, reason: str) -> None:
        self.component = component
        log_tail = tail(component.log)
        super().__init__(f"{component.name} {reason} (log: {component.log}):\n{log_tail}")
