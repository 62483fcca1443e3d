from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import gpu_health as rules
from resource_agent.api.findings import ActionType, Severity, TargetKind
from resource_agent.api.summary import EccSummary, PcieSummary
from tests.analysis.analysis_builders import fired, gpu, node, st

POLICY = Policy()


def test_uncorrectable_ecc_drains_the_node():
    failing = gpu(1, ecc=EccSummary(uncorrected_aggregate=3, uncorrected_increase=2))
    old_errors = gpu(0, ecc=EccSummary(uncorrected_aggregate=5, uncorrected_increase=0))
    findings = rules.ecc_uncorrectable(node(gpus=[old_errors, failing]), POLICY)
    assert fired(findings) == [("gpu-ecc-uncorrectable", "gpu1")]
    assert findings[0].severity is Severity.CRITICAL
    assert findings[0].action.type is ActionType.DRAIN_NODE
    assert findings[0].evidence[0].observed == 2


def test_row_remap_failure_and_pending_are_exclusive():
    failed = gpu(0, ecc=EccSummary(remapped_rows_failure=True, remapped_rows_pending=True))
    pending = gpu(1, ecc=EccSummary(remapped_rows_pending=True))
    retire = gpu(2, ecc=EccSummary(retired_pages_pending=True))
    summary = node(gpus=[failed, pending, retire, gpu(3)])
    assert fired(rules.row_remap_failure(summary, POLICY)) == [("gpu-row-remap-failure", "gpu0")]
    pending_findings = rules.row_remap_pending(summary, POLICY)
    assert fired(pending_findings) == [("gpu-row-remap-pending", "gpu1"), ("gpu-row-remap-pending", "gpu2")]
    assert {f.action.type for f in pending_findings} == {ActionType.RUN_ECC_WORKFLOW}


def test_xids_are_classified_into_nvidia_resolution_buckets():
    only_process = gpu(0, xid_counts={"13": 2, "31": 1})
    summary = node(
        gpus=[
            only_process,
            gpu(1, xid_counts={"79": 1}),
            gpu(2, xid_counts={"48": 3}),
            gpu(3, xid_counts={"74": 1, "119": 1}),
            gpu(4, xid_counts={"999": 2}),
            gpu(5, xid_counts={"13": 0}),
        ]
    )
    results = {
        rule_id: rules.__dict__[name](summary, POLICY)
        for rule_id, name in [
            ("gpu-xid-application", "xid_application"),
            ("gpu-xid-off-bus", "xid_off_bus"),
            ("gpu-xid-ecc", "xid_ecc"),
            ("gpu-xid-nvlink", "xid_nvlink"),
            ("gpu-xid-reset", "xid_reset"),
            ("gpu-xid-unclassified", "xid_unclassified"),
        ]
    }
    assert {rule_id: [f.target.name for f in found] for rule_id, found in results.items()} == {
        "gpu-xid-application": ["gpu0"],
        "gpu-xid-off-bus": ["gpu1"],
        "gpu-xid-ecc": ["gpu2"],
        "gpu-xid-nvlink": ["gpu3"],
        "gpu-xid-reset": ["gpu3"],
        "gpu-xid-unclassified": ["gpu4"],
    }
    app = results["gpu-xid-application"][0]
    assert app.action.type is ActionType.RESTART_WORKLOAD
    assert app.action.parameters == {"gpuIndex": 0, "pid": 4000, "podUid": "pod-uid-0"}
    assert [e.metric for e in app.evidence] == ["gpu.xid.13", "gpu.xid.31"]
    assert results["gpu-xid-off-bus"][0].action.type is ActionType.DRAIN_AND_REBOOT_NODE
    assert results["gpu-xid-ecc"][0].action.type is ActionType.RUN_ECC_WORKFLOW
    assert results["gpu-xid-nvlink"][0].action.type is ActionType.CHECK_NVLINK
    assert results["gpu-xid-reset"][0].action.type is ActionType.RESET_GPU
    assert "XID 999" in results["gpu-xid-unclassified"][0].action.parameters["hint"]


def test_xids_from_an_unnamed_gpu_are_reported_on_the_node_by_their_class():
    summary = node(gpus=[gpu(0)])
    summary.gpu.unattributed_xid_counts = {"79": 1, "48": 2, "13": 1, "999": 1, "45": 3}
    by_rule = {
        rule_id: rules.__dict__[name](summary, POLICY)
        for rule_id, name in [("gpu-xid-off-bus", "xid_off_bus"), ("gpu-xid-ecc", "xid_ecc"),
                              ("gpu-xid-application", "xid_application"), ("gpu-xid-unclassified", "xid_unclassified")]
    }
    assert {rule_id: [(f.target.kind, f.action.type) for f in found] for rule_id, found in by_rule.items()} == {
        "gpu-xid-off-bus": [(TargetKind.NODE, ActionType.DRAIN_AND_REBOOT_NODE)],
        "gpu-xid-ecc": [(TargetKind.NODE, ActionType.INVESTIGATE)],  # its workflow needs the GPU: find it first
        "gpu-xid-application": [(TargetKind.NODE, ActionType.INVESTIGATE)],
        "gpu-xid-unclassified": [(TargetKind.NODE, ActionType.INVESTIGATE)],  # 45 follows others: not unclassified
    }
    ecc = by_rule["gpu-xid-ecc"][0]
    assert ecc.severity is Severity.CRITICAL and [e.metric for e in ecc.evidence] == ["gpu.unattributedXid.48"]
    assert "WORKFLOW_XID_48" in ecc.action.parameters["hint"]
    assert "XID 999 x1" in by_rule["gpu-xid-unclassified"][0].summary
    summary.gpu.unattributed_xid_counts = None
    assert rules.xid_off_bus(summary, POLICY) == []


def test_xid_buckets_do_not_overlap():
    seen: set[int] = set()
    for xid_class in rules.XID_CLASSES:
        assert not (seen & xid_class.codes)
        seen |= xid_class.codes


def test_recovery_action_follows_nvml():
    summary = node(
        gpus=[
            gpu(0, recovery_action="NVML_GPU_RECOVERY_ACTION_GPU_RESET"),
            gpu(1, recovery_action="node_reboot"),
            gpu(2, recovery_action="DrainP2P"),
            gpu(3, recovery_action="none"),
            gpu(4, recovery_action="drain_and_reset"),
        ]
    )
    actions = {f.target.name: f.action.type for f in rules.recovery_action(summary, POLICY)}
    assert actions == {
        "gpu0": ActionType.RESET_GPU,
        "gpu1": ActionType.DRAIN_AND_REBOOT_NODE,
        "gpu2": ActionType.INVESTIGATE,
        "gpu4": ActionType.DRAIN_NODE,
    }


def test_pcie_degraded_only_under_load():
    narrow = gpu(0, pcie=PcieSummary(link_generation=5, link_generation_max=5, link_width=8, link_width_max=16))
    idle_downshift = gpu(1, sm_utilization_percent=st(0.5), pcie=PcieSummary(link_generation=1, link_generation_max=5, link_width=16, link_width_max=16))
    unknown = gpu(2, pcie=PcieSummary())
    findings = rules.pcie_degraded(node(gpus=[narrow, idle_downshift, unknown]), POLICY)
    assert fired(findings) == [("gpu-pcie-degraded", "gpu0")]
    assert findings[0].action.parameters == {"gpuIndex": 0, "expectedGeneration": 5, "expectedWidth": 16}
