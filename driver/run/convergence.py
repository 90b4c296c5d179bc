"""``converges``: a script helper that waits until every node gives the same answer (a
replicated store's members agreeing on a key, a leader, a revision)."""

from __future__ import annotations

from collections.abc import Iterable

from driver.errors import TestFailure
from driver.machine.machine import Machine
from driver.wait import wait_until


def converges(
    check: str, nodes: Iterable[Machine], within: float = 60.0, interval: float = 1.0
) -> str:
    """Run ``check`` on every node until all print the same (non-empty) output; returns it.
    Fails after ``within`` s, listing each node's last output."""
    machines = list(nodes)
    last: dict[str, tuple[int, str]] = {}  # node -> (exit status, output)

    def agreed() -> bool:
        for machine in machines:
            status, output = machine.execute(check, timeout=max(interval * 10, 30))
            last[machine.name] = (status, output.strip())
        values = set(last.values())
        status, output = next(iter(values))
        return len(values) == 1 and status == 0 and output != ""

    def shown(status: int, output: str) -> str:
        return repr(output) if status == 0 else repr(f"(exit {status}) {output}")

    try:
        wait_until(agreed, within, interval)
    except TimeoutError:
        seen = "; ".join(f"{name}: {shown(*value)}" for name, value in last.items())
        raise TestFailure(f"`{check}` did not converge within {within:g}s: {seen}") from None
    return next(iter(last.values()))[1]
