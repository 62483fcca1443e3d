"""GPU hardware health: ECC, row remapping, XID errors, NVML recovery actions, lost GPUs, PCIe link.

Hardware faults are state, not window events. An uncorrected ECC error, a pending row remap,
a remap failure, an NVML recovery action or a fatal XID stands until the GPU is reset or the
node reboots; the agent keeps them in `GpuSummary.faults` (and NVML's own remap and recovery
state), lost GPUs in `GpuSection.lost`, and the PCI bus's count of NVIDIA GPUs in
`GpuSection.expected_count`. The rules here read that standing state as well as the window's
increases, so a fault's finding is raised in every window until the fault clears, not only in
the window that saw it happen. `standing_findings` gives the findings of the standing state
alone (the operator keeps their recommendations open while the report shows the fault).

XID buckets follow the resolution buckets (immediate action) of NVIDIA's XID catalog for
Ampere and later GPUs: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html
XIDs from a GPU NVML could not name are reported on the node by the same buckets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rule import Rule, RuleContext, rule
from resource_agent.analysis.support import action, evidence, gpu_sensitive, gpu_target, make_finding, node_target
from resource_agent.api.findings import Action, ActionType, Category, Evidence, Finding, Severity, Target, TargetKind
from resource_agent.api.summary import GpuFault, GpuFaultKind, GpuSummary, LostGpuSummary, NodeSummary

XID_CATALOG = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"

ECC_UNCORRECTABLE = "gpu-ecc-uncorrectable"
ROW_REMAP_FAILURE = "gpu-row-remap-failure"
ROW_REMAP_PENDING = "gpu-row-remap-pending"
RECOVERY_ACTION = "gpu-recovery-action"
PCIE_DEGRADED = "gpu-pcie-degraded"
GPU_LOST = "gpu-lost"
GPU_MISSING = "gpu-missing"

XID_ROW_REMAP_EVENT = 63  # INFOROM_DRAM_RETIREMENT_EVENT: a row was marked for remapping (pending until reset)
XID_ROW_REMAP_FAILURE = 64  # INFOROM_DRAM_RETIREMENT_FAILURE: the remap failed


# --- standing faults -------------------------------------------------------------------


def faults_of(gpu: GpuSummary, kind: GpuFaultKind) -> list[GpuFault]:
    return [fault for fault in gpu.faults if fault.kind is kind]


def fault_evidence(summary: NodeSummary, fault: GpuFault) -> Evidence:
    """How long the fault has stood, as of the window's end."""
    metric = f"gpu.faults.{fault.kind.value}" + (f".xid{fault.xid}" if fault.xid is not None else "")
    return evidence(summary, metric, "standing", max(summary.window.end - fault.since, 0.0), 0, ">=", "s")


def _xid_count(gpu: GpuSummary, code: int) -> int:
    return sum(count for key, count in _parsed_xids(gpu).items() if key == code)


def _parsed_xids(gpu: GpuSummary) -> dict[int, int]:
    counts: dict[int, int] = {}
    for key, count in gpu.xid_counts.items():
        try:
            code = int(key)
        except ValueError:
            continue
        if count > 0:
            counts[code] = counts.get(code, 0) + count
    return counts


def _fatal_xid(gpu: GpuSummary, code: int) -> list[GpuFault]:
    return [fault for fault in faults_of(gpu, GpuFaultKind.FATAL_XID) if fault.xid == code]


