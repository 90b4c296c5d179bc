"""What every command needs: the profile, its state directory, the image cache, the log,
the topology, and fresh Drivers built from the profile's node specs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from driver.config.containers import with_containers
from driver.config.topology import Topology, load_topology
from driver.errors import InfraError, UsageError
from driver.images.builder import default_cache_root
from driver.images.profile_specs import profile_specs
from driver.log import Logger, LogLevel
from driver.run.driver import Driver, RunContext
from driver.safe_files import UnsafePath
from driver.scriptrun.namespace import check_node_names
from driver.scriptrun.quarantine import Quarantine, load_quarantine
from driver.scriptrun.selection import Selection, selection_of
from driver.session.options import RunOptions
from driver.state.cluster import state_dir
from driver.state.settled import seed_keys, settled_root


class Invocation:
    """One ``photon-driver`` command line."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.args = args
        self.options = RunOptions.of(args)
        self.environ = environ
        self.logger = Logger()
        self.logger.level = LogLevel[(self.options.log_level or "info").upper()]
        self.cache = default_cache_root(environ)
        self._topology: Topology | None = None
        self._quarantine: tuple[Quarantine | None] | None = None
        # A topology the user wrote has its own default profile (see Topology).
        default = (
            self.topology().default_profile() if self.options.topology is not None else "reference"
        )
        self.profile: str = args.profile or environ.get("PHOTON_PROFILE") or default
        self.state = state_dir(environ, self.profile, default)

    def topology(self) -> Topology:
        """The validated topology (read once): also every node name usable in a script."""
        if self._topology is None:
            topology = load_topology(self.options.topology)
            if self.options.containers:
                topology = with_containers(topology)
            check_node_names(topology)  # each node its own script variable, before any build
            self._topology = topology
        return self._topology

    def selection(self) -> Selection | None:
        """The ``--subtest`` patterns (None: every subtest runs); a bad one is a
        UsageError."""
        subtest = self.options.subtest
        return selection_of(None if subtest is None else list(subtest))

    def quarantine(self) -> Quarantine | None:
        """The ``--quarantine`` file's entries (read and checked once; None without one)."""
        if self._quarantine is None:
            path = self.options.quarantine
            self._quarantine = (None if path is None else load_quarantine(path),)
        return self._quarantine[0]

    def nodes_subset(self) -> list[str] | None:
        """The ``--nodes`` selection, validated (None: every node)."""
        raw = self.options.nodes
        if not raw:
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()]
        known = self.topology().nodes
        for name in names:
            if name not in known:
                raise UsageError(f"--nodes: unknown node '{name}' (known: {', '.join(known)})")
        return list(names)

    def settled_root(self) -> Path:
        """Where this profile's settled snapshots are cached."""
        return settled_root(self.cache, self.profile)

    def context(self, state: Path) -> RunContext:
        """The run context for a run whose state lives in ``state``."""
        topology = self.topology()
        out = self.options.output_dir or state / "out"
        return RunContext(
            state,
            self.logger,
            self.environ,
            out,
            self.cache,
            topology,
            topology.profile(self.profile),
        )

    def fresh_driver(self, state: Path, detached: bool = False, settled: bool = False) -> Driver:
        """Build (or reuse) the node specs and a Driver for a fresh set of nodes; with
        ``settled`` the nodes get the SSH keys that settled snapshots of the profile share."""
        names = self.nodes_subset()
        if settled:
            try:
                seed_keys(self.settled_root(), state, names or list(self.topology().nodes))
            except UnsafePath:
                raise
            except (OSError, InfraError) as exc:  # a read-only or broken settled cache
                self.logger.warning(
                    f"the settled cache {self.settled_root()} is not usable "
                    f"({str(exc).splitlines()[0]}): this run gets keys of its own"
                )
        specs = profile_specs(
            self.topology(), self.profile, state, self.cache, self.logger, names, self.args.specs
        )
        boot_groups = self.topology().boot_groups(names)
        return Driver(specs, self.context(state), boot_groups=boot_groups, detached=detached)
