"""LMCache configuration: credential redaction, the runtime-effective keys, and facts for a sample (pure).

`GET /conf` returns every `LMCacheEngineConfig` field, including `remote_url`
(which may carry a password) and `extra_config` (storage credentials). Nothing
from /conf leaves this module unredacted: a sample only gets sizes, a flag, the
remote backend's scheme and the blocking timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

GIB = 1024**3  # LMCache sizes are GB read as `size * 1024**3` bytes
REDACTED = "<redacted>"

# Keys LMCache reads on every request, so POST /conf changes behaviour at once.
# One place; scripts/lmcache-check-runtime-keys checks it against LMCache's source.
RUNTIME_EFFECTIVE_KEYS: dict[str, type] = {
    "min_retrieve_tokens": int,  # vllm_v1_adapter.get_num_new_matched_tokens
    "save_decode_cache": bool,  # vllm_v1_adapter request tracking, per step
    "lookup_timeout_ms": int,  # lmcache_async_lookup_client, per lookup
    "blocking_timeout_secs": int,  # remote_backend get/put, per call
    "save_unfull_chunk": bool,  # token_database._chunk_tokens, per store
}
# Keys read once at start-up: a change needs the workload restarted with new settings.
STARTUP_KEYS: dict[str, type] = {
    "max_local_cpu_size": float,
    "max_local_disk_size": float,
    "local_cpu": bool,
    "chunk_size": int,
}
SIZE_KEYS = frozenset({"max_local_cpu_size", "max_local_disk_size"})

_SECRET_WORDS = frozenset({"secret", "secrets", "password", "passwd", "pwd", "token", "key", "keys", "credential",
                           "credentials", "auth", "authorization", "access", "apikey", "cert", "private"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# extra_config entries known to hold no credentials; everything else under it is redacted
EXTRA_CONFIG_ALLOWED = frozenset({"internal_api_server_log_level"})
_EXTRA_CONFIG_ALLOWED_PREFIXES = ("histogram_bucket_",)


def is_secret_key(key: str) -> bool:
    """True for keys naming a credential (`aws_secret_access_key`, `apiKey`, `auth_token`)."""
    words = re.split(r"[^a-z0-9]+", _CAMEL.sub("_", key).lower())
    return any(word in _SECRET_WORDS for word in words)


def redact_url(value: str) -> str:
    """A URL without userinfo and query; other strings unchanged."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, REDACTED if parts.query else "", ""))


def redact(value: Any, key: str = "") -> Any:
    """`value` with every credential-like entry replaced by REDACTED (recursively)."""
    if key and is_secret_key(key):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            name: REDACTED if key == "extra_config" and not _extra_allowed(str(name)) else redact(item, str(name))
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_url(value)
    return value


def redact_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A /conf body safe to log or store."""
    return {key: REDACTED if key == "extra_config" and value and not isinstance(value, Mapping) else redact(value, key)
            for key, value in conf.items()}


def _extra_allowed(name: str) -> bool:
    return name in EXTRA_CONFIG_ALLOWED or name.startswith(_EXTRA_CONFIG_ALLOWED_PREFIXES)


def to_bool(value: Any) -> bool:
    """LMCache's `_to_bool`: bools as is, else "true"/"1" (any case) are true."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1")


def coerce(key: str, value: Any) -> Any:
    """Convert `value` the way LMCache's env converters do for `key`; ValueError when it cannot."""
    kind = RUNTIME_EFFECTIVE_KEYS.get(key) or STARTUP_KEYS.get(key)
    if kind is None:
        raise ValueError(f"unsupported LMCache key {key!r}")
    if kind is bool:
        return to_bool(value)
    if isinstance(value, bool):
        raise ValueError(f"{key} takes a number, not {value!r}")
    return kind(value)


@dataclass(frozen=True)
class ConfigFacts:
    """What a sample may hold from /conf (per process; the caller scales by ranks)."""

    max_local_cpu_size_bytes: float | None = None
    max_local_disk_size_bytes: float | None = None
    local_cpu_enabled: bool | None = None
    remote_backend: str | None = None
    blocking_timeout_seconds: float | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def config_facts(conf: Mapping[str, Any]) -> ConfigFacts:
    """Sizes in bytes, the local CPU flag, the remote backend's scheme and the blocking timeout only."""
    cpu_gb, disk_gb = _number(conf.get("max_local_cpu_size")), _number(conf.get("max_local_disk_size"))
    timeout = _number(conf.get("blocking_timeout_secs"))
    remote = conf.get("remote_url")
    scheme = None
    if isinstance(remote, str) and remote:
        scheme = (urlsplit(remote).scheme or "").lower() or None
    local_cpu = conf.get("local_cpu")
    return ConfigFacts(
        max_local_cpu_size_bytes=cpu_gb * GIB if cpu_gb is not None else None,
        max_local_disk_size_bytes=disk_gb * GIB if disk_gb is not None else None,
        local_cpu_enabled=to_bool(local_cpu) if local_cpu is not None else None,
        remote_backend=scheme,
        blocking_timeout_seconds=timeout if timeout is not None and timeout > 0 else None,
    )


_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1}


def dtype_bytes(name: str | None) -> int | None:
    """Bytes per element of a torch/vLLM dtype name ("torch.bfloat16", "fp8_e4m3")."""
    if not name:
        return None
    plain = name.lower().removeprefix("torch.")
    if plain.startswith(("fp8", "float8")):
        return 1
    return _DTYPE_BYTES.get(plain)


def kv_bytes_per_token(inference_info: Mapping[str, Any]) -> float | None:
    """KV bytes one process stores per token: layers x KV heads x head size x 2 (K and V) x dtype bytes.

    vLLM reports `num_layers` per pipeline stage and `num_kv_heads` per
    tensor-parallel rank, so this is per rank. The KV cache dtype is
    `cache_config.cache_dtype` unless it is "auto", then the model dtype.
    """
    model = inference_info.get("model_config") or {}
    cache = inference_info.get("cache_config") or {}
    cache_dtype = cache.get("cache_dtype")
    size = dtype_bytes(model.get("dtype") if cache_dtype in (None, "auto", "None") else cache_dtype)
    values = (model.get("num_layers"), model.get("num_kv_heads"), model.get("head_size"))
    dims = [dim for dim in values if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0]
    if size is None or len(dims) != len(values):
        return None
    layers, heads, head_size = dims
    return float(layers * heads * head_size * 2 * size)