# --- ECC and row remapping ----------------------------------------------------------------


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
    """Uncorrectable (double-bit) ECC errors mean data in GPU memory was corrupted; the
    applications on that GPU were killed or will read bad data. Drain the node and follow
    NVIDIA's memory-error workflow before it takes new work. The finding stands while the
    fault does: new errors in the window, the agent's standing `ecc-uncorrected` fault, or a
    volatile uncorrected count above zero (it only clears with a GPU reset or a reboot)."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        increase = gpu.ecc.uncorrected_increase
        volatile = gpu.ecc.uncorrected_volatile or 0
        standing = faults_of(gpu, GpuFaultKind.ECC_UNCORRECTED)
        fresh = increase >= limits["increase_min"]
        if not (fresh or standing or volatile > 0):
            continue
        proof = []
        if increase > 0:
            proof.append(evidence(summary, "gpu.ecc.uncorrected", "increase", increase, limits["increase_min"]))
        if volatile > 0:
            proof.append(evidence(summary, "gpu.ecc.uncorrected_volatile", "last", volatile, 1))
        proof += [fault_evidence(summary, fault) for fault in standing]
        text = (
            f"GPU {gpu.index} reported {increase} new uncorrectable ECC error(s)"
            if fresh
            else f"GPU {gpu.index} has uncorrectable ECC errors standing until it is reset"
            + (f" ({volatile} since the last reset)" if volatile > 0 else "")
        )
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=text,
                evidence=proof,
                action=action(ActionType.DRAIN_NODE, reason=f"uncorrectable ECC errors on GPU {gpu.index}"),
                impact="Stops scheduling work onto memory that corrupts data.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


def _remap_failure_evidence(summary: NodeSummary, gpu: GpuSummary) -> list[Evidence]:
    """Why the GPU's row remapping failed, or nothing when it did not.

    NVML's remap state decides when it is known; XID 64 (remap failure) counts only when NVML
    does not report the state, so the event goes with the state instead of raising its own alarm."""
    proof = []
    if gpu.ecc.remapped_rows_failure:
        proof.append(evidence(summary, "gpu.ecc.remapped_rows_failure", "last", 1, 1))
    proof += [fault_evidence(summary, fault) for fault in faults_of(gpu, GpuFaultKind.ROW_REMAP_FAILURE)]
    if gpu.ecc.remapped_rows_failure is None:
        events = _xid_count(gpu, XID_ROW_REMAP_FAILURE)
        if events:
            proof.append(evidence(summary, f"gpu.xid.{XID_ROW_REMAP_FAILURE}", "count", events, 1))
        proof += [fault_evidence(summary, fault) for fault in _fatal_xid(gpu, XID_ROW_REMAP_FAILURE)]
    return proof


def _remap_pending_evidence(summary: NodeSummary, gpu: GpuSummary) -> tuple[str, list[Evidence]]:
    """What is pending ("row remap", "page retirement") and why; no evidence when nothing is.

    XID 63 (a row marked for remapping) counts only when NVML does not report the remap state."""
    ecc, proof = gpu.ecc, []
    if ecc.remapped_rows_pending:
        proof.append(evidence(summary, "gpu.ecc.row_remap_pending", "last", 1, 1))
    proof += [fault_evidence(summary, fault) for fault in faults_of(gpu, GpuFaultKind.ROW_REMAP_PENDING)]
    if ecc.remapped_rows_pending is None:
        events = _xid_count(gpu, XID_ROW_REMAP_EVENT)
        if events:
            proof.append(evidence(summary, f"gpu.xid.{XID_ROW_REMAP_EVENT}", "count", events, 1))
    if proof:
        return "row remap", proof
    if ecc.retired_pages_pending:
        return "page retirement", [evidence(summary, "gpu.ecc.page_retirement_pending", "last", 1, 1)]
    return "", []


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
    the GPU. Read from NVML's remap state and the agent's standing `row-remap-failure` fault;
    XID 64 (INFOROM_DRAM_RETIREMENT_FAILURE, catalog immediate action RESET_GPU) counts only
    where NVML does not report the remap state, so the event never alarms on its own."""
    findings = []
    for gpu in summary.gpu.devices:
        proof = _remap_failure_evidence(summary, gpu)
        if not proof:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} reports a row-remapping failure (RMA condition)",
                evidence=proof,
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
    check the remap succeeded. The finding stands as long as NVML (or the agent's standing
    `row-remap-pending` fault) says the remap is pending. XID 63 (INFOROM_DRAM_RETIREMENT_EVENT,
    catalog immediate action IGNORE) goes with this state and counts only where NVML does not
    report it. A remap failure is reported by gpu-row-remap-failure instead."""
    findings = []
    for gpu in summary.gpu.devices:
        if _remap_failure_evidence(summary, gpu):
            continue
        what, proof = _remap_pending_evidence(summary, gpu)
        if not proof:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} has a {what} pending until its next reset",
                evidence=proof,
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
    catalog_action: str  # the catalog's "Resolution Bucket (Immediate Action)"


def _codes(*parts: int | range) -> frozenset[int]:
    codes: set[int] = set()
    for part in parts:
        codes |= set(part) if isinstance(part, range) else {part}
    return frozenset(codes)


XID_APPLICATION = "gpu-xid-application"
XID_CONTAINED_ECC = "gpu-xid-contained-ecc"
XID_RESET = "gpu-xid-reset"
XID_ECC = "gpu-xid-ecc"
XID_NVLINK = "gpu-xid-nvlink"
XID_OFF_BUS = "gpu-xid-off-bus"
XID_INFORMATIONAL = "gpu-xid-informational"
XID_UNCLASSIFIED = "gpu-xid-unclassified"

XID_CLASSES: tuple[XidClass, ...] = (
    XidClass(
        XID_APPLICATION,
        _codes(8, 11, 13, 25, 31, 32, range(39, 42), 60, range(68, 73), range(75, 78), 80, range(82, 87), 88, 89, range(96, 106), range(126, 136), 139),
        Severity.WARNING, ActionType.RESTART_WORKLOAD, "application or engine error: restart the application", "RESTART_APP",
    ),
    XidClass(
        XID_CONTAINED_ECC, _codes(94), Severity.WARNING, ActionType.RESTART_WORKLOAD,
        "contained uncorrectable ECC error: restart the application; the remap waits for a reset", "RESTART_APP",
    ),
    XidClass(
        XID_RESET, _codes(46, 62, 95, 109, 110, 119, 120, 136, 140, 143, 155, 156, 158),
        Severity.CRITICAL, ActionType.RESET_GPU, "the GPU needs a reset once its work is drained", "RESET_GPU",
    ),
    XidClass(XID_ECC, _codes(48), Severity.CRITICAL, ActionType.RUN_ECC_WORKFLOW, "double-bit ECC error", "WORKFLOW_XID_48"),
    XidClass(
        XID_NVLINK, _codes(74, range(144, 151)), Severity.WARNING, ActionType.CHECK_NVLINK, "NVLink error",
        "WORKFLOW_NVLINK_ERR (74), WORKFLOW_NVLINK5_ERR (144-150)",
    ),
    XidClass(XID_OFF_BUS, _codes(79), Severity.CRITICAL, ActionType.DRAIN_AND_REBOOT_NODE, "the GPU fell off the bus", "RESTART_BM"),
    XidClass(
        XID_INFORMATIONAL, _codes(14, 37, 38, 43, 44, 66, 67, 92, 106, 107, 108, 137, 141, 157, 160, 161),
        Severity.INFO, ActionType.INVESTIGATE, "informational: watch for repeats", "IGNORE",
    ),
)
# XIDs that raise no finding of their own: 45 (ROBUST_CHANNEL_PREEMPTIVE_REMOVAL) is the driver
# tearing down a process's channels, after the process exited or after another XID, which
# carries its own finding; 63 and 64 go with the row-remap state; 154
# (GPU_RECOVERY_ACTION_CHANGED) with NVML's recovery action.
XID_FOLLOWS_OTHERS: dict[int, str] = {
    45: "a process's channels torn down (WORKFLOW_XID_45: alone it is a process exit; otherwise the accompanying XID decides)",
    XID_ROW_REMAP_EVENT: f"row marked for remapping: reported by {ROW_REMAP_PENDING} with the remap state",
    XID_ROW_REMAP_FAILURE: f"row remap failed: reported by {ROW_REMAP_FAILURE} with the remap state",
    154: f"NVML's recovery action changed: reported by {RECOVERY_ACTION}",
}
CLASSIFIED_XIDS = frozenset().union(*(xid_class.codes for xid_class in XID_CLASSES), XID_FOLLOWS_OTHERS)


def _in_class(code: int, codes: frozenset[int] | None) -> bool:
    """Whether an XID code belongs to a class's codes; `codes=None` is the class of the unclassified ones."""
    return code in codes if codes is not None else code not in CLASSIFIED_XIDS


