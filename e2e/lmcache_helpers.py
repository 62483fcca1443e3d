"""LMCache helpers shared by the e2e tests: free port blocks for simulated instances, and what they serve."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from devtools.lmcache_simulator import SimulatedInstance


def free_port_block(size: int) -> int:
    """A first port with `size` free ports after it."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + size > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                held.append(sock := socket.socket())
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError("no free block of ports")


def served_conf(sim: SimulatedInstance, key: str) -> list[Any]:
    """`key` as every process of the instance serves it over HTTP (GET /conf)."""
    with httpx.Client(trust_env=False, timeout=5) as client:
        return [client.get(f"{url}/conf", params={"names": key}).json()[key] for url in sim.urls()]
