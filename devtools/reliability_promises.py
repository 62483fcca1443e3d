"""What Resource Agent promises about bad input, faults, access and time, and the tests that hold each promise.

The source of docs/RELIABILITY.md (rendered by `python -m devtools.reliability_doc`). A test is cited by
its pytest node id without parameters (`path::name`), or a whole file by its path;
tests/reliability/test_reliability_doc.py fails when a cited test no longer exists. To add a promise,
append a `Promise` to its section's `promises`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Promise:
    text: str
    tests: tuple[str, ...]
    note: str = ""  # after the tests: what they cover, in a few words


@dataclass(frozen=True)
class Section:
    title: str
    promises: list[Promise] = field(default_factory=list)
    after: str = ""  # a paragraph after the table


FUZZ_PROC = "tests/reliability/test_fuzz_proc.py"
FUZZ_METRICS = "tests/reliability/test_fuzz_metrics.py"
SERVICE = "tests/llm/test_service.py"
LOOP = "e2e/test_operator_loop.py"
AUTH = "e2e/test_endpoint_auth.py"

BAD_INPUT = Section("Bad input", [
    Promise(
        "The /proc readers (`/proc/stat`, `meminfo`, `vmstat`, `diskstats`, `net/dev`, loadavg, uptime, cpuinfo MHz) raise "
        "nothing on any input except the documented `ProcFormatError`, which is raised only when `/proc/stat` has no "
        "usable aggregate `cpu` line, `meminfo` no usable `MemTotal` or `loadavg` no three loads. A bad line is skipped, named in the system collector's "
        "status reason (`<file> line <n>: <why>: '<text>'`), and the rest of the file is kept.",
        (f"{FUZZ_PROC}::test_proc_stat", f"{FUZZ_PROC}::test_meminfo", f"{FUZZ_PROC}::test_vmstat",
         f"{FUZZ_PROC}::test_diskstats", f"{FUZZ_PROC}::test_net_dev", f"{FUZZ_PROC}::test_proc_stat_bad_core_line_keeps_the_others",
         f"{FUZZ_PROC}::test_system_collector_reports_bad_lines_and_keeps_the_rest"),
        "arbitrary text, and real files in `tests/fixtures/proc` with lines broken",
    ),
    Promise(
        "A meminfo with bad lines gives memory and swap from the lines that could be read, with a note in the status "
        "reason (psutil, which the agent used before, raised on one bad line); only a meminfo without a usable "
        "MemTotal makes the system section unavailable.",
        (f"{FUZZ_PROC}::test_system_collector_reports_bad_lines_and_keeps_the_rest",),
    ),
    Promise(
        "PSI files: a malformed line, a NaN, an inf, a share outside 0–100 or a negative total is skipped and named; a "
        "garbage file costs that resource only, not the other PSI files.",
        (f"{FUZZ_PROC}::test_pressure_file", f"{FUZZ_PROC}::test_pressure_nan_and_negative_are_rejected",
         f"{FUZZ_PROC}::test_pressure_collector_keeps_good_files_when_one_is_garbage"),
    ),
    Promise(
        "LMCache and serving-engine (vLLM, SGLang) `/metrics` parsing raises only `ExpositionError`. When the body does "
        "not parse as a whole it is parsed line by line: a torn or garbled line costs that line (named in `problems`), "
        "not the scrape. Non-finite values are dropped (an LMCache series with one is dropped whole and named); a "
        "serving histogram with a bound that is not a number is skipped, the other figures kept. What is returned "
        "holds finite numbers only.",
        (FUZZ_METRICS,),
        "arbitrary text, and the real expositions in `tests/fixtures/lmcache` and `tests/fixtures/serving` with lines broken",
    ),
    Promise(
        "Invalid custom resources are refused by the API server with a message that names the field: wrong enums "
        "(severity, category, action type, target kind), missing required fields, a bad `spec.decision`, a summary over "
        "its length, a `snoozeUntil` that is not a time, a report whose name is not its node (CEL), a zero half-life; "
        "and changes to immutable fields (`spec.nodeName`, `spec.rule`, a checkpoint's `spec.target`).",
        ("e2e/test_invalid_resources.py",),
        "17 create cases, 4 update cases, and a check that the base objects are valid",
    ),
    Promise(
        "A malformed agent/operator config file or policy file fails with an error that names the file, the field as "
        "written and its line (`policy.yaml: line 10: rules.gpu-underutilized.thresholds.sm_mean: unknown threshold`); "
        "a YAML syntax error names its line.",
        ("tests/reliability/test_config_lines.py", "tests/analysis/test_policy.py::test_bad_policies_name_the_key"),
    ),
    Promise(
        "The recommended actions come from the rules, never from the LLM: a corpus of prompt injections in a pod name, "
        "process name, LMCache instance name and served model name gives the same rules, severities and actions as a "
        "benign name; hostile answers (instructions, an `action` field, out-of-range values, not JSON, a list, empty) "
        "from the LLM through the real groq and openai SDKs give a validated `Insight` or none, and the specs the "
        "operator would write are unchanged.",
        ("tests/reliability/test_llm_injection.py", f"{SERVICE}::test_garbage_completions_never_raise",
         f"{SERVICE}::test_prompt_injection_in_a_pod_name_is_redacted",
         f"{SERVICE}::test_prompt_injection_stays_quoted_data_without_redaction"),
    ),
], after=(
    "Fixes the fuzzing found (each has a regression test in the files above): `float(le)` raised `ValueError` out of "
    "the serving parser; serving kept `+Inf` gauges; one torn line cost a whole LMCache or serving scrape; LMCache "
    "rejected a whole body for one non-finite series; `str.isdigit()` accepted `\"²\"` in meminfo/vmstat and `int()` "
    "then raised; a garbled diskstats, cpuN or ctxt line failed the whole system collector; PSI accepted `nan`, `inf` "
    "and negative totals, and one bad PSI file failed all of them."
))

SECURITY = Section("Security", [
    Promise(
        "Each ServiceAccount of the chart can do exactly what the chart's rendered RBAC grants and nothing on a list of "
        "dangerous rights (secrets, exec/attach/port-forward, pod create/delete, evictions, node writes, tokens, RBAC "
        "escalate/bind, CRD changes, admission policy deletion, impersonation, the other component's objects); every "
        "verb the rules do not grant on a resource they name is denied. The matrix is generated from `helm template` "
        "(default values, and with LLM/hostPID on) and answered by the real API server through SubjectAccessReviews for "
        "`system:serviceaccount:NS:NAME` with its groups; a sample is checked with `kubectl auth can-i --as=...`.",
        ("e2e/test_rbac_matrix.py",),
    ),
    Promise("An agent's token writes only its own node's report.", ("e2e/test_admission.py",)),
    Promise(
        "The chart's pods are admitted by Pod Security Admission in enforce mode at the levels docs/helm.md claims: "
        "operator and test pod `restricted`, the agent only `privileged` (hostPath).",
        ("e2e/test_helm.py::test_pod_security_levels",),
    ),
    Promise(
        "With `--endpoint-auth=kubernetes` the agent's and the operator's HTTP endpoints (`/metrics`, `/report`) answer "
        "over TLS only a token whose ServiceAccount RBAC lets read them (TokenReview and SubjectAccessReview): 403 for "
        "another ServiceAccount, 401 without a token or with a bad one; the probes stay open.",
        (f"{AUTH}::test_rbac_decides_who_reads_metrics", f"{AUTH}::test_report_needs_the_grant_too",
         f"{AUTH}::test_probes_stay_open_and_tls_is_verified"),
    ),
    Promise(
        "No credential from LMCache's `/conf` (redis password, S3 keys) reaches reports, recommendations, Events or logs.",
        ("e2e/test_lmcache_apply.py::test_no_credential_from_conf_reaches_reports_recommendations_events_or_logs",),
    ),
    Promise(
        "No secret of a run with all of them (the LLM API key, LMCache's redis password and S3 key, the agent's, "
        "operator's and scrapers' ServiceAccount tokens) appears in the agent's or operator's log, the control plane's "
        "logs, any Event, the report, the recommendations, or the LLM requests except the key in their Authorization "
        "header. A failure names the secret, where and the line.",
        (f"{AUTH}::test_no_secret_reaches_logs_events_reports_or_recommendations",),
    ),
    Promise(
        "Redaction before the LLM.",
        (f"{SERVICE}::test_nothing_identifying_leaves_and_names_come_back",
         f"{SERVICE}::test_real_analysis_findings_and_summary_leave_redacted"),
    ),
])

FAULTS = Section("Faults", [
    Promise(
        "A killed operator restarts without duplicate recommendations, and a dismissed recommendation is not recreated.",
        (f"{LOOP}::test_killed_operator_restarts_without_duplicates", f"{LOOP}::test_dismissed_recommendation_is_not_recreated"),
    ),
    Promise("Two operator replicas do not fight: the standby writes nothing.", (f"{LOOP}::test_two_replicas_do_not_fight",)),
    Promise(
        "LLM 429 with Retry-After, server errors and timeouts cost the insight, never the recommendation.",
        (f"{SERVICE}::test_429_waits_for_retry_after_then_succeeds", f"{SERVICE}::test_429_beyond_retries_counts_rate_limited",
         f"{SERVICE}::test_server_error_is_retried_by_the_sdk", f"{SERVICE}::test_slow_provider_times_out",
         "e2e/test_llm_insight.py::test_failing_provider_leaves_recommendations_and_the_operator_alive"),
    ),
    Promise(
        "Over a bounded run (30 minutes by default) with 50 simulated nodes and a real agent whose collectors scrape "
        "LMCache and serving simulators, neither the agent nor the operator grows: RSS, open file descriptors, threads "
        "and the operator's asyncio tasks show no trend (the test is in the soak section below).",
        ("tests/reliability/test_soak_trend.py", "e2e/test_soak_bench.py::test_short_soak_samples_and_judges_every_series"),
        "the trend test on synthetic series, and a short real run",
    ),
    Promise(
        "kube-apiserver or etcd killed (SIGKILL, 3 s down) and restarted mid-run: the agents and the operator keep "
        "running (no restart), reports resume within one report heartbeat of the restart, the recommendations converge "
        "with no duplicate and no lost decision (a Dismissed one stays Dismissed), and neither process grows by more "
        "than 64 MiB.",
        ("e2e/test_faults_controlplane.py::test_kube_apiserver_killed_and_restarted",
         "e2e/test_faults_controlplane.py::test_etcd_killed_and_restarted_on_its_data"),
    ),
    Promise(
        "A leader change mid-stream: when the active replica is killed, the standby takes over (after kopf's peering "
        "lifetime), acts on a decision made while no replica was active, and creates no duplicate.",
        ("e2e/test_faults_controlplane.py::test_standby_takes_over_when_the_active_replica_is_killed",),
    ),
    Promise(
        "The operator killed in the middle of a burst of reconciles: the restarted operator finishes every "
        "recommendation with no duplicate, and keeps a decision made while it was down.",
        ("e2e/test_faults_operator.py::test_operator_killed_during_a_burst_of_reconciles",),
    ),
    Promise(
        "The operator killed during an approved LMCache apply: the change reaches each LMCache process exactly once; "
        "the restarted operator finds it in place and posts nothing, and when only some processes took it, it posts "
        "to the others only and names the ports it skipped.",
        ("e2e/test_faults_operator.py::test_operator_killed_during_an_approved_lmcache_apply_applies_it_once",
         "e2e/test_faults_operator.py::test_an_apply_that_reached_only_port_0_writes_the_other_ports_once",
         "tests/lmcache/test_apply.py::test_operator_finishes_a_partial_apply_and_names_the_skipped_port"),
    ),
    Promise(
        "An operator restart with 1,000 reports present reconciles them all without a write for unchanged findings "
        "(no recommendation changes its resourceVersion).",
        ("e2e/test_faults_operator.py::test_restart_with_a_thousand_reports_writes_nothing_for_unchanged_findings",),
    ),
    Promise(
        "An LMCache instance and a vLLM engine restarted with their counters at zero: no negative rate, no finding "
        "from the reset, the collectors are ok again once the instances answer (the outage's own unreachable finding "
        "resolves).",
        ("e2e/test_faults_edges.py::test_lmcache_and_engine_restarted_with_counters_at_zero",),
    ),
    Promise(
        "NVML raising GpuIsLost or Unknown on one GPU mid-run (through the NVML fake, under a real agent): the other "
        "GPUs keep reporting, the lost GPU is reported with a gpu-lost recommendation and is still listed, with its "
        "first-seen time, a full window later.",
        ("e2e/test_faults_edges.py::test_a_gpu_lost_mid_run_is_reported_and_kept_while_the_others_report",),
    ),
    Promise(
        "The LLM provider on the cluster answering 429 with Retry-After, timing out, or answering garbage: the "
        "recommendations are written without insight, retries honour Retry-After, nothing unvalidated reaches "
        "status, and the operator stays up.",
        ("e2e/test_faults_edges.py::test_llm_429_timeout_and_garbage_leave_recommendations_without_insight",),
    ),
], after=(
    "The fault tests' figures appear under *Fault-test figures* when the e2e suite runs with "
    "`RELIABILITY_RESULTS=<file>` and the page is rendered with `--faults <file>`."
))

SECTIONS = (BAD_INPUT, SECURITY, FAULTS)

FIGURES = (  # (figure, value, kind): settings and counts; the measured ones are in the generated sections
    ("hypothesis examples per fuzz test", "150 (`RELIABILITY_FUZZ_EXAMPLES` raises it), derandomized, no example database", "setting"),
    ("fuzz tests", "9 (5 /proc and PSI, 4 metrics)", "count"),
    ("soak: growth limit", "slope × fitted span > 10% of the mean and t > 3", "setting"),
    ("`tests/reliability/test_fuzz_proc.py` (13 tests)", "~4 s", "measured by hand (branch h12-reliability)"),
    ("`tests/reliability/test_fuzz_metrics.py` with `tests/lmcache` and `tests/serving` (86 tests)", "~31 s",
     "measured by hand (branch h12-reliability)"),
    ("`tests/reliability/test_llm_injection.py` (50 tests, both SDKs)", "~30–35 s", "measured by hand (branch h12-reliability)"),
    ("`e2e/test_invalid_resources.py` (22 tests, including the control plane's start)", "~27 s",
     "measured by hand (branch h12-reliability)"),
    ("`e2e/test_rbac_matrix.py` (2 value sets, 4 tests, including the control plane's start)",
     "~25 s; more than 100 SubjectAccessReviews per value set (asserted)", "measured by hand (branch h12-reliability)"),
)
