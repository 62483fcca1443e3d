"""LMCache helpers shared by the e2e tests: what simulated instances serve."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.lmcache_simulator import SimulatedInstance


def served_conf(sim: SimulatedInstance, key: str) -> list[Any]:
    """`key` as every process of the instance serves it over HTTP (GET /conf)."""
    with httpx.Client(trust_env=False, timeout=5) as client:
        return [client.get(f"{url}/conf", params={"names": key}).json()[key] for url in sim.urls()]
