"""The QEMU monitor (QMP through qemu.qmp, HMP through human-monitor-command), keys and
screenshots."""

from __future__ import annotations

import time
from pathlib import Path

from driver.machine.base import NodeBase

# Characters that need a named QEMU key (sendkey syntax) when typed with send_chars.
_CHAR_KEYS = {
    " ": "spc",
    "\n": "ret",
    "\t": "tab",
    "-": "minus",
    "=": "equal",
    ",": "comma",
    ".": "dot",
    "/": "slash",
    ";": "semicolon",
    "'": "apostrophe",
    "\\": "backslash",
    "[": "bracket_left",
    "]": "bracket_right",
    "`": "grave_accent",
    "!": "shift-1",
    "@": "shift-2",
    "#": "shift-3",
    "$": "shift-4",
    "%": "shift-5",
    "^": "shift-6",
    "&": "shift-7",
    "*": "shift-8",
    "(": "shift-9",
    ")": "shift-0",
    "_": "shift-minus",
    "+": "shift-equal",
    ":": "shift-semicolon",
    '"': "shift-apostrophe",
    "<": "shift-comma",
    ">": "shift-dot",
    "?": "shift-slash",
    "|": "shift-backslash",
    "{": "shift-bracket_left",
    "}": "shift-bracket_right",
    "~": "shift-grave_accent",
}


def char_to_key(char: str) -> str:
    """The sendkey name that types ``char``."""
    if char in _CHAR_KEYS:
        return _CHAR_KEYS[char]
    if char.isupper():
        return f"shift-{char.lower()}"
    return char


class MonitorMixin(NodeBase):
    """Monitor-facing DSL methods (through ``send_qmp_command``)."""

    def send_monitor_command(self, command: str) -> str:
        """Send a human-monitor (HMP) command, e.g. ``info status`` or ``help``; returns
        the monitor's text as the NixOS driver does: the command's output followed by the
        monitor prompt ``(qemu) ``. (It travels through QMP's ``human-monitor-command``.)"""
        self.run_callbacks()
        return f"{self.human_monitor_command(command)}(qemu) "

    def human_monitor_command(self, command: str) -> str:
        """The output of a human-monitor (HMP) command as QMP returns it: no prompt, ""
        for a command that prints nothing (``savevm`` on success)."""
        return self._port.hmp(command)

    def send_key(self, key: str, delay: float = 0.01) -> None:
        """Press a key combination in QEMU's sendkey syntax, e.g. ``ctrl-alt-delete``."""
        self.send_monitor_command(f"sendkey {key}")
        time.sleep(delay)

    def send_chars(self, chars: str, delay: float = 0.01) -> None:
        """Type ``chars`` on the guest keyboard."""
        for char in chars:
            self.send_key(char_to_key(char), delay)

    def screenshot(self, filename: str) -> Path:
        """Save the guest display as PNG in the output directory; returns the path."""
        path = Path(filename)
        if not path.is_absolute():
            path = self.out_dir / (filename if filename.endswith(".png") else filename + ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.send_qmp_command("screendump", filename=str(path), format="png")
        return path

    def console_interact(self) -> None:
        """Attach the terminal to the serial console (pexpect interact); Ctrl-] leaves."""
        import sys

        import pexpect

        bridge = (
            "import os,select,socket,sys\n"
            "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
            "while True:\n"
            " r,_,_=select.select([0,s],[],[])\n"
            " if 0 in r:\n"
            "  d=os.read(0,4096)\n"
            "  if not d: break\n"
            "  s.sendall(d)\n"
            " if s in r:\n"
            "  d=s.recv(4096)\n"
            "  if not d: break\n"
            "  os.write(1,d)\n"
        )
        socket_path = self._serial_socket("console_interact")
        child = pexpect.spawn(sys.executable, ["-c", bridge, socket_path])
        try:
            child.interact()
        finally:
            child.close(force=True)
