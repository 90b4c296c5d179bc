"""One photon-driver session: its typed options (options.py), what every command needs
(invocation.py: profile, state, topology, fresh Drivers), the run and its modes (run.py:
fresh nodes, the running cluster, nodes kept on a failure, the settled snapshot, --repeat),
the detached boot, signals and the global timeout, and the run's record. ``cli/`` parses
the command line and prints; it calls into here."""