def _xid_events(gpu: GpuSummary, codes: frozenset[int] | None) -> tuple[dict[int, int], dict[int, GpuFault]]:
    """(XID code -> events in the window, XID code -> standing fatal-XID fault) of a class;
    `codes=None` selects the unclassified ones (a standing fatal XID without a code among them, as 0)."""

    counts = {code: count for code, count in _parsed_xids(gpu).items() if _in_class(code, codes)}
    standing: dict[int, GpuFault] = {}
    for fault in faults_of(gpu, GpuFaultKind.FATAL_XID):
        code = fault.xid if fault.xid is not None else 0
        if (fault.xid is None and codes is None) or (fault.xid is not None and _in_class(code, codes)):
            standing.setdefault(code, fault)
    return dict(sorted(counts.items())), dict(sorted(standing.items()))


def _xid_listed(codes: Iterable[int]) -> str:
    return ", ".join(f"XID {code}" if code else "a fatal XID" for code in codes)


def _xid_action(gpu: GpuSummary, xid_class: XidClass | None, codes: list[int]) -> Action:
    listed = _xid_listed(codes)
    kind = xid_class.action if xid_class else ActionType.INVESTIGATE
    if kind is ActionType.RESTART_WORKLOAD:
        only = gpu.processes[0] if len(gpu.processes) == 1 else None
        return action(kind, gpuIndex=gpu.index, pid=only.pid if only else None, podUid=only.pod_uid if only else None)
    if kind is ActionType.DRAIN_AND_REBOOT_NODE:
        return action(kind, reason=f"{listed} on GPU {gpu.index}")
    if kind is ActionType.INVESTIGATE:
        if xid_class is not None:
            return action(kind, hint=f"{listed} on GPU {gpu.index}: NVIDIA's XID catalog says {xid_class.catalog_action}; watch for repeats")
        return action(kind, hint=f"{listed} on GPU {gpu.index}: look the code up in NVIDIA's XID catalog ({XID_CATALOG})")
    return action(kind, gpuIndex=gpu.index)


