"""NixOS test-driver methods for headless nodes that have no other home: TTY text, the
serial console as input, QMP events, nested log blocks, copying over the shell. The
graphical ones (OCR, X11 windows) fail with one line: our nodes have no display."""

from __future__ import annotations

import base64
import math
import re
import shlex
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from driver.duration import Duration, optional_seconds, seconds
from driver.machine.base import DEFAULT_TIMEOUT, NodeBase
from driver.wait import wait_until


class NixosCompatMixin(NodeBase):
    """DSL methods kept under their NixOS driver names and meanings."""

    def wait_for_console_text(self, regex: str, timeout: Duration | None = None) -> str:
        """Wait until the serial console shows text matching ``regex`` (not yet consumed
        by an earlier wait); returns the matched text. Fails ("action timed out") after
        ``timeout`` (default ``None``: no limit, as in the NixOS driver)."""
        limit = optional_seconds(timeout)
        with self.nested(f"waiting for console text {regex!r}"):
            try:
                return self._port.wait_for_console_text(regex, limit)
            except TimeoutError as exc:
                raise self._timed_out(limit or 0.0, str(exc)) from None

    def get_console_log(self) -> str:
        """The serial console text of the current boot."""
        return self._port.console_text()

    def send_console(self, chars: str) -> None:
        """Type ``chars`` on the node's serial console (ttyS0), as bytes on its input."""
        path = self._serial_socket("send_console")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10.0)
            sock.connect(path)
            sock.sendall(chars.encode())

    def wait_for_qmp_event(
        self, event_filter: Callable[[dict[str, Any]], bool], timeout: Duration = 600.0
    ) -> dict[str, Any]:
        """Wait for a QMP event (a dict with ``event``, ``data``, ``timestamp``) for which
        ``event_filter`` returns True, skipping others; fails ("action timed out") after
        ``timeout``."""
        limit = seconds(timeout)
        deadline = time.monotonic() + limit
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(limit, "no matching QMP event")
            event = self._next_qmp_event(min(remaining, 0.5))
            if event is not None and event_filter(event):
                return event

    def get_tty_text(self, tty: str) -> str:
        """The text on virtual terminal ``tty`` (``/dev/vcs<tty>``), folded to its width."""
        result = self.run(
            f"fold -w$(stty -F /dev/tty{tty} size | awk '{{print $2}}') /dev/vcs{tty}"
        )
        return result.stdout

    def wait_until_tty_matches(
        self, tty: str, regexp: str, timeout: Duration = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until the text on virtual terminal ``tty`` matches ``regexp``; fails
        ("action timed out", showing the terminal's last text) after ``timeout``."""
        limit = seconds(timeout)
        matcher = re.compile(regexp)
        last = ""

        def matches() -> bool:
            nonlocal last
            last = self.get_tty_text(tty)
            return matcher.search(last) is not None

        with self.nested(f"waiting for {regexp} to appear on tty {tty}"):
            try:
                wait_until(matches, limit, 0.5, self._check_alive)
            except TimeoutError:
                raise self._timed_out(
                    limit, f"tty{tty} did not match /{regexp}/; it shows:\n{last}"
                ) from None

    def dump_tty_contents(self, tty: str) -> None:
        """Debugging: write the text of virtual terminal ``tty`` to the guest journal."""
        self.run(f"fold -w 80 /dev/vcs{tty} | systemd-cat")

    def copy_from_host_via_shell(self, source: str | Path, target: str) -> None:
        """Copy the host file ``source`` to ``target`` in the guest through the shell
        (base64 over the backdoor); fails the test if the guest cannot write it."""
        content = base64.b64encode(Path(source).read_bytes()).decode()
        result = self.run(
            f"mkdir -p $(dirname {shlex.quote(target)}) && "
            f"echo -n {content} | base64 -d > {shlex.quote(target)}",
            timeout=max(60.0, math.ceil(len(content) / 1e6) * 30.0),
        )
        if result.status != 0:
            raise self._failure(f"copy to {target} failed: {result.stderr.strip()}")

    def _no_display(self, method: str) -> NoReturn:
        raise self._failure(
            f"{method} needs a graphical display (OCR / X11); photon-driver nodes are "
            "headless (OCR requested but enableOCR is false)"
        )

    def get_screen_text(self) -> str:
        """Not available: nodes have no display (fails with one line)."""
        self._no_display("get_screen_text")

    def get_screen_text_variants(self) -> list[str]:
        """Not available: nodes have no display (fails with one line)."""
        self._no_display("get_screen_text_variants")

    def wait_for_text(self, regex: str, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Not available: nodes have no display (fails with one line); for the serial
        console use ``wait_for_console_text``."""
        self._no_display("wait_for_text")

    def wait_for_x(self, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Not available: nodes have no display (fails with one line)."""
        self._no_display("wait_for_x")

    def wait_for_window(self, regexp: str, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Not available: nodes have no display (fails with one line)."""
        self._no_display("wait_for_window")

    def get_window_names(self) -> list[str]:
        """Not available: nodes have no display (fails with one line)."""
        self._no_display("get_window_names")
