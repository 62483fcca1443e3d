"""The report body the agent stores: smaller, and what the analysis reads survives (no cluster)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from resource_agent.api.resources import ResourceReportStatus
from resource_agent.kube.reporter import compact_status, report_status
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate


def test_stored_body_is_smaller_rounded_and_validates_to_the_same_shape() -> None:
    summary = summarize(list(generate("cache-thrash", seed=0, samples=12, gpus=8)), "n1")
    full = summary.to_wire()
    stored = compact_status(summary)
    assert len(json.dumps(stored)) < 0.4 * len(json.dumps(full))
    gpu = stored["gpu"]["devices"][0]
    assert "xidCounts" not in gpu and "memoryClockMhz" not in gpu  # empty maps and unread statistics left out
    assert set(gpu["smUtilizationPercent"]) == {"mean", "p95", "max", "last"}  # the members the analysis reads
    assert all(len(f"{abs(v):.15g}".replace(".", "").strip("0")) <= 3 for v in gpu["smUtilizationPercent"].values())
    shared = stored["gpu"]["shared"]  # what every GPU has the same value of, once
    assert shared["ecc"]["uncorrectedVolatile"] == 0 and "ecc" not in gpu  # zero fault counters kept
    assert shared["memoryTotalBytes"] == full["gpu"]["devices"][0]["memoryTotalBytes"]  # whole numbers stay exact
    back = ResourceReportStatus.model_validate(report_status(summary, datetime.now(UTC))["status"])
    assert len(back.gpu.devices) == 8 and back.gpu.shared is None
    device, original = back.gpu.devices[0], summary.gpu.devices[0]
    assert (device.name, device.memory_total_bytes, device.ecc, device.pcie.link_width) == (
        original.name, original.memory_total_bytes, original.ecc.model_copy(update={"corrected_volatile": None,
        "corrected_aggregate": None, "uncorrected_aggregate": None, "remapped_rows_correctable": None,
        "remapped_rows_uncorrectable": None, "retired_pages_single_bit": None, "retired_pages_double_bit": None}),
        original.pcie.link_width)
    assert device.xid_counts == original.xid_counts and device.memory_clock_mhz is None
    assert device.sm_utilization_percent is not None and math.isnan(device.sm_utilization_percent.min)  # absent member
    assert "min" not in device.sm_utilization_percent.to_wire()  # and never dumped as NaN
    assert back.lmcache.instances[0].max_local_cpu_size_bytes == summary.lmcache.instances[0].max_local_cpu_size_bytes


def test_times_sizes_and_counters_stay_exact() -> None:
    """Only window statistics are rounded: window times and process start times key the operator's
    per-GPU bookkeeping (a rounded epoch lost the workload usage history)."""
    summary = summarize(list(generate("healthy-busy", seed=0, samples=12, gpus=2, start=1_767_225_612.345)), "n1")
    stored = compact_status(summary)
    full = summary.to_wire()
    assert stored["window"] == full["window"]
    assert stored["gpu"]["devices"][0]["processes"] == full["gpu"]["devices"][0]["processes"]
    assert stored["memory"]["totalBytes"] == full["memory"]["totalBytes"]
    # changes every window and nothing reads it from a report (in /metrics): left out, as is the boot id
    assert "uptimeSeconds" in full and "uptimeSeconds" not in stored and "bootId" not in stored["inventory"]