def _xid_findings(summary: NodeSummary, ctx: RuleContext, xid_class: XidClass | None) -> list[Finding]:
    limits = ctx.limits
    severity = xid_class.severity if xid_class else Severity.WARNING
    meaning = xid_class.meaning if xid_class else "not in a known resolution bucket"
    findings = []
    for gpu in summary.gpu.devices:
        counts, standing = _xid_events(gpu, xid_class.codes if xid_class else None)
        if sum(counts.values()) < limits["events_min"] and not standing:
            continue
        codes = sorted(set(counts) | set(standing))
        parts = []
        for code in codes:
            part = _xid_listed([code]) + (f" x{counts[code]}" if code in counts else "")
            parts.append(part + (" (standing until reset)" if code in standing else ""))
        proof = [evidence(summary, f"gpu.xid.{code}", "count", count, limits["events_min"]) for code, count in counts.items()]
        proof += [fault_evidence(summary, fault) for fault in standing.values()]
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=severity,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index}: {', '.join(parts)}: {meaning}",
                evidence=proof,
                action=_xid_action(gpu, xid_class, codes),
                impact="Follows NVIDIA's resolution for this XID class so the GPU serves again.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    unnamed = _unattributed_finding(summary, ctx, xid_class)
    return findings + ([unnamed] if unnamed else [])


def _unattributed_finding(summary: NodeSummary, ctx: RuleContext, xid_class: XidClass | None) -> Finding | None:
    """The class's XIDs from a GPU NVML could not name, on the node: the code still says what happened, not where."""
    codes = xid_class.codes if xid_class else None
    counts = {int(key): count for key, count in sorted((summary.gpu.unattributed_xid_counts or {}).items())
              if key.isdigit() and _in_class(int(key), codes)}
    if not counts or sum(counts.values()) < ctx.limits["events_min"]:
        return None
    listed = ", ".join(f"XID {code} x{count}" for code, count in counts.items())
    meaning = xid_class.meaning if xid_class else "not in a known resolution bucket"
    where = "on a GPU NVML could not name (find it by PCI bus id in the kernel log: dmesg | grep -i xid)"
    if xid_class is not None and xid_class.action is ActionType.DRAIN_AND_REBOOT_NODE:
        fix = action(xid_class.action, reason=f"{listed} {where}")
    elif xid_class is not None:
        fix = action(ActionType.INVESTIGATE, hint=f"{listed} {where}: NVIDIA's XID catalog says {xid_class.catalog_action}")
    else:
        fix = action(ActionType.INVESTIGATE, hint=f"{listed} {where}: look the code up in NVIDIA's XID catalog ({XID_CATALOG})")
    return make_finding(
        summary,
        ctx,
        severity=xid_class.severity if xid_class else Severity.WARNING,
        target=node_target(summary),
        text=f"{listed} {where}: {meaning}",
        evidence=[evidence(summary, f"gpu.unattributedXid.{code}", "count", count, ctx.limits["events_min"]) for code, count in counts.items()],
        action=fix,
        impact="Follows NVIDIA's resolution for this XID class once the GPU is found.",
    )


