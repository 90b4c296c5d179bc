"""PhotonCloud specifics for the test scripts in testscripts/: every port, path and CLI
invocation comes from the topology's ``photoncloud`` profile, so a correction is one line in
nodes/cluster.toml. Nothing here runs a stand-in: these helpers talk to PhotonCloud only."""

from __future__ import annotations

import shlex

from driver.config.topology import Profile
from driver.machine.machine import Machine


def cli(profile: Profile, service: str, action: str, *args: str) -> str:
    """The declared CLI command for ``service``'s ``action`` with quoted ``args``."""
    base = profile.service(service).cli[action]
    return " ".join([base, *(shlex.quote(a) for a in args)])


def members_seen(node: Machine, profile: Profile, service: str) -> int:
    """How many cluster members ``node`` reports for ``service`` (one per output line)."""
    output = node.succeed(cli(profile, service, "members"))
    return len([line for line in output.splitlines() if line.strip()])


def put_then_read_everywhere(
    writer: Machine,
    readers: list[Machine],
    profile: Profile,
    service: str,
    key: str,
    value: str,
    timeout: float = 60.0,
) -> None:
    """Write ``key`` on ``writer``; wait until every reader returns ``value``."""
    writer.succeed(cli(profile, service, "put", key, value))
    for reader in readers:
        reader.wait_until_succeeds(
            f"{cli(profile, service, 'get', key)} | grep -qx {shlex.quote(value)}", timeout
        )
