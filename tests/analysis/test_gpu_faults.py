"""Hardware faults are state: their findings stand in every window until the fault clears."""

import pytest

from resource_agent.analysis.catalog import RULES
from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import gpu_health as rules
from resource_agent.api.findings import ActionType, Severity, TargetKind
from resource_agent.api.summary import EccSummary, GpuFault, GpuFaultKind, GpuSection, LostGpuSummary
from tests.analysis.analysis_builders import fired, gpu, node

POLICY = Policy()
SINCE = 400.0  # an hour before the builder's window (1000-1295)


def fault(kind: GpuFaultKind, detail: str = "", xid: int | None = None) -> GpuFault:
    return GpuFault(kind=kind, since=SINCE, detail=detail or kind.value, xid=xid)


def hardware_findings(summary) -> list[tuple[str, str]]:
    return sorted(fired([f for f in analyze(summary).findings if f.category.value == "hardware"]))


# --- faults stand in a window that saw nothing new ---------------------------------------


def test_uncorrected_ecc_stands_in_a_quiet_window():
    window_event = gpu(1, ecc=EccSummary(uncorrected_increase=2, uncorrected_volatile=2))
    quiet_window = gpu(1, ecc=EccSummary(uncorrected_increase=0, uncorrected_volatile=2))
    by_fault_only = gpu(1, faults=[fault(GpuFaultKind.ECC_UNCORRECTED, "uncorrected volatile ECC 2")])
    for device in (window_event, quiet_window, by_fault_only):
        findings = rules.ecc_uncorrectable(node(gpus=[gpu(0), device]), POLICY)
        assert fired(findings) == [("gpu-ecc-uncorrectable", "gpu1")]
        assert findings[0].severity is Severity.CRITICAL and findings[0].action.type is ActionType.DRAIN_NODE
    standing = rules.ecc_uncorrectable(node(gpus=[by_fault_only]), POLICY)[0]
    assert standing.evidence[-1].metric == "gpu.faults.ecc-uncorrected"
    assert standing.evidence[-1].observed == 1295.0 - SINCE


def test_uncorrected_ecc_clears_with_the_reset():
    reset = gpu(1, ecc=EccSummary(uncorrected_increase=0, uncorrected_volatile=0, uncorrected_aggregate=2))
    assert rules.ecc_uncorrectable(node(gpus=[reset]), POLICY) == []


def test_remap_pending_and_failure_stand_from_faults():
    pending = gpu(0, faults=[fault(GpuFaultKind.ROW_REMAP_PENDING)])
    failed = gpu(1, faults=[fault(GpuFaultKind.ROW_REMAP_FAILURE), fault(GpuFaultKind.ROW_REMAP_PENDING)])
    summary = node(gpus=[pending, failed])
    assert fired(rules.row_remap_pending(summary, POLICY)) == [("gpu-row-remap-pending", "gpu0")]
    assert fired(rules.row_remap_failure(summary, POLICY)) == [("gpu-row-remap-failure", "gpu1")]


def test_remap_xids_go_with_the_remap_state():
    # XID 63 (row marked for remapping) and 64 (remap failed) raise nothing of their own ...
    known_state = gpu(0, xid_counts={"63": 1}, ecc=EccSummary(remapped_rows_pending=True, remapped_rows_failure=False))
    summary = node(gpus=[known_state])
    assert hardware_findings(summary) == [("gpu-row-remap-pending", "gpu0")]
    # ... NVML's state decides when it is known (a later window, the remap applied by a reset) ...
    applied = gpu(0, xid_counts={"63": 1}, ecc=EccSummary(remapped_rows_pending=False, remapped_rows_failure=False))
    assert hardware_findings(node(gpus=[applied])) == []
    # ... and the event stands in for the state only where NVML does not report it.
    unknown_state = gpu(0, xid_counts={"63": 1})
    failed_unknown = gpu(1, xid_counts={"64": 1})
    assert hardware_findings(node(gpus=[unknown_state, failed_unknown])) == [
        ("gpu-row-remap-failure", "gpu1"),
        ("gpu-row-remap-pending", "gpu0"),
    ]


def test_fatal_xid_stands_until_the_gpu_is_reset():
    in_window = gpu(3, xid_counts={"79": 1}, faults=[fault(GpuFaultKind.FATAL_XID, "XID 79", xid=79)])
    later_window = gpu(3, faults=[fault(GpuFaultKind.FATAL_XID, "XID 79", xid=79)])
    for device in (in_window, later_window):
        findings = rules.xid_off_bus(node(gpus=[device]), POLICY)
        assert fired(findings) == [("gpu-xid-off-bus", "gpu3")]
        assert findings[0].action.type is ActionType.DRAIN_AND_REBOOT_NODE
    assert "standing" in rules.xid_off_bus(node(gpus=[later_window]), POLICY)[0].summary
    after_reboot = gpu(3)
    assert rules.xid_off_bus(node(gpus=[after_reboot]), POLICY) == []


