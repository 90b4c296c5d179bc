"""Unit readiness of a profile's nodes: multi-user and every unit the profile declares."""

from __future__ import annotations

import shlex

from driver.config.topology import Profile
from driver.machine.machine import Machine
from driver.run.driver import Driver

# Each declared unit's wait: six TCG guests on two host cores have taken more than 300 s
# to bring up the reference control plane when its standbys took base backups (they still
# do when their cluster has run before; the units' own TimeoutStartSec is 600 s).
READINESS_TIMEOUT = 600.0
# Each service's ``settled`` check, after readiness (Prometheus' first scrape of every
# target comes within one 30 s scrape interval of its start).
SETTLE_TIMEOUT = 180.0


def declared_units(node: str, profile: Profile) -> list[str]:
    """multi-user.target and the units ``profile`` declares on ``node``."""
    return ["multi-user.target", *profile.units_on(node)]


def all_active_command(units: list[str]) -> str:
    """Shell that succeeds when every one of ``units`` is active (one systemctl call).
    ``systemctl is-active A B`` alone succeeds when *any* of them is: each unit's state is
    read from its output instead."""
    listed = " ".join(map(shlex.quote, units))
    return f'[ "$(systemctl is-active -- {listed} | sort -u)" = active ]'


def wait_for_units(machine: Machine, units: list[str], timeout: float) -> None:
    """Wait until every one of ``units`` is active on ``machine``, each within ``timeout``
    s: one systemctl call answers for all of them once they are up (a restored or settled
    node, or a booted one past multi-user.target), else the first one not yet known active
    is waited for with ``wait_for_unit`` (its failure, with journal, fails the wait) and the
    rest are asked again together."""
    pending = list(units)
    while pending:
        with machine.nested(f"checking that {', '.join(pending)} are active"):
            status, _ = machine.execute(all_active_command(pending), timeout=timeout)
        if status == 0:
            return
        machine.wait_for_unit(pending.pop(0), timeout=timeout)


def wait_for_readiness(
    machines: list[Machine], profile: Profile, timeout: float = READINESS_TIMEOUT
) -> None:
    """Wait until every node reached multi-user and every unit the profile declares on it is
    active (the nodes at once, each unit within ``timeout`` s)."""
    Driver.parallel(
        machines,
        lambda machine: wait_for_units(machine, declared_units(machine.name, profile), timeout),
    )


def wait_until_settled(
    machines: list[Machine], profile: Profile, timeout: float = SETTLE_TIMEOUT
) -> None:
    """Wait until every ``settled`` check of the profile's services succeeds on its nodes
    (the nodes at once, each check within ``timeout`` s)."""

    def settle(machine: Machine) -> None:
        for check in profile.settle_checks_on(machine.name):
            machine.wait_until_succeeds(check, timeout=timeout)

    Driver.parallel(machines, settle)
