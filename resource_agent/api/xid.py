"""XIDs that leave a GPU unusable until it is reset (or the node reboots): standing faults, not window events.

After NVIDIA's XID catalog (https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html),
the XIDs whose immediate action is a GPU reset or a node reboot, and the memory and
interconnect errors NVIDIA's health checks drain a node for. XIDs 63 and 64 (row remapping
events) are left out: the row-remap pending and failure states are tracked from NVML directly.
"""

from __future__ import annotations

FATAL_XIDS: dict[int, str] = {
    46: "GPU stopped processing",
    48: "double-bit ECC error",
    62: "internal micro-controller halt",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    94: "contained ECC error",
    95: "uncontained ECC error",
    109: "context switch timeout",
    119: "GSP RPC timeout",
    120: "GSP error",
    140: "unrecovered ECC error",
}