def test_fatal_xid_fault_is_routed_by_its_code():
    summary = node(gpus=[
        gpu(0, faults=[fault(GpuFaultKind.FATAL_XID, xid=95)]),
        gpu(1, faults=[fault(GpuFaultKind.FATAL_XID, xid=48)]),
        gpu(2, faults=[fault(GpuFaultKind.FATAL_XID, xid=999)]),
        gpu(3, faults=[fault(GpuFaultKind.FATAL_XID, "fatal XID, code unknown")]),
    ])
    assert hardware_findings(summary) == [
        ("gpu-xid-ecc", "gpu1"),
        ("gpu-xid-reset", "gpu0"),
        ("gpu-xid-unclassified", "gpu2"),
        ("gpu-xid-unclassified", "gpu3"),
    ]


def test_recovery_action_stands_from_the_fault():
    device = gpu(0, recovery_action=None, faults=[fault(GpuFaultKind.RECOVERY_ACTION, "recovery action: gpu_reset")])
    findings = rules.recovery_action(node(gpus=[device]), POLICY)
    assert [(f.rule, f.action.type) for f in findings] == [("gpu-recovery-action", ActionType.RESET_GPU)]
    reboot = gpu(1, recovery_action="none", faults=[fault(GpuFaultKind.RECOVERY_ACTION, "recovery action: node_reboot")])
    assert rules.recovery_action(node(gpus=[reboot]), POLICY)[0].action.type is ActionType.DRAIN_AND_REBOOT_NODE


# --- lost and missing GPUs -----------------------------------------------------------------


def test_lost_gpu_is_critical_and_drains():
    lost = LostGpuSummary(index=5, uuid=gpu(5).uuid, pci_bus_id="00000000:9A:00.0", error="GPU is lost", since=SINCE)
    summary = node(gpu=GpuSection(available=True, devices=[gpu(0), gpu(1)], lost=[lost], expected_count=3))
    findings = [f for f in analyze(summary).findings if f.severity is Severity.CRITICAL]
    assert fired(findings) == [("gpu-lost", "gpu5")]
    finding = findings[0]
    assert finding.action.type is ActionType.DRAIN_AND_REBOOT_NODE
    # the same identity as the GPU had while it was seen, so its recommendation follows it
    assert finding.target.key() == rules.gpu_target(gpu(5)).key()
    assert gpu(5).uuid in {s.unmasked for s in finding.sensitive}


def test_device_with_a_lost_fault_is_lost():
    device = gpu(2, faults=[fault(GpuFaultKind.LOST, "NVML: GPU is lost")])
    assert fired(rules.gpu_lost(node(gpus=[gpu(0), device]), POLICY)) == [("gpu-lost", "gpu2")]


def test_fewer_nvml_gpus_than_pci_gpus_is_critical():
    summary = node(gpu=GpuSection(available=True, devices=[gpu(i) for i in range(7)], expected_count=8))
    findings = rules.gpu_missing(summary, POLICY)
    assert fired(findings) == [("gpu-missing", "gpu-node-1")]
    assert findings[0].severity is Severity.CRITICAL and findings[0].target.kind is TargetKind.NODE
    assert findings[0].action.type is ActionType.DRAIN_NODE
    assert "1 of 8" in findings[0].summary


def test_missing_count_is_silent_when_every_gpu_is_seen_or_known_lost():
    lost = LostGpuSummary(index=7, uuid=gpu(7).uuid, error="GPU is lost", since=SINCE)
    all_seen = node(gpu=GpuSection(available=True, devices=[gpu(i) for i in range(8)], expected_count=8))
    one_lost = node(gpu=GpuSection(available=True, devices=[gpu(i) for i in range(7)], lost=[lost], expected_count=8))
    unknown = node(gpu=GpuSection(available=True, devices=[gpu(0)]))
    for summary in (all_seen, one_lost, unknown):
        assert rules.gpu_missing(summary, POLICY) == []
    assert fired(rules.gpu_lost(one_lost, POLICY)) == [("gpu-lost", "gpu7")]


# --- XID buckets after NVIDIA's catalog ------------------------------------------------------


