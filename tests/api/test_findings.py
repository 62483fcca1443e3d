from __future__ import annotations

import pytest
from pydantic import ValidationError

from resource_agent.api.findings import ACTION_CATALOG, Action, ActionType, recommendation_name


def test_action_requires_catalog_parameters() -> None:
    with pytest.raises(ValidationError, match="needs parameters"):
        Action(type=ActionType.RESET_GPU)
    with pytest.raises(ValidationError, match="takes no parameter"):
        Action(type=ActionType.RESET_GPU, parameters={"gpuIndex": 0, "force": True})
    with pytest.raises(ValidationError, match="must be int"):
        Action(type=ActionType.RESET_GPU, parameters={"gpuIndex": "zero"})
    assert Action(type=ActionType.RESET_GPU, parameters={"gpuIndex": 1}).parameters == {"gpuIndex": 1}


def test_every_action_type_is_catalogued() -> None:
    assert set(ACTION_CATALOG) == set(ActionType)


def test_recommendation_names_are_valid_dns_subdomains() -> None:
    name = recommendation_name("Node_With.Weird/Chars" * 20, "gpu.xid", "GPU//x")
    assert len(name) <= 253
    assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    assert not name.startswith("-") and not name.endswith("-")
