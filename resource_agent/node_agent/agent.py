"""The long-running node agent: a sample loop, the window, and report listeners.

Sampling runs on its own thread at a fixed cadence and never dies on a
collector error. Standing GPU faults outlive the window (the window's
`FaultTracker`); with a state file they also outlive an agent restart on the
same boot (written after every report, read at start). Every report interval (or earlier, when something
significant happens such as a new XID error) a second thread summarises the
window and hands the `NodeSummary` to each listener, so a slow listener
never delays sampling.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from resource_agent.api.samples import CollectorState, Sample
from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.exporter import SampleExporter, build_registry
from resource_agent.node_agent.faults import FaultTracker
from resource_agent.node_agent.sampler import Sampler
from resource_agent.node_agent.window import SampleWindow, SummaryError

log = logging.getLogger(__name__)

SummaryListener = Callable[[NodeSummary], None]
NO_RECOVERY_ACTION = "none"


@dataclass(frozen=True)
class AgentSettings:
    node_name: str
    interval_seconds: float = 5.0
    window_seconds: float = 300.0
    report_interval_seconds: float = 60.0
    min_early_report_gap_seconds: float = 5.0
    state_file: Path | None = None  # standing GPU faults, kept across agent restarts on the same boot

    @property
    def window_capacity(self) -> int:
        return max(1, round(self.window_seconds / self.interval_seconds))


def significant(sample: Sample, previous: Sample | None) -> str | None:
    """Why this sample deserves a report before the next interval, or None."""
    for device in sample.gpu.devices if sample.gpu else []:
        if device.xid_events:
            return f"XID {device.xid_events[-1].xid} on GPU {device.index}"
        if device.recovery_action not in (None, NO_RECOVERY_ACTION):
            before = _recovery_action(previous, device.uuid)
            if before != device.recovery_action:
                return f"GPU {device.index} recovery action {device.recovery_action}"
    for lost in sample.gpu.lost if sample.gpu else []:
        if lost.xid_events:
            return f"XID {lost.xid_events[-1].xid} on lost GPU {lost.index if lost.index is not None else lost.pci_bus_id}"
    failed_now = {status.name for status in sample.collectors if status.state is CollectorState.FAILED}
    failed_before = {status.name for status in previous.collectors if status.state is CollectorState.FAILED} if previous else set()
    if failed_now - failed_before:
        return f"collector failed: {', '.join(sorted(failed_now - failed_before))}"
    return None


def _recovery_action(sample: Sample | None, uuid: str) -> str | None:
    for device in sample.gpu.devices if sample and sample.gpu else []:
        if device.uuid == uuid:
            return device.recovery_action
    return None


class Agent:
    """Samples into a window, exposes the latest sample, and reports summaries to listeners."""

    def __init__(self, sampler: Sampler, settings: AgentSettings) -> None:
        self.sampler = sampler
        self.settings = settings
        self.window = SampleWindow(settings.window_capacity, load_faults(settings.state_file))
        self.exporter = SampleExporter()
        self.registry = build_registry(self.exporter)
        self._listeners: list[SummaryListener] = []
        self._stop = threading.Event()
        self._report_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_report = 0.0
        self.samples_taken = 0
        self.reports_sent = 0

    # --- public -----------------------------------------------------------------

    def add_listener(self, listener: SummaryListener) -> None:
        """Call `listener` with the window summary every report interval (on the reporting thread)."""
        self._listeners.append(listener)

    def request_report(self, reason: str) -> None:
        """Report as soon as possible instead of waiting for the interval."""
        log.info("early report requested: %s", reason)
        self._report_now.set()

    @property
    def ready(self) -> bool:
        return self.samples_taken > 0

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def summary(self) -> NodeSummary | None:
        try:
            return self.window.summary(self.settings.node_name)
        except SummaryError:
            return None

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._sample_loop, name="sampler", daemon=True),
            threading.Thread(target=self._report_loop, name="reporter", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._report_now.set()
        for thread in self._threads:
            thread.join(timeout)
        self.sampler.close()

    # --- loops ------------------------------------------------------------------

    def sample_once(self) -> Sample:
        previous = self.window.latest()
        sample = self.sampler.sample()
        self.window.append(sample)
        self.exporter.observe(sample)
        self.samples_taken += 1
        reason = significant(sample, previous)
        if reason is not None:
            self.request_report(reason)
        return sample

    def _sample_loop(self) -> None:
        interval = self.settings.interval_seconds
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # the loop must outlive any sampling bug
                log.exception("sampling failed")
            next_at += interval
            now = time.monotonic()
            if next_at < now:  # fell behind (suspend, slow collector): skip missed ticks
                next_at = now + interval
            self._stop.wait(next_at - now)

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            self._report_now.wait(self.settings.report_interval_seconds)
            if self._stop.is_set():
                break
            gap = time.monotonic() - self._last_report
            if self._report_now.is_set() and gap < self.settings.min_early_report_gap_seconds:
                self._stop.wait(self.settings.min_early_report_gap_seconds - gap)
            self._report_now.clear()
            self.report()

    def report(self) -> NodeSummary | None:
        """Summarise the window and call every listener; a failing listener does not stop the others."""
        self._last_report = time.monotonic()
        summary = self.summary()
        if summary is None:
            return None
        if self.settings.state_file is not None:
            save_faults(self.settings.state_file, self.window.faults())
        for listener in list(self._listeners):
            try:
                listener(summary)
            except Exception:
                log.exception("summary listener %r failed", listener)
        self.reports_sent += 1
        return summary


def load_faults(path: Path | None) -> FaultTracker | None:
    """The fault tracker saved in `path`; None (start afresh) when there is none or it cannot be read."""
    if path is None or not path.exists():
        return None
    try:
        return FaultTracker.from_state(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("ignoring fault state file %s: %s", path, exc)
        return None


def save_faults(path: Path, faults: FaultTracker) -> None:
    """Write the tracker's state atomically (a crash leaves the old file or the new one)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(faults.state(), separators=(",", ":")))
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("cannot write fault state file %s: %s", path, exc)