_XID = {xid_class.rule_id: xid_class for xid_class in XID_CLASSES}
_EVENTS = {"events_min": 1.0}


@rule(
    XID_APPLICATION,
    actions=(ActionType.RESTART_WORKLOAD, ActionType.INVESTIGATE),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=65,
    defaults=_EVENTS,
    sustained=False,
)
def xid_application(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XIDs whose catalog immediate action is RESTART_APP: 8 (ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT),
    13 (ROBUST_CHANNEL_GR_EXCEPTION), 31 (ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT), 32 (PBDMA error),
    the copy-engine, video and JPEG engine errors (39-41, 68-72, 75-77, 82-89, 96-105, 126-135,
    139) and the like: usually the application's fault (illegal address, engine exception). The
    GPU stays healthy; restart the application. XID 45 (ROBUST_CHANNEL_PREEMPTIVE_REMOVAL) is the
    channel teardown that follows a process exit or another XID and raises nothing of its own;
    XID 43 (ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR) is IGNORE in the catalog (gpu-xid-informational).
    Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_APPLICATION])


@rule(
    XID_CONTAINED_ECC,
    actions=(ActionType.RESTART_WORKLOAD, ActionType.INVESTIGATE),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=68,
    defaults=_EVENTS,
    sustained=False,
)
def xid_contained_ecc(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 94 (ROBUST_CHANNEL_CONTAINED_ERROR): an uncorrectable ECC error that the GPU contained
    to the application that touched the memory; catalog immediate action RESTART_APP. Other work
    on the GPU goes on and the page is offlined; the row remap itself waits for the next GPU reset
    (gpu-row-remap-pending). Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_CONTAINED_ECC])


@rule(
    XID_RESET,
    actions=(ActionType.RESET_GPU, ActionType.INVESTIGATE),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=90,
    defaults=_EVENTS,
    sustained=False,
)
def xid_reset(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XIDs whose catalog immediate action is RESET_GPU: 46 (ROBUST_CHANNEL_GPU_TIMEOUT_ERROR),
    62 (PMU_HALT_ERROR), 95 (ROBUST_CHANNEL_UNCONTAINED_ERROR: an uncorrectable ECC error that
    could not be contained, so every application on the GPU is affected), 109
    (ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR), 110 (SEC_FAULT_ERROR), 119 (GSP_RPC_TIMEOUT), 120
    (GSP_ERROR), 136 (ALI_TRAINING_FAIL), 140 (UNRECOVERABLE_ECC_ERROR_ESCAPE), 143
    (GPU_INIT_ERROR), 155, 156 and 158 (GPU_FATAL_TIMEOUT). The GPU is unusable until it is
    reset: drain its work, then reset it. A fatal one stands until the reset.
    Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_RESET])


@rule(
    XID_ECC,
    actions=(ActionType.RUN_ECC_WORKFLOW, ActionType.INVESTIGATE),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=92,
    defaults=_EVENTS,
    sustained=False,
)
def xid_ecc(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 48 (ROBUST_CHANNEL_GPU_ECC_DBE) is a double-bit ECC error; the catalog's immediate action
    is WORKFLOW_XID_48: check the remap state, reset the GPU to remap the row, RMA if the remap
    fails. A fatal one stands until the reset.
    Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_ECC])


