"""A node's lifecycle: one state, and the transitions between states in one table."""

from __future__ import annotations

import enum

from driver.errors import InfraError


class NodeState(enum.Enum):
    """Where a node is."""

    STOPPED = "stopped"  # no QEMU of this run (never started, exited, killed)
    STARTING = "starting"  # QEMU runs; the backdoor shell has not announced itself yet
    UP = "up"  # the shell answers: booted, restored from a saved state, or attached
    DETACHED = "detached"  # left running for a later run; this run no longer drives it


TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    NodeState.STOPPED: frozenset({NodeState.STARTING, NodeState.UP}),
    NodeState.STARTING: frozenset({NodeState.UP, NodeState.STOPPED, NodeState.DETACHED}),
    NodeState.UP: frozenset({NodeState.STOPPED, NodeState.DETACHED}),
    NodeState.DETACHED: frozenset({NodeState.STOPPED, NodeState.UP}),
}


class Lifecycle:
    """The state of one node; ``enter`` is the only way to change it."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.state = NodeState.STOPPED

    def enter(self, new: NodeState) -> None:
        """Move to ``new`` (staying put is allowed); InfraError for a transition the
        table does not have, which is a bug in the driver."""
        if new is not self.state and new not in TRANSITIONS[self.state]:
            raise InfraError(f"{self.node}: no transition from {self.state.value} to {new.value}")
        self.state = new
