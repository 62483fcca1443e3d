from pathlib import Path

from devtools.docs import GENERATED
from resource_agent.analysis import scores

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_match_the_code():
    for relative, render in GENERATED.items():
        assert (ROOT / relative).read_text() == render(), f"{relative} is stale: run python -m devtools.docs"


def test_scores_doc_states_the_constants_in_use():
    text = (ROOT / "docs/scores.md").read_text()
    assert f"use(CPU utilisation mean; {scores.CPU_BAND[0]:g})" in text
    assert f"over(CPU utilisation mean; {scores.CPU_BAND[1]:g})" in text
    assert f"use(100 - available % mean; {scores.MEMORY_BAND[0]:g})" in text
    assert f"over(100 - available % mean; {scores.MEMORY_BAND[1]:g})" in text
    hardware = {severity.value: value for severity, value in scores.HARDWARE_SEVERITY_PENALTY.items()}
    assert f"{hardware['critical']:g} x critical - {hardware['warning']:g} x warning - {hardware['info']:g} x info (each finding)" in text
    other = {severity.value: value for severity, value in scores.OTHER_SEVERITY_PENALTY.items()}
    assert (
        f"min({scores.OTHER_PENALTY_MAX:g}, sum over rules of the rule's worst severity: "
        f"{other['critical']:g} critical, {other['warning']:g} warning, {other['info']:g} info)"
    ) in text
    assert f"{scores.FAULTY_GPU_PENALTY:g} x faulty or lost GPUs - {scores.FAILED_COLLECTOR_PENALTY:g} x failed collectors" in text
    assert f"min({scores.SWAP_PENALTY_MAX:g}, swap-in+out MiB/s)" in text
    assert f"memory used >= {scores.GPU_IDLE_MEMORY_PERCENT:g}% or SM >= {scores.GPU_IDLE_SM_PERCENT:g}%" in text
