"""Control-plane faults under the running loop (e2e/loop.py: two agents with `--report`, one operator).

kube-apiserver killed with SIGKILL and started again; etcd killed and started
again on the same data dir; the active operator replica killed while a standby
waits (kopf peering). After each: no process died or restarted, reports resume,
recommendations converge with no duplicate, no decision lost, bounded memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from devtools.demo.stack import wait_until
from e2e.faults import (
    RSS_GROWTH_BOUND_BYTES,
    assert_alive,
    assert_converged,
    decisions,
    pids_of,
    reported_at,
    rss_bytes,
    seconds_until,
    utc_now,
)
from e2e.loop import (
    REPORT_HEARTBEAT_SECONDS,
    REPORT_INTERVAL_SECONDS,
    SCENARIOS,
    Loop,
    expected_rules,
    metric_total,
    metrics_reachable,
    rules_of,
    running_loop,
)
from e2e.providers import ClusterHandle
from e2e.reliability_results import record

DOWN_SECONDS = 3.0  # how long the component stays dead: agents miss at least one report
# an unchanged node writes once per heartbeat (a write that failed meanwhile is retried with backoff): one
# heartbeat, plus the slack of a 2-core CI runner
RESUME_BOUND_SECONDS = REPORT_HEARTBEAT_SECONDS + 3.0
RECONCILES = "resource_agent_operator_reconciles_total"


@pytest.fixture(scope="module")
def loop(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    if cluster.local is None:
        pytest.skip("killing kube-apiserver and etcd needs the local control plane (--cluster=local)")
    with running_loop(cluster, tmp_path_factory.mktemp("faults-cp"), prefix="fcp") as state:
        for key, scenario in SCENARIOS.items():
            expected = expected_rules(scenario, state.nodes[key])
            try:
                wait_until(lambda key=key, expected=expected: rules_of(state.recommendations(key)) == expected, 90,
                           what=f"{scenario} recommendations")
            except TimeoutError:
                pytest.fail(f"no recommendations before the faults\n{state.diagnostics()}")
        first = sorted(state.recommendations("a"), key=lambda r: r["metadata"]["name"])[0]["metadata"]["name"]
        state.cluster.kubectl("patch", "resourcerecommendation", first, "--type=merge", "-p",
                              json.dumps({"spec": {"decision": "Dismissed"}}))  # a human decision to keep
        wait_until(lambda: any(r.get("status", {}).get("phase") == "Dismissed" for r in state.recommendations("a")), 30,
                   what="phase Dismissed")
        yield state


def _reports_after(loop: Loop, moment: object) -> bool:
    reports = {r["metadata"]["name"]: r for r in loop.objects("resourcereports")}
    stamps = [reported_at(reports.get(node)) for node in loop.nodes.values()]
    return all(stamp is not None and stamp > moment for stamp in stamps)  # type: ignore[operator]


def _control_plane_fault(loop: Loop, component: str, test_name: str) -> None:
    local = loop.cluster.local
    assert local is not None
    processes = [*loop.agents.values(), loop.operators[-1]]
    operator = loop.operators[-1]
    pids, rss_before = pids_of(processes), {p.name: rss_bytes(p) for p in processes}
    before = decisions(loop.mine())

    ready_seconds = local.restart(component, down_seconds=DOWN_SECONDS)
    back, back_clock = utc_now(), time.monotonic()
    reconciles_before = metric_total(operator, RECONCILES, outcome="ok")
    try:
        resumed = seconds_until(lambda: _reports_after(loop, back), 30, what="reports after the restart",
                                since=back_clock)
        reconciled = seconds_until(lambda: metric_total(operator, RECONCILES, outcome="ok") > reconciles_before, 30,
                                   what="the operator to reconcile again", since=back_clock)
    except TimeoutError:
        pytest.fail(f"no recovery after {component} restarted\n{loop.diagnostics()}")
    time.sleep(2 * REPORT_INTERVAL_SECONDS)  # two more reports to converge on

    assert_alive(processes, pids)
    assert_converged(before, loop.mine())
    for key, scenario in SCENARIOS.items():
        assert rules_of(loop.recommendations(key), ("Open", "Dismissed")) == expected_rules(scenario, loop.nodes[key])
    rss_after = {p.name: rss_bytes(p) for p in processes}
    record(test_name, down_seconds=DOWN_SECONDS, restart_to_ready_seconds=round(ready_seconds, 2),
           reports_resumed_seconds=round(resumed, 2), operator_reconciled_seconds=round(reconciled, 2),
           resume_bound_seconds=RESUME_BOUND_SECONDS,
           operator_rss_before_bytes=rss_before[operator.name], operator_rss_after_bytes=rss_after[operator.name],
           agent_rss_before_bytes=rss_before[loop.agents["a"].name], agent_rss_after_bytes=rss_after[loop.agents["a"].name],
           rss_growth_bound_bytes=RSS_GROWTH_BOUND_BYTES, recommendations=len(before))
    assert resumed <= RESUME_BOUND_SECONDS, f"reports resumed {resumed:.1f}s after {component} was back"
    for name, rss in rss_after.items():
        assert rss - rss_before[name] <= RSS_GROWTH_BOUND_BYTES, f"{name} grew {(rss - rss_before[name]) / 2**20:.0f} MiB"


def test_kube_apiserver_killed_and_restarted(loop: Loop) -> None:
    _control_plane_fault(loop, "kube-apiserver", "kube_apiserver_killed")


def test_etcd_killed_and_restarted_on_its_data(loop: Loop) -> None:
    _control_plane_fault(loop, "etcd", "etcd_killed")


def test_standby_takes_over_when_the_active_replica_is_killed(loop: Loop) -> None:
    active = loop.operators[-1]
    standby = loop.start_operator(name="operator-standby", priority=10)
    wait_until(lambda: metrics_reachable(standby), 30, what="the standby's metrics endpoint")
    time.sleep(5)  # the standby reads the peering object and pauses behind its peer's higher priority
    assert metric_total(standby, RECONCILES, outcome="ok") == 0, "the standby reconciled while the active replica ran"
    before = decisions(loop.mine())
    active.kill()
    # a decision made while no replica is active: the standby must act on it once it takes over
    target = sorted(loop.recommendations("b"), key=lambda r: r["metadata"]["name"])[0]["metadata"]["name"]
    loop.cluster.kubectl("patch", "resourcerecommendation", target, "--type=merge", "-p",
                         json.dumps({"spec": {"decision": "Dismissed"}}))
    before[target] = (before[target][0], "Dismissed")
    try:
        # kopf keeps a SIGKILLed peer's record for its lifetime (60 s) before the standby resumes
        takeover = seconds_until(lambda: metric_total(standby, RECONCILES, outcome="ok") > 0, 90, what="the standby to take over")
        wait_until(lambda: next(r for r in loop.recommendations("b") if r["metadata"]["name"] == target)
                   .get("status", {}).get("phase") == "Dismissed", 30, what="the standby to honour the decision")
    except TimeoutError:
        pytest.fail(f"the standby did not take over\n{loop.diagnostics()}")
    time.sleep(2 * REPORT_INTERVAL_SECONDS)
    assert standby.alive, standby.tail()
    assert_converged(before, loop.mine())
    record("operator_leader_change", takeover_seconds=round(takeover, 2), peering_lifetime_seconds=60,
           recommendations=len(before))
