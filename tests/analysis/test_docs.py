from pathlib import Path

from devtools.docs import GENERATED
from resource_agent.analysis import scores

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_match_the_code():
    for relative, render in GENERATED.items():
        assert (ROOT / relative).read_text() == render(), f"{relative} is stale: run python -m devtools.docs"


def test_scores_doc_states_the_constants_in_use():
    text = (ROOT / "docs/scores.md").read_text()
    assert f"band(CPU utilisation mean; {scores.CPU_BAND[0]:g}, {scores.CPU_BAND[1]:g})" in text
    assert f"band(100 - available % mean; {scores.MEMORY_BAND[0]:g}, {scores.MEMORY_BAND[1]:g})" in text
    penalties = {severity.value: value for severity, value in scores.SEVERITY_PENALTY.items()}
    assert f"{penalties['critical']:g} x critical findings - {penalties['warning']:g} x warning findings - {penalties['info']:g} x info finding" in text
    assert f"{scores.FAULTY_GPU_PENALTY:g} x faulty GPUs - {scores.FAILED_COLLECTOR_PENALTY:g} x failed collectors" in text
    assert f"min({scores.SWAP_PENALTY_MAX:g}, swap-in+out MiB/s)" in text
