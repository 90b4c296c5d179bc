"""What a guest command leaves in the run's records: its ``command`` event (with the end of
its stdout), its stderr as log lines of the node, and the whole of a long output in a file
under the output directory. ``Node.run_logged`` is the one caller."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path

from driver.errors import CommandTimeout, TestFailure
from driver.events import EventKind
from driver.log import Logger
from driver.machine.base import STRICT
from driver.machine.shell import CommandResult
from driver.safe_files import create_new, output_dir

# The end of a command's stdout in its event; the end of its stderr in the log (the rest is
# written to a file under the output directory).
EVENT_STDOUT_BYTES = 2000
LOGGED_STDERR_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class CommandLog:
    """Where one node's commands are recorded."""

    node: str
    logger: Logger
    out_dir: Path

    def run(
        self,
        command: str,
        timeout: float | None,
        shell: Callable[[str, float | None], CommandResult],
    ) -> CommandResult:
        """Run ``command`` through ``shell`` and record it; CommandTimeout, naming the node,
        when the guest does not answer at all."""
        started = time.time()
        try:
            result = shell(command, timeout)
        except TimeoutError:
            raise CommandTimeout(
                f"{self.node}: no answer to `{command}` within {timeout}s "
                "(the guest shell did not reply)",
                node=self.node,
            ) from None
        return self.record(command, result, started, timeout)

    def stdout_of(self, command: str, result: CommandResult) -> str:
        """The stdout of a driver command that must succeed; TestFailure naming the node,
        the command, its status and its stderr when it did not."""
        if result.status != 0:
            raise TestFailure(
                f"{self.node}: `{command}` failed (status {result.status}): {result.stderr}",
                node=self.node,
            )
        return result.stdout

    def record(
        self, command: str, result: CommandResult, started: float, limit: float | None
    ) -> CommandResult:
        """Record ``command``'s ``result`` (run from host time ``started``); a command the
        guest timed out comes back with status 124, as ``timeout`` gives."""
        if result.timed_out:
            self.logger.warning(
                f"`{command}` timed out after {limit}s; the guest killed its process group "
                "(status 124, as `timeout` gives)",
                node=self.node,
            )
            result = dataclasses.replace(result, status=124)
        self.logger.event(
            EventKind.COMMAND,
            t=started,
            node=self.node,
            command=command.removeprefix(STRICT)[:500],
            status=result.status,
            duration=round(result.duration, 4),
            stdout=self._stdout_excerpt(result),
        )
        # The guest echoes a command's stderr to its console (as NixOS's backdoor does), which
        # the run log shows when consoles are streamed: here it goes to the event log only,
        # its end when it is long (the whole of it in a file named there).
        stderr = result.stderr_bytes
        if len(stderr) > LOGGED_STDERR_BYTES:
            kept = self._keep_output(stderr, "stderr")
            self.logger.node_line(
                self.node,
                f"[{len(stderr) - LOGGED_STDERR_BYTES} bytes of stderr before; all of it in "
                f"{kept}]",
                source="stderr",
                shown=False,
            )
            stderr = stderr[-LOGGED_STDERR_BYTES:]
        for line in stderr.decode(errors="replace").rstrip("\n").splitlines():
            self.logger.node_line(self.node, line, source="stderr", shown=False)
        return result

    def _stdout_excerpt(self, result: CommandResult) -> str:
        """The end of a command's stdout for its event; a failed command's longer stdout is
        written whole into the output directory, named in the excerpt."""
        stdout = result.stdout_bytes
        tail = stdout[-EVENT_STDOUT_BYTES:].decode(errors="replace")
        if result.status == 0 or len(stdout) <= EVENT_STDOUT_BYTES:
            return tail
        kept = self._keep_output(stdout, "stdout")
        return f"[{len(stdout) - EVENT_STDOUT_BYTES} bytes before; all of it in {kept}]\n{tail}"

    def _keep_output(self, data: bytes, stream: str) -> str:
        """Write a command's whole ``stream`` into the output directory
        (``outputs/<node>-<n>.<stream>``); its path there."""
        folder = output_dir(output_dir(self.out_dir) / "outputs")
        for number in itertools.count(1):
            path = folder / f"{self.node}-{number}.{stream}"
            try:
                with create_new(path) as out:
                    out.write(data)
                return str(path.relative_to(self.out_dir))
            except FileExistsError:
                continue
        raise AssertionError("unreachable")
