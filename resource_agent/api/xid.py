"""XIDs that leave a GPU unusable until it is reset (or the node reboots): standing faults, not window events.

After NVIDIA's XID catalog (https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html),
the XIDs whose immediate action is a GPU reset or a node reboot, and the memory and
interconnect errors NVIDIA's health checks drain a node for. XIDs 63 and 64 (row remapping
events) are left out: the row-remap pending and failure states are tracked from NVML directly.
"""

from __future__ import annotations

FATAL_XIDS: dict[int, str] = {
    # immediate action RESET_GPU
    46: "GPU stopped processing",
    62: "internal micro-controller halt",
    95: "uncontained ECC error",
    109: "context switch timeout",
    110: "security fault (SEC_FAULT_ERROR)",
    119: "GSP RPC timeout",
    120: "GSP error",
    136: "link training failure (ALI_TRAINING_FAIL)",
    140: "unrecovered ECC error",
    143: "GPU initialization failure (GPU_INIT_ERROR)",
    155: "fatal timeout (GPU_FATAL_TIMEOUT)",
    156: "fatal timeout (GPU_FATAL_TIMEOUT)",
    158: "fatal timeout (GPU_FATAL_TIMEOUT)",
    # WORKFLOW_XID_48, RESTART_BM (79), NVLink workflows
    48: "double-bit ECC error",
    79: "GPU has fallen off the bus",
    74: "NVLink error",
    **dict.fromkeys(range(144, 151), "NVLink5 error"),
    # RESTART_APP, but the contained row stays pending until the GPU is reset
    94: "contained ECC error",
}
