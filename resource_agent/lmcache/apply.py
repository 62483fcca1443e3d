"""Plan and apply an approved `set-lmcache-config` action.

`plan_config_change` is pure. A runtime-effective key (see
`config.RUNTIME_EFFECTIVE_KEYS`) is planned as a POST /conf to every port of
the instance (each process has its own config). Any other supported key is
read once at start-up, so POST /conf would answer "updated" and change
nothing: it is planned as a patch of the workload's LMCache settings
(`LMCACHE_<KEY>` env and vLLM's `kv_connector_extra_config`), marked
restart-required, for GitOps to apply. Sizes are bounded by the node's spare
memory and a policy cap. Credential-bearing keys are refused.

`apply_config_change` reads each port's value first and posts only to the
ports that do not serve the planned value yet (an interrupted apply may have
reached some), with exponential backoff on transient failures (connection
errors, timeouts, 5xx), then reads the value back from every port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from resource_agent.api.findings import Action, ActionType
from resource_agent.lmcache.config import (
    GIB,
    RUNTIME_EFFECTIVE_KEYS,
    SIZE_KEYS,
    STARTUP_KEYS,
    coerce,
    is_secret_key,
)

APPLIED = "applied"
SKIPPED = "skipped"  # the port already served the planned value: nothing posted


class PlanError(ValueError):
    """The action cannot be turned into a safe change."""


@dataclass(frozen=True)
class ConfigChangePlan:
    instance: str
    key: str
    value: Any
    previous: Any
    runtime_effective: bool
    restart_required: bool
    body: dict[str, Any] | None = None  # POST /conf body when runtime-effective
    patch: dict[str, Any] | None = None  # workload settings patch when restart-required
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplyResult:
    before: Any
    after: Any
    error: str | None
    attempts: int
    restart_required: bool
    patch: dict[str, Any] | None = None
    ports: dict[str, str] = field(default_factory=dict)  # url -> APPLIED, SKIPPED or the reason it failed

    @property
    def ok(self) -> bool:
        return self.error is None


def _bounded_size(key: str, value: float, previous: Any, ranks: int, spare_bytes: float | None, cap_bytes: float | None) -> tuple[float, list[str]]:
    notes: list[str] = []
    bounded = value
    if cap_bytes is not None and bounded * GIB > cap_bytes:
        bounded = cap_bytes / GIB
        notes.append(f"{key} capped by policy at {bounded:g} GB")
    old = float(previous) if isinstance(previous, (int, float)) and not isinstance(previous, bool) else 0.0
    if spare_bytes is not None and (bounded - old) * GIB * ranks > spare_bytes:
        bounded = old + spare_bytes / GIB / ranks
        notes.append(f"{key} limited to {bounded:g} GB by the node's spare memory ({spare_bytes / GIB:.1f} GiB for {ranks} ranks)")
    if bounded < 0:
        raise PlanError(f"{key} cannot be negative")
    return round(bounded, 3), notes


def plan_config_change(
    action: Action,
    current_conf: Mapping[str, Any],
    *,
    spare_memory_bytes: float | None = None,
    policy_cap_bytes: float | None = None,
    ranks: int = 1,
) -> ConfigChangePlan:
    """Turn an approved set-lmcache-config action into a plan; PlanError when it is unsafe or unsupported.

    `ranks` is the number of worker processes (each allocates the size once);
    `policy_cap_bytes` caps a size per process.
    """
    if action.type is not ActionType.SET_LMCACHE_CONFIG:
        raise PlanError(f"cannot plan {action.type.value}: only {ActionType.SET_LMCACHE_CONFIG.value} changes LMCache config")
    instance, key, raw = (str(action.parameters[name]) for name in ("instance", "key", "value"))
    if is_secret_key(key) or key in ("remote_url", "extra_config"):
        raise PlanError(f"refusing to change {key}: it may carry credentials")
    try:
        value = coerce(key, raw)
    except ValueError as exc:
        raise PlanError(f"bad value for {key}: {exc}") from None
    previous = current_conf.get(key)
    notes: list[str] = []
    if key in SIZE_KEYS:
        value, notes = _bounded_size(key, value, previous, max(ranks, 1), spare_memory_bytes, policy_cap_bytes)
    if previous is not None and value == previous:
        raise PlanError(f"{key} is already {previous!r}")
    if key in RUNTIME_EFFECTIVE_KEYS:
        return ConfigChangePlan(instance, key, value, previous, True, False, body={key: value}, notes=tuple(notes))
    assert key in STARTUP_KEYS  # coerce() accepts only the two tables
    text = json.dumps(value) if not isinstance(value, str) else value
    patch = {
        "env": {f"LMCACHE_{key.upper()}": text.lower() if isinstance(value, bool) else text},
        "kvConnectorExtraConfig": {f"lmcache.{key}": value},
    }
    notes.append(f"{key} is read at start-up: restart the workload with the patch")
    return ConfigChangePlan(instance, key, value, previous, False, True, patch=patch, notes=tuple(notes))


class _Permanent(Exception):
    """A failure retrying cannot fix (4xx, LMCache reported an error for the key)."""


async def _post_once(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    response = await client.post(f"{url}/conf", json=body)
    if response.status_code >= 500:
        response.raise_for_status()
    try:
        result = response.json()
    except ValueError:
        raise _Permanent(f"HTTP {response.status_code}, not JSON") from None
    errors = result.get("errors") if isinstance(result, dict) else None
    if response.status_code >= 400 or errors:
        reasons = ", ".join(f"{name}: {reason}" for name, reason in (errors or {}).items()) or result.get("error", "")
        raise _Permanent(f"HTTP {response.status_code}: {reasons}".rstrip(": "))


async def _post_with_retries(client: httpx.AsyncClient, url: str, body: dict[str, Any], retries: int, backoff: float) -> tuple[int, str | None]:
    attempts = 0
    reason = "not attempted"
    while attempts <= retries:
        if attempts:
            await asyncio.sleep(backoff * 2 ** (attempts - 1))
        attempts += 1
        try:
            await _post_once(client, url, body)
            return attempts, None
        except _Permanent as exc:
            return attempts, str(exc)
        except httpx.HTTPStatusError as exc:
            reason = f"HTTP {exc.response.status_code}"
        except httpx.TimeoutException:
            reason = "timed out"
        except httpx.TransportError as exc:
            reason = f"connection failed ({type(exc).__name__})"
    return attempts, f"{reason} after {attempts} attempts"


async def _read_value(client: httpx.AsyncClient, url: str, key: str) -> Any:
    try:
        response = await client.get(f"{url}/conf", params={"names": key})
        return json.loads(response.text).get(key) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


async def apply_config_change(
    plan: ConfigChangePlan,
    urls: Sequence[str],
    retries: int = 3,
    *,
    timeout: float = 2.0,
    backoff: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ApplyResult:
    """Carry out `plan` on every port that does not serve its value yet; a restart-required plan only hands back its patch."""
    if plan.restart_required:
        return ApplyResult(before=plan.previous, after=None, error=None, attempts=0, restart_required=True, patch=plan.patch)
    if plan.body is None or not urls:
        return ApplyResult(plan.previous, None, "no ports to apply to", 0, False)
    body = plan.body
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False, transport=transport) as client:
        current = await asyncio.gather(*(_read_value(client, url, plan.key) for url in urls))
        pending = [url for url, value in zip(urls, current, strict=True) if value != plan.value]
        posted = await asyncio.gather(*(_post_with_retries(client, url, body, retries, backoff) for url in pending))
        outcomes = dict(zip(pending, posted, strict=True))
        after_values = await asyncio.gather(*(_read_value(client, url, plan.key) for url in urls))
    ports = {url: (outcomes[url][1] or APPLIED) if url in outcomes else SKIPPED for url in urls}
    failed = {url: reason for url, reason in ports.items() if reason not in (APPLIED, SKIPPED)}
    mismatched = [url for url, after in zip(urls, after_values, strict=True) if url not in failed and after != plan.value]
    error = None
    if failed:
        error = "; ".join(f"{url}: {reason}" for url, reason in failed.items())
    elif mismatched:
        error = f"{plan.key} reads back different from {plan.value!r} on {', '.join(mismatched)}"
    before = next((value for value in current if value is not None and value != plan.value), plan.previous)
    return ApplyResult(
        before=before,
        after=after_values[0],
        error=error,
        attempts=max((attempts for attempts, _ in outcomes.values()), default=0),
        restart_required=False,
        ports=ports,
    )
