"""How many tests run at once: the host's CPUs and available memory against what each
test's topology asks for (every node's ``memory_mib`` plus QEMU's own overhead, and its
vCPUs). ``-j`` defaults to what fits; a ``-j`` above 1 whose largest tests together need
more memory than the host has available is refused, saying both numbers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from driver.config.topology import Topology, load_topology
from driver.errors import UsageError
from driver.suite.plan import SuiteTest

QEMU_OVERHEAD_MIB = 200  # QEMU's own memory per node, beyond the guest's RAM
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Host:
    """What the host offers: CPUs and available memory (None: unknown)."""

    cpus: int
    memory_mib: int | None

    @classmethod
    def probe(cls, meminfo: Path = MEMINFO) -> Host:
        """This host: the CPUs this process may use and ``MemAvailable``."""
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        return cls(max(cpus, 1), mem_available_mib(meminfo))


@dataclass(frozen=True)
class Need:
    """What one test asks for at most (every node of its topology running)."""

    test: str
    nodes: int
    memory_mib: int
    vcpus: int


def mem_available_mib(meminfo: Path = MEMINFO) -> int | None:
    """``MemAvailable`` in MiB (None where there is no /proc/meminfo)."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable" and value.split() and value.split()[0].isdigit():
            return int(value.split()[0]) // 1024
    return None


def nodes_option(args: tuple[str, ...]) -> list[str] | None:
    """The ``--nodes`` subset a test's own ``run`` options name (None: every node)."""
    value: str | None = None
    for i, arg in enumerate(args):
        if arg == "--nodes" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--nodes="):
            value = arg.split("=", 1)[1]
    if not value:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


def need(test: SuiteTest, topologies: dict[Path | None, Topology]) -> Need:
    """What ``test`` asks for; ``topologies`` caches the files read."""
    if test.topology not in topologies:
        topologies[test.topology] = load_topology(test.topology)
    topology = topologies[test.topology]
    chosen = nodes_option(test.args)
    nodes = [n for name, n in topology.nodes.items() if chosen is None or name in chosen]
    return Need(
        test.id,
        len(nodes),
        sum(n.memory_mib + QEMU_OVERHEAD_MIB for n in nodes),
        sum(n.vcpus for n in nodes),
    )


def largest(values: list[int], count: int) -> int:
    """The sum of the ``count`` largest of ``values``."""
    return sum(sorted(values, reverse=True)[:count])


def fitting(needs: list[Need], host: Host, count_cpus: bool = True) -> int:
    """The most tests that can run at once (at least 1): the largest ones' memory within
    what is available and (``count_cpus``) their vCPUs (1 at least each: the driver)
    within the CPUs."""
    memory = [n.memory_mib for n in needs]
    cpus = [max(n.vcpus, 1) for n in needs]
    jobs = 1
    for count in range(2, len(needs) + 1):
        if host.memory_mib is not None and largest(memory, count) > host.memory_mib:
            break
        if count_cpus and largest(cpus, count) > host.cpus:
            break
        jobs = count
    return jobs


def choose_jobs(requested: int | None, needs: list[Need], host: Host) -> tuple[int, list[str]]:
    """The number of tests to run at once and the warnings to print. ``requested`` None:
    what fits. A requested number above 1 whose largest tests need more memory together
    than is available is a UsageError (exit 2) saying both."""
    warnings: list[str] = []
    if requested is None:
        jobs = fitting(needs, host)
    else:
        jobs = requested
    jobs = max(1, min(jobs, len(needs) or 1))
    memory = largest([n.memory_mib for n in needs], jobs)
    if host.memory_mib is None:
        warnings.append("no MemAvailable in /proc/meminfo: the memory budget is not checked")
    elif memory > host.memory_mib and jobs > 1:
        raise UsageError(
            f"suite: -j {jobs} needs up to {memory} MiB of memory at once (the {jobs} largest "
            f"tests, guest RAM plus {QEMU_OVERHEAD_MIB} MiB per node) but the host has "
            f"{host.memory_mib} MiB available; use -j {fitting(needs, host, count_cpus=False)} or fewer"
        )
    elif memory > host.memory_mib:
        warnings.append(
            f"the largest test needs {memory} MiB of memory, the host has {host.memory_mib} "
            "MiB available: it may not boot"
        )
    cpus = largest([max(n.vcpus, 1) for n in needs], jobs)
    if jobs > 1 and cpus > host.cpus:
        warnings.append(
            f"-j {jobs} runs up to {cpus} vCPUs on {host.cpus} CPUs: the tests will be slower"
        )
    return jobs, warnings
