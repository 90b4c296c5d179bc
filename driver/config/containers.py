"""``--containers``: the topology with the nodes it marks ``container_ok`` (on the node or
its role) run as container nodes; the rest stay as they are."""

from __future__ import annotations

import dataclasses

from driver.config.spec import NodeKind
from driver.config.topology import Topology


def with_containers(topology: Topology) -> Topology:
    """``topology`` with every ``container_ok`` node a container node."""
    nodes = {
        name: dataclasses.replace(node, kind=NodeKind.CONTAINER) if node.container_ok else node
        for name, node in topology.nodes.items()
    }
    return dataclasses.replace(topology, nodes=nodes)