def xid_rules(code: int) -> list[tuple[str, Severity]]:
    summary = node(gpus=[gpu(0, xid_counts={str(code): 1})])
    return [(f.rule, f.severity) for f in analyze(summary).findings if f.rule.startswith("gpu-")]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (13, [("gpu-xid-application", Severity.WARNING)]),  # RESTART_APP
        (31, [("gpu-xid-application", Severity.WARNING)]),
        (43, [("gpu-xid-informational", Severity.INFO)]),  # IGNORE
        (45, []),  # channel teardown after a process exit: alone, nothing
        (48, [("gpu-xid-ecc", Severity.CRITICAL)]),  # WORKFLOW_XID_48
        (63, []),  # goes with the remap state (NVML reports it: not pending here)
        (74, [("gpu-xid-nvlink", Severity.WARNING)]),  # WORKFLOW_NVLINK_ERR
        (79, [("gpu-xid-off-bus", Severity.CRITICAL)]),  # RESTART_BM
        (92, [("gpu-xid-informational", Severity.INFO)]),  # high single-bit ECC rate: watch
        (94, [("gpu-xid-contained-ecc", Severity.WARNING)]),  # RESTART_APP
        (95, [("gpu-xid-reset", Severity.CRITICAL)]),  # RESET_GPU
        (119, [("gpu-xid-reset", Severity.CRITICAL)]),  # GSP_RPC_TIMEOUT: RESET_GPU
        (120, [("gpu-xid-reset", Severity.CRITICAL)]),  # GSP_ERROR: RESET_GPU
        (140, [("gpu-xid-reset", Severity.CRITICAL)]),  # UNRECOVERABLE_ECC_ERROR_ESCAPE: RESET_GPU
        (154, []),  # recovery action changed: goes with NVML's recovery action
        (999, [("gpu-xid-unclassified", Severity.WARNING)]),
    ],
)
def test_xid_bucket_follows_the_catalog(code, expected):
    device_state = EccSummary(remapped_rows_pending=False, remapped_rows_failure=False)
    summary = node(gpus=[gpu(0, xid_counts={str(code): 1}, ecc=device_state)])
    assert [(f.rule, f.severity) for f in analyze(summary).findings] == expected


def test_xid_45_with_another_xid_follows_the_other():
    summary = node(gpus=[gpu(0, xid_counts={"45": 12, "79": 1})])
    assert fired(analyze(summary).findings) == [("gpu-xid-off-bus", "gpu0")]


def test_informational_xid_action_says_watch():
    finding = rules.xid_informational(node(gpus=[gpu(0, xid_counts={"92": 3})]), POLICY)[0]
    assert finding.action.type is ActionType.INVESTIGATE
    assert "IGNORE" in finding.action.parameters["hint"]


def test_every_xid_rule_docstring_cites_the_catalog():
    for xid_rule in (*(RULES[c.rule_id] for c in rules.XID_CLASSES), RULES[rules.XID_UNCLASSIFIED]):
        assert rules.XID_CATALOG in xid_rule.rationale, xid_rule.id


def test_xid_buckets_and_follow_ups_do_not_overlap():
    seen = set(rules.XID_FOLLOWS_OTHERS)
    for xid_class in rules.XID_CLASSES:
        assert not (seen & xid_class.codes), xid_class.rule_id
        seen |= xid_class.codes


# --- standing findings (what the operator keeps open) -------------------------------------


def test_standing_findings_ignore_window_events_and_keep_faults():
    summary = node(gpus=[
        gpu(0, xid_counts={"13": 1, "79": 1}, ecc=EccSummary(uncorrected_increase=1)),  # window events only
        gpu(1, faults=[fault(GpuFaultKind.FATAL_XID, xid=79), fault(GpuFaultKind.ECC_UNCORRECTED)]),
    ])
    assert sorted(fired(rules.standing_findings(summary, POLICY))) == [
        ("gpu-ecc-uncorrectable", "gpu1"),
        ("gpu-xid-off-bus", "gpu1"),
    ]
    disabled = Policy(disabled_rules=["gpu-xid-off-bus"])
    assert fired(rules.standing_findings(summary, disabled)) == [("gpu-ecc-uncorrectable", "gpu1")]


def test_a_healthy_report_has_no_standing_state():
    healthy = node(gpus=[gpu(0, xid_counts={"13": 1}), gpu(1)])
    assert not rules.has_standing_state(healthy)
    assert rules.standing_findings(healthy, POLICY) == []
    assert rules.has_standing_state(node(gpus=[gpu(0, ecc=EccSummary(remapped_rows_pending=True))]))


def test_the_agents_fatal_xids_are_the_catalogs_reset_drain_and_workflow_buckets():
    """The agent keeps an XID as a standing fault exactly when the analysis would act on it
    with a reset, a drain, the ECC/NVLink workflows, or a contained ECC awaiting a reset."""
    from resource_agent.analysis.rules.gpu_health import (
        XID_CLASSES,
        XID_CONTAINED_ECC,
        XID_ECC,
        XID_NVLINK,
        XID_OFF_BUS,
        XID_RESET,
    )
    from resource_agent.api.xid import FATAL_XIDS

    standing = {XID_RESET, XID_ECC, XID_NVLINK, XID_OFF_BUS, XID_CONTAINED_ECC}
    expected = set().union(*(xid_class.codes for xid_class in XID_CLASSES if xid_class.rule_id in standing))
    assert set(FATAL_XIDS) == expected
