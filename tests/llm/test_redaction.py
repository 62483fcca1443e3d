"""Redaction: stable placeholders out, real values back, patterns for IPs and UUIDs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resource_agent.llm.redaction import Redactor
from tests.llm.conftest import GPU_UUID, NAMESPACE, NODE, NODE_IP, POD, POD_UID, memory_finding, thermal_finding


def test_findings_values_get_kind_placeholders_in_first_seen_order() -> None:
    redactor = Redactor.for_findings(NODE, [memory_finding(), thermal_finding()], None)

    assert redactor.placeholders == {
        "node-1": NODE,
        "pod-1": POD,  # kind from the rule's own masked value
        "ip-1": NODE_IP,  # kind from what the value looks like
        "namespace-1": NAMESPACE,
        "uuid-1": POD_UID,
        "uuid-2": GPU_UUID,
    }


def test_restore_does_not_touch_longer_names() -> None:
    redactor = Redactor()
    redactor.add("node", NODE)

    assert redactor.restore("node-1, node-10, gpu-node-1 and node-1-b; node-1.") == f"{NODE}, node-10, gpu-node-1 and node-1-b; {NODE}."


def test_same_findings_mask_the_same_way() -> None:
    text = memory_finding().summary
    first = Redactor.for_findings(NODE, [memory_finding()], None).mask(text)
    second = Redactor.for_findings(NODE, [memory_finding()], None).mask(text)

    assert first == second == "Pod namespace-1/pod-1 on node-1 (ip-1) keeps GPU uuid-2 memory at 97.5%."


def test_patterns_catch_unlisted_ips_and_uuids_but_not_times_or_versions() -> None:
    redactor = Redactor()
    text = "peer 192.168.0.12 and fe80::1ff:fe23:4567:890a saw MIG-0c1d2e3f-aaaa-bbbb-cccc-0123456789ab at 12:30:45, driver 550.54.15"

    masked = redactor.mask(text)

    assert masked == "peer ip-1 and ip-2 saw uuid-1 at 12:30:45, driver 550.54.15"
    assert redactor.restore(masked) == text


def test_longest_value_is_replaced_first() -> None:
    redactor = Redactor()
    redactor.add("pod", "vllm")
    redactor.add("pod", "vllm-decode-0")

    assert redactor.mask("vllm-decode-0 and vllm") == "pod-2 and pod-1"


def test_restore_leaves_unknown_placeholders_and_disabled_is_identity() -> None:
    redactor = Redactor()
    redactor.add("node", NODE)
    assert redactor.restore("node-1 and node-7") == f"{NODE} and node-7"

    off = Redactor.for_findings(NODE, [memory_finding()], None, enabled=False)
    assert off.mask(memory_finding().summary) == memory_finding().summary
    assert off.placeholders == {}


def test_short_values_are_not_masked_everywhere() -> None:
    redactor = Redactor()
    redactor.add("name", "0")

    assert redactor.mask("gpu 0 at 90%") == "gpu 0 at 90%"


names = st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="-."), min_size=3, max_size=30)


@given(st.lists(names, min_size=1, max_size=5, unique=True))
def test_round_trip_for_any_names(values: list[str]) -> None:
    redactor = Redactor()
    for value in values:
        redactor.add("pod", value)
    text = " | ".join(values)

    masked = redactor.mask(text)

    for value in values:
        assert f"| {value} |" not in f"| {masked} |"
    assert redactor.restore(masked) == text


def test_short_values_match_whole_words_long_ones_anywhere() -> None:
    redactor = Redactor()
    redactor.add("namespace", "llm")
    redactor.add("pod", "decode-worker-7")

    masked = redactor.mask("vllm in llm/decode-worker-7 and xdecode-worker-7x")

    assert masked == "vllm in namespace-1/pod-1 and xpod-1x"
