"""Score the analysis engine on the labelled recordings: precision and recall of warning/critical findings.

Each case in tests/evaluation/cases is `NAME.jsonl` (a recording, docs/recording-format.md)
and `NAME.label.yaml` (what a person expects, from the cited sources; docs/evaluation.md).
The scorer replays every recording through the same path as `resource-agent analyze
--input` (streamed window summary, then the analysis engine with the default policy) and
matches the warning and critical findings to the expected problems:

- a finding matches a problem when its target is one of the problem's targets, its rule
  is one of the problem's accepted rules and its severity is at least the problem's;
- a problem matched by one or more findings is one true positive (several findings for
  one fault cost nothing here; deduplication is judged elsewhere);
- a warning/critical finding that matches no problem is a false positive;
- a problem no finding matches is a false negative. Info findings are ignored.

    .venv/bin/python -m tests.evaluation.scorer            # table per case, then the totals
    .venv/bin/python -m tests.evaluation.scorer --json     # the same as JSON
    .venv/bin/python -m tests.evaluation.scorer -k xid     # only cases whose name contains "xid"
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.api.findings import Finding, Severity, TargetKind
from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.bus_ids import normalise_bus_id
from resource_agent.node_agent.recording import reduce_recording

CASES_DIR = Path(__file__).parent / "cases"
KINDS = ("healthy", "near-miss", "fault")
TARGET = re.compile(r"^(node|gpu (\d+)|gpu-bus (\S+)|disk (\S+)|lmcache (\S+)|serving (\S+))$")
SEVERITIES = {"warning": Severity.WARNING, "critical": Severity.CRITICAL}


# --- labels -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    targets: tuple[str, ...]
    severity: Severity
    rules: tuple[str, ...]
    note: str = ""

    def describe(self) -> str:
        return f"{' | '.join(self.targets)} >= {self.severity.value} [{', '.join(self.rules)}]"


@dataclass(frozen=True)
class Label:
    case: str
    kind: str
    description: str
    sources: tuple[dict[str, str], ...]
    expected: tuple[Problem, ...]


class LabelError(ValueError):
    pass


def parse_label(path: Path) -> Label:
    """Read and validate one NAME.label.yaml; raises LabelError naming the file and the field."""
    where = path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LabelError(f"{where}: not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise LabelError(f"{where}: expected a mapping")
    unknown = set(doc) - {"case", "kind", "description", "sources", "expected"}
    if unknown:
        raise LabelError(f"{where}: unknown keys {sorted(unknown)}")
    name = path.name.removesuffix(".label.yaml")
    if doc.get("case") != name:
        raise LabelError(f"{where}: case must be {name!r}, is {doc.get('case')!r}")
    if doc.get("kind") not in KINDS:
        raise LabelError(f"{where}: kind must be one of {KINDS}")
    description = doc.get("description")
    if not isinstance(description, str) or len(description.split()) < 15:
        raise LabelError(f"{where}: description must be a paragraph (15 words or more)")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not sources:
        raise LabelError(f"{where}: sources must be a non-empty list")
    for number, source in enumerate(sources):
        if not isinstance(source, dict) or set(source) != {"url", "used"}:
            raise LabelError(f"{where}: sources[{number}] must have exactly url and used")
        if not str(source["url"]).startswith("https://") or not str(source["used"]).strip():
            raise LabelError(f"{where}: sources[{number}] needs an https url and what was taken from it")
    expected = doc.get("expected")
    if not isinstance(expected, list):
        raise LabelError(f"{where}: expected must be a list (empty for healthy and near-miss cases)")
    if (doc["kind"] == "fault") != bool(expected):
        raise LabelError(f"{where}: a fault expects at least one problem; healthy and near-miss cases expect none")
    problems = []
    for number, item in enumerate(expected):
        field_name = f"{where}: expected[{number}]"
        if not isinstance(item, dict) or not {"target", "severity", "rules"} <= set(item) <= {"target", "severity", "rules", "note"}:
            raise LabelError(f"{field_name} needs target, severity, rules (and an optional note)")
        targets = item["target"] if isinstance(item["target"], list) else [item["target"]]
        for target in targets:
            if not isinstance(target, str) or not TARGET.match(target):
                raise LabelError(f"{field_name}.target {target!r}: use node, gpu N, gpu-bus BUSID, disk DEV, lmcache INSTANCE or serving INSTANCE")
        if item["severity"] not in SEVERITIES:
            raise LabelError(f"{field_name}.severity must be warning or critical")
        rules = item["rules"]
        if not isinstance(rules, list) or not rules or not all(isinstance(rule, str) and rule for rule in rules):
            raise LabelError(f"{field_name}.rules must be a non-empty list of rule ids")
        problems.append(Problem(tuple(targets), SEVERITIES[item["severity"]], tuple(rules), str(item.get("note", ""))))
    return Label(name, doc["kind"], description, tuple(sources), tuple(problems))


def case_names(directory: Path = CASES_DIR) -> list[str]:
    return sorted(path.name.removesuffix(".label.yaml") for path in directory.glob("*.label.yaml"))


# --- matching ---------------------------------------------------------------------------------


def target_matches(target: str, finding: Finding) -> bool:
    match = TARGET.match(target)
    if match is None:
        return False
    t = finding.target
    if target == "node":
        return t.kind is TargetKind.NODE
    if match.group(2) is not None:
        return t.kind is TargetKind.GPU and t.gpu_index == int(match.group(2))
    if match.group(3) is not None:
        # NVML writes "00000000:B3:00.0", sysfs "0000:b3:00.0": the same function, compared normalised
        bus = normalise_bus_id(match.group(3))
        return t.kind is TargetKind.GPU and bus in {normalise_bus_id(t.name), normalise_bus_id(t.gpu_uuid or "")}
    if match.group(4) is not None:
        return t.kind is TargetKind.DISK and t.name == match.group(4)
    if match.group(6) is not None:
        names = {f"{t.namespace}/{t.name}", t.name, (t.serving_instance or "").split("|")[0]}
        return t.kind is TargetKind.SERVING_INSTANCE and match.group(6) in names
    instance = match.group(5)
    return t.kind is TargetKind.LMCACHE_INSTANCE and instance in {t.lmcache_instance, f"{t.namespace}/{t.name}", t.name}


def finding_matches(problem: Problem, finding: Finding) -> bool:
    return (
        finding.rule in problem.rules
        and finding.severity.rank >= problem.severity.rank
        and any(target_matches(target, finding) for target in problem.targets)
    )


def finding_id(finding: Finding) -> str:
    t = finding.target
    where = {TargetKind.NODE: "node", TargetKind.GPU: f"gpu {t.gpu_index}" if t.gpu_index is not None else t.name}.get(t.kind, f"{t.kind.value.lower()} {t.name}")
    return f"{finding.rule}@{where} ({finding.severity.value})"


@dataclass
class CaseResult:
    case: str
    kind: str
    true_positives: list[dict[str, Any]] = field(default_factory=list)  # {problem, findings}
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.false_positives and not self.false_negatives


def score_case(label: Label, findings: Iterable[Finding]) -> CaseResult:
    result = CaseResult(label.case, label.kind)
    matched: dict[int, list[str]] = {}
    for finding in findings:
        if finding.severity is Severity.INFO:
            result.info.append(finding_id(finding))
            continue
        hits = [number for number, problem in enumerate(label.expected) if finding_matches(problem, finding)]
        if not hits:
            result.false_positives.append(finding_id(finding))
        for number in hits:
            matched.setdefault(number, []).append(finding_id(finding))
    for number, problem in enumerate(label.expected):
        if number in matched:
            result.true_positives.append({"problem": problem.describe(), "findings": matched[number]})
        else:
            result.false_negatives.append(problem.describe())
    return result


def summary_of(name: str, directory: Path = CASES_DIR) -> NodeSummary:
    """The case's window summary, as `resource-agent analyze --input` makes it (stream-reduced recording)."""
    reducer = reduce_recording(directory / f"{name}.jsonl")
    return reducer.summary(reducer.hostname or name)


