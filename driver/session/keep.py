"""``--keep-on-failure``: a run on fresh nodes that, when it fails, leaves every node
running as the profile's cluster (registered like `cluster start`'s), says once what to
type next, and otherwise cleans up as any run does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from driver.errors import EXIT_OK, UsageError
from driver.reports.report import SubtestResult
from driver.run.driver import Driver
from driver.session.detached import detached_driver
from driver.session.invocation import Invocation
from driver.session.recorded import recorded
from driver.state import cluster, runs
from driver.state.settled import start_settled

RunScripts = Callable[[Invocation, Driver, list[Path], dict[Path, str], list[SubtestResult]], int]


def run_keeping(
    inv: Invocation,
    scripts: list[Path],
    sources: dict[Path, str],
    results: list[SubtestResult],
    settled: bool,
    run_scripts: RunScripts,
) -> int:
    """Boot fresh nodes detached in the profile's state directory, run the scripts; on a
    failure keep the nodes as the profile's cluster, on success stop them."""
    with cluster.locked(inv.state) as lock:  # the whole run: nobody else starts or stops it
        record = cluster.read_record(inv.state)
        if record is not None and not cluster.check_record(inv.state, record):
            raise UsageError(
                f"--keep-on-failure: a cluster is already running in {inv.state} "
                "(run on it with --reuse, or `cluster stop` it first)"
            )
        driver = detached_driver(inv, lock, settled)
        runs.announce(driver, inv.state, inv.logger)
        with driver, recorded(inv, driver, results):
            if settled:
                start_settled(driver, inv.topology().profile(inv.profile), inv.settled_root())
            code = run_scripts(inv, driver, scripts, sources, results)
            if code == EXIT_OK or not any(m.is_running() for m in driver.machines):
                driver.cleanup()
                return code
            cluster.write_record(driver, inv.profile)
        inv.logger.log(kept_message(inv.profile, inv.state, results))
        return code


def kept_message(profile: str, state: Path, results: list[SubtestResult]) -> str:
    """What a kept run says once: what failed (the command's output and the failing node's
    console are in the failure text) and what to type next."""
    failed = next((r for r in results if r.status.fails_run), None)
    lines = [f"kept: the nodes stay up as the {profile} cluster in {state}"]
    if failed is not None:
        where = f" on {failed.node}" if failed.node else ""
        lines.append(f"  failed{where}: {failed.name}")
        lines += ["    " + ln for ln in failed.message.splitlines()[-30:]]
    node = failed.node if failed is not None and failed.node else "NODE"
    cli = f"photon-driver --profile {profile}"
    lines += [
        "  next:",
        f"    {cli} ssh {node}              log in to a node",
        f"    {cli} run --reuse -I          the REPL with the same globals",
        f"    {cli} run --reuse SCRIPT      run a script on these nodes again",
        f"    {cli} cluster stop            stop them (nothing is left running)",
    ]
    if failed is not None:
        lines.append(
            f'    in the REPL: restore("before:{failed.name}")  back to where the subtest began'
        )
    return "\n".join(lines)
