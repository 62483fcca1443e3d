"""GPU hardware health: ECC, row remapping, XID errors, NVML recovery actions, PCIe link."""

from __future__ import annotations

import re
from dataclasses import dataclass

from resource_agent.analysis.rule import RuleContext, rule
from resource_agent.analysis.support import action, evidence, gpu_sensitive, gpu_target, make_finding
from resource_agent.api.findings import Action, ActionType, Category, Finding, Severity
from resource_agent.api.summary import GpuSummary, NodeSummary

ECC_UNCORRECTABLE = "gpu-ecc-uncorrectable"
ROW_REMAP_FAILURE = "gpu-row-remap-failure"
ROW_REMAP_PENDING = "gpu-row-remap-pending"
RECOVERY_ACTION = "gpu-recovery-action"
PCIE_DEGRADED = "gpu-pcie-degraded"


@rule(
    ECC_UNCORRECTABLE,
    actions=(ActionType.DRAIN_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=95,
    defaults={"increase_min": 1.0},
    sustained=False,
)
def ecc_uncorrectable(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """New uncorrectable (double-bit) ECC errors in the window mean data in GPU memory was
    corrupted; the applications on that GPU were killed or will read bad data. Drain the node
    and follow NVIDIA's memory-error workflow before it takes new work."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        increase = gpu.ecc.uncorrected_increase
        if increase < limits["increase_min"]:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} reported {increase} new uncorrectable ECC error(s)",
                evidence=[evidence(summary, "gpu.ecc.uncorrected", "increase", increase, limits["increase_min"])],
                action=action(ActionType.DRAIN_NODE, reason=f"uncorrectable ECC errors on GPU {gpu.index}"),
                impact="Stops scheduling work onto memory that corrupts data.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


@rule(
    ROW_REMAP_FAILURE,
    actions=(ActionType.DRAIN_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=100,
    defaults={},
    sustained=False,
)
def row_remap_failure(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A row-remapping failure means the GPU ran out of spare memory rows to replace failing
    ones (NVIDIA's RMA threshold): the GPU cannot heal itself. Drain the node and replace
    the GPU."""
    findings = []
    for gpu in summary.gpu.devices:
        if not gpu.ecc.remapped_rows_failure:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} reports a row-remapping failure (RMA condition)",
                evidence=[evidence(summary, "gpu.ecc.remapped_rows_failure", "last", 1, 1)],
                action=action(ActionType.DRAIN_NODE, reason=f"row-remapping failure on GPU {gpu.index}: RMA"),
                impact="Keeps work off a GPU that can no longer retire bad memory.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


@rule(
    ROW_REMAP_PENDING,
    actions=(ActionType.RUN_ECC_WORKFLOW,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=75,
    defaults={},
    sustained=False,
)
def row_remap_pending(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A pending row remap (or pending page retirement) takes effect only at the next GPU
    reset; until then the faulty rows stay in use. NVIDIA's workflow: drain the GPU, reset it,
    check the remap succeeded. A remap failure is reported by gpu-row-remap-failure instead."""
    findings = []
    for gpu in summary.gpu.devices:
        ecc = gpu.ecc
        if ecc.remapped_rows_failure or not (ecc.remapped_rows_pending or ecc.retired_pages_pending):
            continue
        what = "row remap" if ecc.remapped_rows_pending else "page retirement"
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} has a {what} pending until its next reset",
                evidence=[evidence(summary, f"gpu.ecc.{what.replace(' ', '_')}_pending", "last", 1, 1)],
                action=action(ActionType.RUN_ECC_WORKFLOW, gpuIndex=gpu.index),
                impact="A reset applies the remap so the failing rows are no longer used.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


# --- XID errors ------------------------------------------------------------------


@dataclass(frozen=True)
class XidClass:
    """An XID resolution bucket of NVIDIA's XID catalog and what it calls for."""

    rule_id: str
    codes: frozenset[int]
    severity: Severity
    action: ActionType
    meaning: str


XID_CLASSES: tuple[XidClass, ...] = (
    XidClass("gpu-xid-application", frozenset({8, 13, 31, 43, 45}), Severity.WARNING, ActionType.RESTART_WORKLOAD, "application error (RESTART_APP)"),
    XidClass("gpu-xid-reset", frozenset({46, 62, 64, 95, 109, 119, 120}), Severity.CRITICAL, ActionType.RESET_GPU, "GPU needs a reset (RESET_GPU)"),
    XidClass("gpu-xid-ecc", frozenset({48}), Severity.CRITICAL, ActionType.RUN_ECC_WORKFLOW, "double-bit ECC error (XID 48 workflow)"),
    XidClass("gpu-xid-nvlink", frozenset({74}), Severity.WARNING, ActionType.CHECK_NVLINK, "NVLink error (NVLink workflow)"),
    XidClass("gpu-xid-off-bus", frozenset({79}), Severity.CRITICAL, ActionType.DRAIN_AND_REBOOT_NODE, "GPU fell off the bus (drain and reboot)"),
)
CLASSIFIED_XIDS = frozenset().union(*(xid_class.codes for xid_class in XID_CLASSES))
XID_UNCLASSIFIED = "gpu-xid-unclassified"


def _xid_counts(gpu: GpuSummary, codes: frozenset[int] | None) -> dict[int, int]:
    """XID code -> events in the window; `codes=None` selects the unclassified ones."""
    counts = {}
    for code_text, count in gpu.xid_counts.items():
        code = int(code_text)
        if count > 0 and ((code in codes) if codes is not None else code not in CLASSIFIED_XIDS):
            counts[code] = count
    return dict(sorted(counts.items()))


def _xid_action(gpu: GpuSummary, kind: ActionType, codes: dict[int, int]) -> Action:
    listed = ", ".join(f"XID {code}" for code in codes)
    if kind is ActionType.RESTART_WORKLOAD:
        only = gpu.processes[0] if len(gpu.processes) == 1 else None
        return action(kind, gpuIndex=gpu.index, pid=only.pid if only else None, podUid=only.pod_uid if only else None)
    if kind is ActionType.DRAIN_AND_REBOOT_NODE:
        return action(kind, reason=f"{listed} on GPU {gpu.index}")
    if kind is ActionType.INVESTIGATE:
        return action(kind, hint=f"{listed} on GPU {gpu.index}: look the code up in NVIDIA's XID catalog")
    return action(kind, gpuIndex=gpu.index)


def _xid_findings(summary: NodeSummary, ctx: RuleContext, xid_class: XidClass | None) -> list[Finding]:
    limits = ctx.limits
    severity = xid_class.severity if xid_class else Severity.WARNING
    kind = xid_class.action if xid_class else ActionType.INVESTIGATE
    meaning = xid_class.meaning if xid_class else "not in a known resolution bucket"
    findings = []
    for gpu in summary.gpu.devices:
        counts = _xid_counts(gpu, xid_class.codes if xid_class else None)
        total = sum(counts.values())
        if total < limits["events_min"]:
            continue
        listed = ", ".join(f"XID {code} x{count}" for code, count in counts.items())
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=severity,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index}: {listed}: {meaning}",
                evidence=[evidence(summary, f"gpu.xid.{code}", "count", count, limits["events_min"]) for code, count in counts.items()],
                action=_xid_action(gpu, kind, counts),
                impact="Follows NVIDIA's resolution for this XID class so the GPU serves again.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


_XID = {xid_class.rule_id: xid_class for xid_class in XID_CLASSES}
_EVENTS = {"events_min": 1.0}


@rule(
    "gpu-xid-application",
    actions=(ActionType.RESTART_WORKLOAD,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=65,
    defaults=_EVENTS,
    sustained=False,
)
def xid_application(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XIDs 8, 13, 31, 43 and 45 are usually the application's fault (illegal address, engine
    exception, stopped channel, cleanup after an earlier error). NVIDIA's immediate action is
    RESTART_APP; the GPU stays healthy."""
    return _xid_findings(summary, ctx, _XID["gpu-xid-application"])


@rule(
    "gpu-xid-reset",
    actions=(ActionType.RESET_GPU,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=90,
    defaults=_EVENTS,
    sustained=False,
)
def xid_reset(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XIDs 46, 62, 64, 95, 109, 119 and 120 (GPU stopped, internal micro-controller halt,
    row-remapper failure, uncontained memory error, context-switch timeout, GSP errors) leave
    the GPU unusable until it is reset: NVIDIA's bucket RESET_GPU."""
    return _xid_findings(summary, ctx, _XID["gpu-xid-reset"])


@rule(
    "gpu-xid-ecc",
    actions=(ActionType.RUN_ECC_WORKFLOW,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=92,
    defaults=_EVENTS,
    sustained=False,
)
def xid_ecc(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 48 is a double-bit ECC error: follow NVIDIA's XID 48 workflow (check remap state,
    reset the GPU to remap, RMA if remapping fails)."""
    return _xid_findings(summary, ctx, _XID["gpu-xid-ecc"])


@rule(
    "gpu-xid-nvlink",
    actions=(ActionType.CHECK_NVLINK,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=70,
    defaults=_EVENTS,
    sustained=False,
)
def xid_nvlink(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 74 is an NVLink error: check the links, NVSwitch and fabric manager (NVIDIA's
    NVLink workflow) before multi-GPU jobs hang or slow down."""
    return _xid_findings(summary, ctx, _XID["gpu-xid-nvlink"])


@rule(
    "gpu-xid-off-bus",
    actions=(ActionType.DRAIN_AND_REBOOT_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=98,
    defaults=_EVENTS,
    sustained=False,
)
def xid_off_bus(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 79: the GPU fell off the PCIe bus. A software reset cannot reach it; drain the node
    and reboot (power-cycle) it, and check the board and slot if it repeats."""
    return _xid_findings(summary, ctx, _XID["gpu-xid-off-bus"])


@rule(
    XID_UNCLASSIFIED,
    actions=(ActionType.INVESTIGATE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=45,
    defaults=_EVENTS,
    sustained=False,
)
def xid_unclassified(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Any other XID is reported for a person to look up in NVIDIA's XID catalog, rather than
    guessing an action."""
    return _xid_findings(summary, ctx, None)


# --- NVML recovery action ------------------------------------------------------------

_RECOVERY = {
    "gpureset": (ActionType.RESET_GPU, "reset the GPU"),
    "reset": (ActionType.RESET_GPU, "reset the GPU"),
    "nodereboot": (ActionType.DRAIN_AND_REBOOT_NODE, "reboot the node"),
    "reboot": (ActionType.DRAIN_AND_REBOOT_NODE, "reboot the node"),
    "drainandreset": (ActionType.DRAIN_NODE, "drain the GPU's work, then reset it"),
    "drainp2p": (ActionType.INVESTIGATE, "quiesce peer-to-peer traffic, then query the recovery action again"),
    "busreset": (ActionType.RESET_GPU, "reset the GPU's PCIe bus"),
    "systemreboot": (ActionType.DRAIN_AND_REBOOT_NODE, "reboot the system"),
    "recoverimexdomain": (ActionType.INVESTIGATE, "recover the IMEX domain"),
}


def normalize_recovery_action(value: str) -> str:
    """'NVML_GPU_RECOVERY_ACTION_GPU_RESET', 'gpu_reset', 'GpuReset' -> 'gpureset'."""
    text = re.sub(r"[^a-z0-9]", "", value.lower())
    return text.removeprefix("nvmlgpurecoveryaction")


@rule(
    RECOVERY_ACTION,
    actions=(ActionType.RESET_GPU, ActionType.DRAIN_AND_REBOOT_NODE, ActionType.DRAIN_NODE, ActionType.INVESTIGATE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=96,
    defaults={},
    sustained=False,
)
def recovery_action(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """After an uncorrectable error NVML itself names the recovery the GPU needs
    (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: reset, node reboot, drain P2P, drain and reset).
    The driver knows best; the rule passes its verdict on."""
    findings = []
    for gpu in summary.gpu.devices:
        if not gpu.recovery_action:
            continue
        key = normalize_recovery_action(gpu.recovery_action)
        if key in ("", "none"):
            continue
        kind, what = _RECOVERY.get(key, (ActionType.INVESTIGATE, "see NVML's documentation"))
        if kind is ActionType.INVESTIGATE:
            recovery = action(kind, hint=f"NVML recovery action {gpu.recovery_action}: {what}")
        elif kind in (ActionType.DRAIN_NODE, ActionType.DRAIN_AND_REBOOT_NODE):
            recovery = action(kind, reason=f"NVML recovery action {gpu.recovery_action} on GPU {gpu.index}")
        else:
            recovery = action(kind, gpuIndex=gpu.index)
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=f"NVML asks to {what} for GPU {gpu.index} ({gpu.recovery_action})",
                evidence=[evidence(summary, "gpu.recovery_action", "last", 1, 1, "==")],
                action=recovery,
                impact="Returns the GPU to service the way the driver prescribes.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


# --- PCIe ------------------------------------------------------------------------------


@rule(
    PCIE_DEGRADED,
    actions=(ActionType.CHECK_PCIE_LINK,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=55,
    defaults={"load_sm_utilization_mean_min": 20.0},
)
def pcie_degraded(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU whose PCIe link trains below its maximum generation or width moves data (model
    loads, KV-cache offload, host transfers) at a fraction of the speed. Links downshift on
    purpose at idle to save power, so the rule only looks at GPUs under load."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        pcie, sm = gpu.pcie, gpu.sm_utilization_percent
        if sm is None or sm.mean < limits["load_sm_utilization_mean_min"]:
            continue
        if None in (pcie.link_generation, pcie.link_generation_max, pcie.link_width, pcie.link_width_max):
            continue
        slow_generation = pcie.link_generation < pcie.link_generation_max
        narrow = pcie.link_width < pcie.link_width_max
        if not (slow_generation or narrow):
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} PCIe link runs at gen{pcie.link_generation} x{pcie.link_width} "
                f"instead of gen{pcie.link_generation_max} x{pcie.link_width_max} under load",
                evidence=[
                    evidence(summary, "gpu.pcie.link_generation", "last", pcie.link_generation, pcie.link_generation_max, "<"),
                    evidence(summary, "gpu.pcie.link_width", "last", pcie.link_width, pcie.link_width_max, "<"),
                ],
                action=action(
                    ActionType.CHECK_PCIE_LINK,
                    gpuIndex=gpu.index,
                    expectedGeneration=pcie.link_generation_max,
                    expectedWidth=pcie.link_width_max,
                ),
                impact="A full-speed link restores host-GPU bandwidth for loads and KV-cache transfers.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


RULES = (ecc_uncorrectable, row_remap_failure, row_remap_pending, xid_application, xid_reset, xid_ecc, xid_nvlink, xid_off_bus, xid_unclassified, recovery_action, pcie_degraded)
