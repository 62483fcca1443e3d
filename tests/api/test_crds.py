"""The committed CRDs are what the models generate, and they are structural."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resource_agent.api.crd import all_crds, render

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_committed_crd_matches_models(name: str) -> None:
    committed = (CRD_DIR / name).read_text()
    assert committed == render(all_crds()[name]), f"crds/{name} drifted: run `resource-agent crds --output-dir crds`"


def _walk(node: dict, path: str = ""):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_schema_is_structural(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"untyped node at {path}"
        assert not ("properties" in node and "additionalProperties" in node), path


def test_recommendation_columns_and_names() -> None:
    crd = yaml.safe_load(render(all_crds()["resource.optiinfra.io_resourcerecommendations.yaml"]))
    version = crd["spec"]["versions"][0]
    default_columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert default_columns == ["Node", "Severity", "Category", "Rule", "Phase", "Decision", "Age"]
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["categories"] == ["optiinfra"]
    assert version["subresources"] == {"status": {}}
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["decision"]["enum"] == ["Pending", "Approved", "Dismissed"]
    assert spec["properties"]["severity"]["enum"] == ["info", "warning", "critical"]


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_schema_property_has_a_description(name: str) -> None:
    """`kubectl explain` prints these; a field without one is a field people must guess at."""
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    properties = {path: node for path, node in _walk(schema) if path and not path.endswith(("[]", "{}"))}  # not items
    bare = [path for path, node in properties.items() if not node.get("description") and path != ".metadata"]  # ObjectMeta: the API server's
    assert len(properties) > 20  # the walk found the schema (the checkpoint CRD is the smallest)
    assert not bare, f"{len(bare)} properties without a description, e.g. {bare[:10]}"


def test_decision_is_explained() -> None:
    crd = all_crds()["resource.optiinfra.io_resourcerecommendations.yaml"]
    decision = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["decision"]
    assert "Approved" in decision["description"] and "\n" not in decision["description"]
