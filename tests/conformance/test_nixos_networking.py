"""What nixos-test-driver/networking.py checks, on two nodes ``client`` and ``server`` of a
VLAN called ``lan`` (a user topology, run from outside the checkout): port waits, a
python http.server reached by host name, block/unblock of the server's link, forward_port
from the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import check_passed, run_script

pytestmark = pytest.mark.vm

SCRIPT = """
from urllib.request import urlopen

client.wait_for_unit("multi-user.target")
server.wait_for_unit("multi-user.target")
assert [m.name for m in machines] == ["client", "server"]
assert vlan1 in vlans

with subtest("wait_for_closed_port"):
    server.wait_for_closed_port(8080)

server.succeed("cd /root && echo Hello > file && (python -m http.server 8080 >&2 &)")

with subtest("wait_for_open_port"):
    server.wait_for_open_port(8080)

with subtest("by host name over the VLAN"):
    client.wait_until_succeeds("curl -sf http://server:8080/file | grep Hello", timeout=60)

with subtest("block"):
    server.block()
    client.fail("curl --max-time 5 http://server:8080/file")

with subtest("unblock"):
    server.unblock()
    client.wait_until_succeeds("curl -sf --max-time 5 http://server:8080/file", timeout=60)

with subtest("forward_port"):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server.forward_port(port, 8080)
    body = urlopen(f"http://127.0.0.1:{port}/file", timeout=30).read()
    assert body == b"Hello\\n", body
"""


def test_networking(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "client-server.toml", SCRIPT, kind=node_kind)
    check_passed(outcome, node_kind, vm_only="forward_port", node="server")
    assert {"block", "unblock", "forward_port"} <= set(outcome.cases)