@rule(
    XID_NVLINK,
    actions=(ActionType.CHECK_NVLINK, ActionType.INVESTIGATE),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=70,
    defaults=_EVENTS,
    sustained=False,
)
def xid_nvlink(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 74 (NVLINK_ERROR; catalog immediate action WORKFLOW_NVLINK_ERR) and XIDs 144-150 (NVLink5
    errors; WORKFLOW_NVLINK5_ERR): check the links, NVSwitch and fabric manager following NVIDIA's
    NVLink workflow before multi-GPU jobs hang or slow down.
    Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_NVLINK])


@rule(
    XID_OFF_BUS,
    actions=(ActionType.DRAIN_AND_REBOOT_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=98,
    defaults=_EVENTS,
    sustained=False,
)
def xid_off_bus(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XID 79 (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS): the GPU fell off the PCIe bus. The
    catalog's immediate action is RESTART_BM: a software reset cannot reach it, so drain the node
    and reboot (power-cycle) it; check the board and slot if it repeats. It stands until then.
    An XID from a GPU NVML could not name (the event's device handle fails its UUID query and the
    agent never saw it healthy, e.g. after a restart) is counted in the report's
    `gpu.unattributedXidCounts`; every XID rule reports those of its class on the node, with
    `investigate` (find the GPU in the kernel log) where its own action needs the GPU.
    Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_OFF_BUS])


