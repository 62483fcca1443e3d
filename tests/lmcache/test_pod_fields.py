"""The pod list reduced as it is parsed (`pod_fields`): the discoveries answer the same as on the full pods."""

from __future__ import annotations

import json
from pathlib import Path

from resource_agent.lmcache import discovery as lmcache_discovery
from resource_agent.lmcache.discovery import ANNOTATION_PREFIX, _reduce_pods, instances_from_pods, pod_fields
from resource_agent.serving import discovery as serving_discovery
from resource_agent.serving.discovery import endpoints_from_gpu_pods, endpoints_from_pods

POD_LIST = Path(__file__).resolve().parents[1] / "fixtures" / "pods" / "serving-node.json"


def test_reduced_pods_give_the_discoveries_the_same_answers() -> None:
    text = POD_LIST.read_text()
    full = json.loads(text)["items"]
    reduced = json.loads(text, object_hook=_reduce_pods)["items"]
    assert reduced == [pod_fields(pod) for pod in full]
    assert instances_from_pods(reduced) == instances_from_pods(full) and instances_from_pods(full)[0]
    assert endpoints_from_pods(reduced) == endpoints_from_pods(full) and endpoints_from_pods(full)[0]
    holding = [pod["metadata"]["uid"] for pod in full]  # every pod holds a GPU: the unannotated one is guessed
    guessed = endpoints_from_gpu_pods(full, holding)
    assert guessed and endpoints_from_gpu_pods(reduced, holding) == guessed
    assert len(json.dumps(reduced)) * 20 < len(json.dumps(full))  # managedFields, env, volumes, last-applied: gone


def test_every_annotation_the_discoveries_read_is_kept() -> None:
    annotations = [value for module in (lmcache_discovery, serving_discovery) for name, value in vars(module).items() if name.endswith("_ANNOTATION")]
    assert len(annotations) == 5 and all(value.startswith(ANNOTATION_PREFIX) for value in annotations)


def test_odd_pods_are_reduced_without_raising() -> None:
    assert pod_fields({"metadata": None, "spec": {"containers": ["x", {"name": "a", "env": []}]}, "status": 3}) == {
        "metadata": {"annotations": {}}, "spec": {"containers": [{"name": "a"}]}, "status": {}}
