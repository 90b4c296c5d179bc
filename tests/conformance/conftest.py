"""The conformance suite runs on both node kinds: each test that has nodes takes
``node_kind`` and runs once on VM nodes and once with every node a container node."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["vm", "container"])
def node_kind(request: pytest.FixtureRequest) -> str:
    """The kind every node of the test's topology is (``kind`` in the topology)."""
    return str(request.param)