@rule(
    XID_INFORMATIONAL,
    actions=(ActionType.INVESTIGATE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=15,
    defaults=_EVENTS,
    sustained=False,
)
def xid_informational(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """XIDs whose catalog immediate action is IGNORE, reported as information to watch: 43
    (ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR, a channel stopped after an application error), 92
    (EXCESSIVE_SBE_INTERRUPTS, a high rate of corrected single-bit ECC errors), 137
    (NVLINK_PRIV_ERR), 108, 141, 157, 160, 161 and the like. Nothing to do now; repeats are worth a
    look. Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
    return _xid_findings(summary, ctx, _XID[XID_INFORMATIONAL])


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
    """Any other XID (CONTACT_SUPPORT, CHECK_MECHANICALS, UPDATE_SWFW, RESTART_VM and unused
    codes in the catalog) is reported for a person to look up in NVIDIA's XID catalog, rather
    than guessing an action. Catalog: https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"""
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


def _recovery_of(gpu: GpuSummary) -> tuple[str | None, list[GpuFault]]:
    """The recovery action NVML asks for (its latest, else the standing fault's) and the standing faults."""
    standing = faults_of(gpu, GpuFaultKind.RECOVERY_ACTION)
    current = gpu.recovery_action
    if current and normalize_recovery_action(current) not in ("", "none"):
        return current, standing
    for fault in standing:
        named = fault.detail.split(":", 1)[-1].strip()
        if normalize_recovery_action(named) not in ("", "none"):
            return named, standing
    return (standing[0].detail, standing) if standing else (None, standing)


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
    (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: reset, node reboot, drain P2P, drain and reset; XID 154
    GPU_RECOVERY_ACTION_CHANGED announces it). The driver knows best; the rule passes its verdict
    on, and keeps it while the agent's standing `recovery-action` fault does."""
    findings = []
    for gpu in summary.gpu.devices:
        named, standing = _recovery_of(gpu)
        if not named:
            continue
        key = normalize_recovery_action(named)
        if key in ("", "none"):
            continue
        kind, what = _RECOVERY.get(key, (ActionType.INVESTIGATE, "see NVML's documentation"))
        if kind is ActionType.INVESTIGATE:
            recovery = action(kind, hint=f"NVML recovery action {named}: {what}")
        elif kind in (ActionType.DRAIN_NODE, ActionType.DRAIN_AND_REBOOT_NODE):
            recovery = action(kind, reason=f"NVML recovery action {named} on GPU {gpu.index}")
        else:
            recovery = action(kind, gpuIndex=gpu.index)
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=gpu_target(gpu),
                text=f"NVML asks to {what} for GPU {gpu.index} ({named})",
                evidence=[evidence(summary, "gpu.recovery_action", "last", 1, 1, "=="),
                          *(fault_evidence(summary, fault) for fault in standing)],
                action=recovery,
                impact="Returns the GPU to service the way the driver prescribes.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


# --- lost and missing GPUs ---------------------------------------------------------------


def lost_target(lost: LostGpuSummary) -> Target:
    """The lost GPU as a target; the same identity as while it was seen (index and uuid)."""
    name = f"gpu{lost.index}" if lost.index is not None else (lost.pci_bus_id or lost.uuid or "gpu")
    return Target(kind=TargetKind.GPU, name=name, gpu_index=lost.index, gpu_uuid=lost.uuid)


def lost_gpus(summary: NodeSummary) -> list[LostGpuSummary]:
    """GPUs NVML lost: the section's lost list, and devices with a standing `lost` fault."""
    lost = list(summary.gpu.lost)
    known = {item.uuid for item in lost if item.uuid} | {item.pci_bus_id for item in lost if item.pci_bus_id}
    for gpu in summary.gpu.devices:
        for fault in faults_of(gpu, GpuFaultKind.LOST):
            if gpu.uuid not in known:
                known.add(gpu.uuid)
                lost.append(LostGpuSummary(index=gpu.index, uuid=gpu.uuid, pci_bus_id=gpu.pci_bus_id, error=fault.detail, since=fault.since))
    return lost


@rule(
    GPU_LOST,
    actions=(ActionType.DRAIN_AND_REBOOT_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=99,
    defaults={},
    sustained=False,
)
def gpu_lost(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU NVML lost (NVML_ERROR_GPU_IS_LOST, typically after XID 79) serves nothing and takes
    no reset: like XID 79 in NVIDIA's catalog (RESTART_BM), drain the node and reboot it; check
    the board, slot and power if it repeats. The agent keeps a lost GPU in the report until it is
    back or the node reboots, so the finding stands as long."""
    findings = []
    for lost in lost_gpus(summary):
        target = lost_target(lost)
        standing = max(summary.window.end - lost.since, 0.0)
        where = f" ({lost.pci_bus_id})" if lost.pci_bus_id else ""
        sensitive = [("gpu", lost.uuid)] if lost.uuid else []
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL,
                target=target,
                text=f"GPU {lost.index if lost.index is not None else '?'}{where} is lost to NVML: {lost.error}",
                evidence=[evidence(summary, "gpu.lost", "standing", standing, 0, ">=", "s")],
                action=action(ActionType.DRAIN_AND_REBOOT_NODE, reason=f"{target.name} lost to NVML"),
                impact="Moves work off a node whose GPU is gone; a reboot usually brings it back.",
                sensitive=sensitive,
            )
        )
    return findings


@rule(
    GPU_MISSING,
    actions=(ActionType.DRAIN_NODE,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=97,
    defaults={},
    sustained=False,
)
def gpu_missing(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """The PCI bus lists more NVIDIA GPUs than NVML sees (and than the agent knows are lost): a GPU
    failed to initialise or dropped out before the agent saw it. The node runs short of GPUs while
    the scheduler may still count them. Drain it, read the kernel log for the driver's init error,
    reboot; replace the GPU if it stays missing."""
    expected = summary.gpu.expected_count
    if expected is None:
        return []
    seen = {gpu.uuid for gpu in summary.gpu.devices}
    lost = [item for item in lost_gpus(summary) if not item.uuid or item.uuid not in seen]
    accounted = len(summary.gpu.devices) + len(lost)
    missing = expected - accounted
    if missing <= 0:
        return []
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.CRITICAL,
            target=node_target(summary),
            text=f"{missing} of {expected} GPU(s) on the PCI bus are not visible to NVML ({len(summary.gpu.devices)} seen)",
            evidence=[evidence(summary, "gpu.count", "last", accounted, expected, "<")],
            action=action(ActionType.DRAIN_NODE, reason=f"{missing} GPU(s) on the PCI bus missing from NVML"),
            impact="Keeps work that needs every GPU off a node running short of GPUs.",
        )
    ]


# --- PCIe ------------------------------------------------------------------------------


@rule(
    PCIE_DEGRADED,
    actions=(ActionType.CHECK_PCIE_LINK,),
    family="gpu_health",
    category=Category.HARDWARE,
    weight=55,
    defaults={"load_sm_utilization_mean_min": 20.0, "load_sm_utilization_last_min": 20.0},
)
def pcie_degraded(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU whose PCIe link trains below its maximum generation or width moves data (model
    loads, KV-cache offload, host transfers) at a fraction of the speed. NVIDIA documents that
    the current link generation and width "may be reduced when the GPU is not in use"
    (nvidia-smi --help-query-gpu, pcie.link.gen.gpucurrent): links downshift to save power at
    idle, often to gen1. The link values are the last sample's, so the rule judges only a GPU
    that was busy then and over the window."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        pcie, sm = gpu.pcie, gpu.sm_utilization_percent
        if sm is None or sm.mean < limits["load_sm_utilization_mean_min"] or sm.last < limits["load_sm_utilization_last_min"]:
            continue
        generation, generation_max, width, width_max = pcie.link_generation, pcie.link_generation_max, pcie.link_width, pcie.link_width_max
        if generation is None or generation_max is None or width is None or width_max is None:
            continue
        slow_generation = generation < generation_max
        narrow = width < width_max
        if not (slow_generation or narrow):
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} PCIe link runs at gen{generation} x{width} instead of gen{generation_max} x{width_max} under load",
                evidence=[
                    evidence(summary, "gpu.pcie.link_generation", "last", generation, generation_max, "<"),
                    evidence(summary, "gpu.pcie.link_width", "last", width, width_max, "<"),
                    evidence(summary, "gpu.sm_utilization_percent", "last", sm.last, limits["load_sm_utilization_last_min"], ">=", "%"),
                ],
                action=action(
                    ActionType.CHECK_PCIE_LINK,
                    gpuIndex=gpu.index,
                    expectedGeneration=generation_max,
                    expectedWidth=width_max,
                ),
                impact="A full-speed link restores host-GPU bandwidth for loads and KV-cache transfers.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


RULES = (
    ecc_uncorrectable,
    row_remap_failure,
    row_remap_pending,
    xid_application,
    xid_contained_ecc,
    xid_reset,
    xid_ecc,
    xid_nvlink,
    xid_off_bus,
    xid_informational,
    xid_unclassified,
    recovery_action,
    gpu_lost,
    gpu_missing,
    pcie_degraded,
)

# Rules a standing fault keeps firing: on a summary without window events only faults raise them.
STANDING_RULES: tuple[Rule, ...] = tuple(rule_ for rule_ in RULES if rule_ is not pcie_degraded)


def has_standing_state(summary: NodeSummary) -> bool:
    """Whether anything in the summary can stand beyond its window (cheap: most reports have nothing)."""
    section = summary.gpu
    if section.lost or (section.expected_count is not None and section.expected_count > len(section.devices)):
        return True
    for gpu in section.devices:
        ecc = gpu.ecc
        if gpu.faults or (ecc.uncorrected_volatile or 0) > 0 or ecc.remapped_rows_pending or ecc.remapped_rows_failure:
            return True
        if ecc.retired_pages_pending or (gpu.recovery_action and normalize_recovery_action(gpu.recovery_action) not in ("", "none")):
            return True
    return False


def standing_only(summary: NodeSummary) -> NodeSummary:
    """The summary with the window's events taken out: what is left is standing state."""
    if not any(gpu.xid_counts or gpu.ecc.uncorrected_increase for gpu in summary.gpu.devices):
        return summary
    devices = [
        gpu.model_copy(update={"xid_counts": {}, "ecc": gpu.ecc.model_copy(update={"uncorrected_increase": 0})})
        for gpu in summary.gpu.devices
    ]
    return summary.model_copy(update={"gpu": summary.gpu.model_copy(update={"devices": devices})})


def standing_findings(summary: NodeSummary, policy: Policy) -> list[Finding]:
    """The findings the summary's standing hardware faults alone raise (enabled rules only),
    whatever the window saw: the operator keeps their recommendations open while they stand."""
    if not has_standing_state(summary):
        return []
    standing = standing_only(summary)
    return [finding for rule_ in STANDING_RULES if policy.is_enabled(rule_.id) for finding in rule_(standing, policy)]
