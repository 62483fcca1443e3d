"""Listen addresses: `host:port`, `:port`, `[::1]:port`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

ANY_HOST = "0.0.0.0"


def parse_listen(value: str) -> tuple[str, int]:
    """(host, port) of `host:port`, `:port` (all interfaces) or `[v6]:port`; a clear error otherwise."""
    text = value.strip()
    host, separator, port_text = text.rpartition(":")
    if not separator:
        raise ValueError(f"listen address {value!r} needs a port, e.g. 0.0.0.0:19400 or :19400")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"listen address {value!r}: write an IPv6 host in brackets, e.g. [::1]:19400")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"listen address {value!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"listen address {value!r}: port {port} is out of range 0-65535")
    return (host or ANY_HOST, port)


def _to_address(value: object) -> object:
    return parse_listen(value) if isinstance(value, str) else value


ListenAddress = Annotated[tuple[str, int], BeforeValidator(_to_address)]
