"""PCI bus ids, shared by the GPU collector and the fault tracker (pure, no I/O, no pynvml)."""

from __future__ import annotations

import contextlib

PCI_ONLY_ERROR = "listed on the PCI bus, not by NVML"


def normalise_bus_id(bus_id: str) -> str:
    """NVML's "00000000:3B:00.0" and sysfs's "0000:3b:00.0" -> "0000:3b:00.0" (4-digit domain, lower case)."""
    parts = bus_id.strip().lower().split(":")
    if len(parts) == 3:
        with contextlib.suppress(ValueError):  # not hex: leave the domain as it is
            parts[0] = f"{int(parts[0], 16):04x}"
    return ":".join(parts)