def run_case(name: str, directory: Path = CASES_DIR, policy: Policy | None = None, as_stored: bool = False) -> list[Finding]:
    """The `resource-agent analyze --input` path: stream-reduce the recording, summarise, analyse.
    `as_stored`: the operator's path, the summary as the agent stores it in its ResourceReport (`stored`)."""
    summary = summary_of(name, directory)
    return analyze(stored(summary) if as_stored else summary, policy or Policy()).findings


def stored(summary: NodeSummary) -> NodeSummary:
    """The summary as the operator reads it: the agent's stored report body (`kube.reporter.report_status`), validated."""
    from datetime import UTC, datetime

    from resource_agent.api.resources import ResourceReportStatus
    from resource_agent.kube.reporter import report_status

    return ResourceReportStatus.model_validate(report_status(summary, datetime.now(UTC))["status"])


@dataclass
class Totals:
    cases: int
    healthy_or_near_miss: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0


def evaluate(names: Sequence[str] | None = None, directory: Path = CASES_DIR, as_stored: bool = False) -> tuple[list[CaseResult], Totals]:
    results = []
    for name in names if names is not None else case_names(directory):
        label = parse_label(directory / f"{name}.label.yaml")
        results.append(score_case(label, run_case(name, directory, as_stored=as_stored)))
    totals = Totals(
        cases=len(results),
        healthy_or_near_miss=sum(1 for r in results if r.kind != "fault"),
        true_positives=sum(len(r.true_positives) for r in results),
        false_positives=sum(len(r.false_positives) for r in results),
        false_negatives=sum(len(r.false_negatives) for r in results),
    )
    return results, totals


# --- output -----------------------------------------------------------------------------------


def print_table(results: Sequence[CaseResult], totals: Totals) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Analysis engine on labelled recordings (warning/critical findings)", show_lines=True)
    table.add_column("case", overflow="fold")
    table.add_column("kind")
    table.add_column("TP", overflow="fold")
    table.add_column("FP", overflow="fold", style="red")
    table.add_column("FN", overflow="fold", style="yellow")
    for r in results:
        tp = "\n".join(f"{len(item['findings'])}x {', '.join(item['findings'])}" for item in r.true_positives)
        name = f"[green]{r.case}[/]" if r.passed else r.case
        table.add_row(name, r.kind, tp or "-", "\n".join(r.false_positives) or "-", "\n".join(r.false_negatives) or "-")
    console = Console(width=200)
    console.print(table)
    console.print(
        f"cases {totals.cases} ({totals.healthy_or_near_miss} healthy/near-miss); "
        f"TP {totals.true_positives}  FP {totals.false_positives}  FN {totals.false_negatives}; "
        f"[bold]precision {totals.precision:.3f}  recall {totals.recall:.3f}[/]"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score the analysis engine on tests/evaluation/cases.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("-k", dest="pattern", help="only cases whose name contains this")
    parser.add_argument("--as-stored", action="store_true",
                        help="analyse each summary as the agent stores it in its ResourceReport (the operator's input)")
    args = parser.parse_args(argv)
    names = [name for name in case_names() if not args.pattern or args.pattern in name]
    results, totals = evaluate(names, as_stored=args.as_stored)
    if args.json:
        print(json.dumps({"cases": [asdict(r) for r in results], "totals": {**asdict(totals), "precision": totals.precision, "recall": totals.recall}}, indent=2))
    else:
        print_table(results, totals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
