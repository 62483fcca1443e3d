"""Base model for everything that is serialised to Kubernetes or to JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire (Kubernetes convention), snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
        use_attribute_docstrings=True,  # a docstring under a field is its description (CRDs, kubectl explain)
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as stored in a custom resource (aliases, no None)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
