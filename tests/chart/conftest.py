from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.chart_render import helm_binary


@pytest.fixture(scope="session")
def helm() -> Path:
    """The real helm binary; skips when it has not been built (scripts/build-controlplane)."""
    found = helm_binary()
    if found is None:
        pytest.skip("no helm binary: build the control plane (scripts/build-controlplane) or put helm on PATH")
    return found
