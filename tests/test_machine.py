"""Every Machine DSL method against real guests (node01 + node02 of the minimal profile)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from driver.errors import CommandTimeout, MachineDied, TestFailure
from driver.images.builder import Image
from driver.machine.machine import Machine
from driver.run.convergence import converges
from driver.run.driver import Driver
from driver.run.helpers import retry
from driver.run.readiness import wait_for_units
from driver.run.snapshots import step_clock
from driver.wait import wait_until

pytestmark = pytest.mark.vm


@pytest.fixture()
def n1(two_nodes: Driver) -> Machine:
    return two_nodes.machine("node01")


@pytest.fixture()
def n2(two_nodes: Driver) -> Machine:
    return two_nodes.machine("node02")


def test_identity_per_node(n1: Machine, n2: Machine) -> None:
    assert n1.succeed("hostname").strip() == "node01"
    assert n2.succeed("hostname").strip() == "node02"
    assert "10.100.0.11/24" in n1.succeed("ip -br addr")
    assert "10.100.0.12/24" in n2.succeed("ip -br addr")
    hosts = n1.succeed("cat /etc/hosts")
    for name, ip in [("node01", "10.100.0.11"), ("node06", "10.100.0.31")]:
        assert f"{ip} {name}" in hosts


def test_writes_are_per_node_and_base_untouched(
    n1: Machine, n2: Machine, minimal_image: tuple[Image, float]
) -> None:
    image = minimal_image[0]

    def base_digest() -> str:
        digest = hashlib.sha256()
        with image.base.open("rb") as base:
            while chunk := base.read(1 << 22):
                digest.update(chunk)
        return digest.hexdigest()

    before = (image.base.stat().st_mtime_ns, base_digest())
    n1.succeed("echo only-on-node01 > /var/tmp/marker && sync")
    n2.fail("test -e /var/tmp/marker")
    assert (image.base.stat().st_mtime_ns, base_digest()) == before


def test_cached_rebuild_does_no_work(minimal_image: tuple[Image, float], cache_root: Path) -> None:
    from driver.config.topology import load_topology
    from driver.images.builder import build_image
    from driver.images.profile_specs import image_recipe
    from driver.log import Logger

    started = time.monotonic()
    image = build_image(image_recipe(load_topology(), "minimal"), cache_root, Logger())
    assert image.cached and image.directory == minimal_image[0].directory
    assert time.monotonic() - started < 2.0


def test_execute_run_succeed_fail(n1: Machine) -> None:
    assert n1.execute("echo out; echo err >&2; exit 4") == (4, "out\n")
    result = n1.run("printf 'a\\n\\n'; echo oops >&2; exit 2")
    assert (result.status, result.stdout, result.stderr) == (2, "a\n\n", "oops\n")
    assert result.duration > 0
    assert n1.succeed("echo one", "echo two") == "one\ntwo\n"
    with pytest.raises(TestFailure, match="exit 3"):
        n1.succeed("exit 3")
    # A failure quotes the end of what the command printed, stdout and stderr.
    with pytest.raises(TestFailure) as failed:
        n1.succeed("seq 1 5000; echo bad >&2; exit 1")
    message = str(failed.value)
    assert "failed (exit code 1)\nstdout: [" in message and message.count("\n4999\n") == 1
    assert message.endswith("\n5000\nstderr: bad") and len(message) < 4500
    assert n1.fail("echo x; false") == "x\n"
    with pytest.raises(TestFailure, match="unexpectedly succeeded\nstdout: y$"):
        n1.fail("echo y")
    assert n1.execute("echo out; exit 3", check_return=False) == (-1, "out\n")
    assert n1.execute("sleep 30", check_output=False) == (-2, "")
    # NixOS semantics: every command runs under `set -euo pipefail`.
    n1.fail("false | true", "echo $UNSET_VARIABLE", "false; true")
    assert n1.run("false | true").status == 0  # run() adds no options


def test_wait_until_succeeds_and_fails(n1: Machine) -> None:
    n1.succeed("rm -f /tmp/later; (sleep 1; touch /tmp/later) >/dev/null 2>&1 &")
    started = time.monotonic()
    n1.wait_until_succeeds("test -e /tmp/later", timeout=30)
    assert 0.5 < time.monotonic() - started < 10
    n1.succeed("(sleep 1; rm /tmp/later) >/dev/null 2>&1 &")
    n1.wait_until_fails("test -e /tmp/later", timeout=30)
    with pytest.raises(
        TestFailure, match="action timed out after 1s: `echo never; false` did not succeed"
    ):
        n1.wait_until_succeeds("echo never; false", timeout=1)
    with pytest.raises(TestFailure):
        n1.wait_until_succeeds("sleep 10", timeout=3, attempt_timeout=1)


def test_a_long_wait_backs_off_and_still_notices(n1: Machine) -> None:
    # Attempts every 0.1 s at first, then a twentieth of the time waited (at most 0.5 s):
    # 20 s of waiting is about 60 attempts, not the 130+ a fixed 0.1 s interval makes.
    n1.succeed("rm -f /tmp/attempts /tmp/flag; (sleep 20; touch /tmp/flag) >/dev/null 2>&1 &")
    n1.wait_until_succeeds("echo x >> /tmp/attempts; test -e /tmp/flag", timeout=60)
    now, flagged = n1.succeed("date +%s.%N; date -r /tmp/flag +%s.%N").split()
    late = float(now) - float(flagged)
    attempts = int(n1.succeed("wc -l < /tmp/attempts"))
    assert 30 < attempts < 100, attempts
    assert late < 2.0, f"noticed {late:.2f} s after the flag"


def test_wait_for_unit_late_oneshot(n1: Machine) -> None:
    n1.succeed(
        "systemd-run --unit=late-oneshot --no-block -p Type=oneshot -p RemainAfterExit=yes sleep 2"
    )
    started = time.monotonic()
    n1.wait_for_unit("late-oneshot", timeout=60)
    assert time.monotonic() - started > 1.0
    n1.require_unit_state("late-oneshot.service", "active")
    assert n1.get_unit_property("late-oneshot", "Type") == "oneshot"
    assert n1.get_unit_info("late-oneshot")["ActiveState"] == "active"


def late_unit_noticed(n1: Machine, unit: str) -> float:
    """Start ``unit`` (a 3 s oneshot) without blocking, wait for it; seconds between its
    activation and the wait's return, on the guest's clock."""
    n1.succeed(
        f"systemd-run --unit={unit} --no-block -p Type=oneshot -p RemainAfterExit=yes sleep 3"
    )
    n1.wait_for_unit(unit, timeout=60)
    now, active = n1.succeed(
        "read up _ < /proc/uptime; echo $up; "
        f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}"
    ).split()
    return float(now) - int(active) / 1e6


def test_wait_for_unit_blocks_on_the_pending_job(n1: Machine) -> None:
    # The wait sits on the unit's job (photon-active@UNIT.target) instead of polling, and
    # returns right after the job ends.
    late = late_unit_noticed(n1, "late-blocking")
    assert late < 1.0, f"noticed {late:.2f} s after activation"
    journal = n1.succeed("journalctl -b --no-pager -o cat | grep -F photon-active@late-blocking")
    assert "Reached target photon-active@late-blocking.service.target" in journal, journal
    n1.require_unit_state("photon-active@late-blocking.service.target", "inactive")
    # An image without the template polls, with the same result.
    n1.succeed("mv /etc/systemd/system/photon-active@.target /root/photon-active@.target")
    try:
        late = late_unit_noticed(n1, "late-polled")
    finally:
        n1.succeed("mv /root/photon-active@.target /etc/systemd/system/photon-active@.target")
    assert late < 2.0, f"noticed {late:.2f} s after activation"
    n1.fail("journalctl -b --no-pager -o cat | grep -F photon-active@late-polled")


def test_wait_for_unit_ends_a_blocked_wait_at_its_deadline(n1: Machine) -> None:
    # A unit that stays activating: the wait blocks on its job, gives up at the deadline
    # with the unit's state, and leaves no systemctl or sleeper behind in the guest.
    n1.succeed("systemd-run --unit=slow-start --no-block -p Type=oneshot sleep 60")
    shells = n1.succeed("pgrep -c bash")
    started = time.monotonic()
    with pytest.raises(
        TestFailure,
        match=r'unit "slow-start.service" did not become active: action timed out after 3s '
        r"\(is activating/start\)",
    ):
        n1.wait_for_unit("slow-start", timeout=3)
    assert 2.5 < time.monotonic() - started < 15
    n1.fail("pgrep -f 'photon-active@slow-start'")
    assert n1.succeed("pgrep -c bash") == shells
    n1.succeed("systemctl stop slow-start.service")


def test_wait_for_unit_failed_carries_journal(n1: Machine) -> None:
    n1.succeed(
        "systemd-run --unit=doomed --no-block -p Type=oneshot sh -c 'echo doom-marker-42; exit 3'"
    )
    with pytest.raises(TestFailure, match="(?s)failed.*doom-marker-42"):
        n1.wait_for_unit("doomed", timeout=60)
    with pytest.raises(TestFailure, match="not-found"):
        n1.wait_for_unit("no-such-unit-xyz", timeout=10)


def test_wait_for_units_asks_once_then_waits_for_the_late_one(n1: Machine) -> None:
    # Active units are answered by one systemctl call; a late one is waited for, and a
    # failed one fails the wait with its journal, as wait_for_unit does.
    n1.succeed("systemd-run --unit=early-one -p Type=oneshot -p RemainAfterExit=yes true")
    n1.succeed(
        "systemd-run --unit=late-one --no-block -p Type=oneshot -p RemainAfterExit=yes sleep 2"
    )
    wait_for_units(n1, ["multi-user.target", "early-one.service", "late-one.service"], 60)
    n1.succeed("systemctl is-active --quiet late-one.service")
    n1.succeed(
        "systemd-run --unit=doomed-two --no-block -p Type=oneshot"
        " sh -c 'sleep 1; echo doom-marker-43; exit 3'"
    )
    with pytest.raises(TestFailure, match="(?s)doomed-two.*failed.*doom-marker-43"):
        wait_for_units(n1, ["early-one.service", "doomed-two.service"], 60)
    n1.succeed("systemctl reset-failed doomed-two.service")


def test_systemctl_start_stop_job(n1: Machine) -> None:
    n1.succeed(
        "mkdir -p /run/systemd/system && printf '[Service]\\nExecStart=/bin/sleep 1000\\n' "
        "> /run/systemd/system/sleeper.service && systemctl daemon-reload"
    )
    assert n1.start_job("sleeper")[0] == 0
    n1.wait_for_unit("sleeper")
    assert n1.stop_job("sleeper")[0] == 0
    n1.require_unit_state("sleeper", "inactive")
    assert n1.systemctl("is-active sleeper")[1].strip() == "inactive"


def test_tcp_udp_unix_port_waits(n1: Machine) -> None:
    n1.succeed("(sleep 1; exec nc -l 7777) >/dev/null 2>&1 &")
    n1.wait_for_open_port(7777, timeout=30)
    n1.succeed("(sleep 1; exec nc -u -l 7778) >/dev/null 2>&1 &")
    n1.wait_for_open_port(7778, protocol="udp", timeout=30)
    n1.succeed("pkill -f 'nc -u -l 7778'")
    n1.wait_for_closed_port(7778, protocol="udp", timeout=30)
    n1.succeed("(exec nc -lU /run/test.sock) >/dev/null 2>&1 &")
    n1.wait_for_open_unix_socket("/run/test.sock", timeout=30)
    with pytest.raises(TestFailure):
        n1.wait_for_open_port(7779, timeout=1)


def test_copy_both_ways_keeps_content_and_mode(n1: Machine, tmp_path: Path) -> None:
    source = tmp_path / "tool.sh"
    source.write_bytes(b"#!/bin/sh\necho copied\nexit 0\n\x00\xff binary tail\n")
    source.chmod(0o750)
    n1.copy_from_host(source, "/opt/photon/tool.sh")
    assert n1.succeed("stat -c %a /opt/photon/tool.sh").strip() == "750"
    assert n1.succeed("/opt/photon/tool.sh") == "copied\n"
    n1.succeed("mkdir -p /var/tmp/d && echo payload > /var/tmp/d/f && chmod 604 /var/tmp/d/f")
    back = n1.copy_from_vm("/var/tmp/d", "fromvm")
    assert (back / "f").read_text() == "payload\n"
    assert stat.S_IMODE((back / "f").stat().st_mode) == 0o604
    file_back = n1.copy_from_vm("/opt/photon/tool.sh")
    assert file_back.read_bytes() == source.read_bytes()


def test_wait_for_file(n1: Machine) -> None:
    n1.succeed("rm -f /tmp/appears; (sleep 2; touch /tmp/appears) >/dev/null 2>&1 &")
    started = time.monotonic()
    n1.wait_for_file("/tmp/appears", timeout=30)
    assert time.monotonic() - started >= 1.5  # it waited for the file ...
    n1.succeed("test -e /tmp/appears")  # ... which is there now
    with pytest.raises(
        TestFailure, match="action timed out after 1s: file /tmp/never-appears did not appear"
    ):
        n1.wait_for_file("/tmp/never-appears", timeout=1)


def test_console(n1: Machine) -> None:
    assert "photon-backdoor: ready" in n1.get_console_log()
    n1.succeed("(sleep 1; echo photon-console-marker-7 > /dev/ttyS0) >/dev/null 2>&1 &")
    assert n1.wait_for_console_text(r"console-marker-\d", timeout=30) == "console-marker-7"
    with pytest.raises(TestFailure):
        n1.wait_for_console_text("never-printed-xyz", timeout=1)


def test_monitor_screenshot_keys(n1: Machine) -> None:
    assert "running" in n1.send_monitor_command("info status")
    status = n1.send_qmp_command("query-status")
    assert isinstance(status, dict) and status["running"] is True
    shot = n1.screenshot("node01-screen")
    assert shot.read_bytes().startswith(b"\x89PNG")
    n1.succeed("chvt 1 || true")
    n1.succeed("(timeout 20 head -n1 /dev/tty1 > /tmp/typed) >/dev/null 2>&1 &")
    n1.sleep(1)
    n1.send_chars("Hello-1\n")
    n1.wait_until_succeeds("grep -q Hello-1 /tmp/typed", timeout=20)


def test_block_unblock_seen_from_peer(n1: Machine, n2: Machine) -> None:
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=60)
    n2.block()
    try:
        n1.fail("ping -c2 -W1 node02")
    finally:
        n2.unblock()
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=30)


def test_tcp_service_by_hostname_over_vlan(n1: Machine, n2: Machine) -> None:
    n2.succeed("(exec nc -l 9999 > /tmp/received) >/dev/null 2>&1 &")
    n2.wait_for_open_port(9999, timeout=30)
    n1.succeed("echo hello-over-vlan | nc -N node02 9999")
    n2.wait_until_succeeds("grep -q hello-over-vlan /tmp/received", timeout=30)


def test_http_metrics_and_forward_port(n1: Machine, n2: Machine) -> None:
    n2.succeed(
        "mkdir -p /srv/www && printf '# TYPE up gauge\\nup{job=\"x\"} 1\\nreqs_total 42\\n' "
        "> /srv/www/metrics && (busybox httpd -p 8000 -h /srv/www) && sleep 0.2"
    )
    n2.wait_for_open_port(8000, timeout=30)
    metrics = n1.scrape_metrics("http://node02:8000/metrics")
    assert metrics.get("up", job="x") == 1.0 and metrics.get("reqs_total") == 42.0
    assert n1.http_get("http://node02:8000/nothing", expect_status=404).status == 404
    from driver.run.ports import free_port

    port = free_port()
    n2.forward_port(port, 8000)
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert b"reqs_total 42" in reply.read()


def test_check_endpoints_probes_all_at_once_and_names_what_fails(n1: Machine, n2: Machine) -> None:
    from driver.config.topology import Endpoint, Service
    from driver.scripting.probes import check_endpoints

    # The servers come up 3 s late: every probe retries until it answers.
    n2.succeed(
        "mkdir -p /srv/probe && printf '# TYPE up gauge\\nup 1\\nreqs_total 7\\n' "
        "> /srv/probe/metrics && echo ok > /srv/probe/health && echo '<html>' > /srv/probe/bad"
        " && ((sleep 3; busybox httpd -p 8021 -h /srv/probe) >/dev/null 2>&1 &)"
        " && ((sleep 3; exec nc -u -l 7791) >/dev/null 2>&1 &)"
    )
    machines = {"node01": n1, "node02": n2}
    http = Endpoint("health", 8021, "http", "/health")
    metrics = Endpoint("metrics", 8021, "metrics", "/metrics")
    service = Service(
        "probe-me", "x.service", ("node02",), (http, metrics, Endpoint("tcp", 8021, "tcp"))
    )
    dns = Service("dns", "y.service", ("node02",), (Endpoint("dns", 7791, "udp"),))
    assert check_endpoints([service, dns], machines, n1, timeout=30) == [
        "http://node02:8021/health answered",
        "http://node02:8021/metrics exposes 2 samples",
        "tcp node02:8021 accepts connections",
        "udp node02:7791 listening",
    ]
    # Two endpoints that never answer: side by side they share one 3 s deadline (one after
    # the other would be 6 s), and the failure names both with curl's last words.
    closed = Service(
        "closed",
        "z.service",
        ("node02",),
        (Endpoint("a", 8029, "http", "/"), Endpoint("b", 8028, "tcp"), http),
    )
    started = time.monotonic()
    with pytest.raises(TestFailure) as failed:
        check_endpoints([closed], machines, n1, timeout=3)
    assert time.monotonic() - started < 5.5
    assert str(failed.value).startswith(
        "node01: no answer within 3s from http://node02:8029/ (curl: (7) "
    )
    assert "; tcp node02:8028 (" in str(failed.value) and "8021" not in str(failed.value)
    bad = Service("bad", "z.service", ("node02",), (Endpoint("m", 8021, "metrics", "/bad"),))
    with pytest.raises(TestFailure, match="http://node02:8021/bad: not Prometheus text"):
        check_endpoints([bad], machines, n1, timeout=10)
    n2.succeed("pkill -f 'httpd -p 8021'; pkill -f 'nc -u -l 7791'")


def test_ssh_through_forward(n1: Machine) -> None:
    n1.wait_for_unit("ssh.service", timeout=60)
    assert n1.ssh("hostname").strip() == "node01"
    # Right after boot the backdoor answers before sshd listens: ssh waits for it instead
    # of meeting the port forward with nothing behind it ("Connection reset by peer").
    # A transient timer fires up to AccuracySec= (default 1 min) late: this one, on time.
    n1.succeed(
        "systemctl stop ssh.service && systemd-run --on-active=4 "
        "--timer-property=AccuracySec=100ms systemctl start ssh"
    )
    n1.wait_for_closed_port(22, timeout=30)
    assert n1.ssh("hostname").strip() == "node01"


def test_dies_during_wait_is_an_error_within_two_seconds(two_nodes: Driver) -> None:
    node = two_nodes.machine("node02")
    pid = node.pid
    assert pid is not None
    threading.Timer(1.0, lambda: os.kill(pid, 9)).start()
    started = time.monotonic()
    with pytest.raises(MachineDied, match="node02: QEMU exited"):
        node.wait_until_succeeds("false", timeout=120)
    assert time.monotonic() - started < 1.0 + 2.0
    node.start()
    node.connect()
    node.succeed("echo 'back' > /dev/null")
    with pytest.raises(MachineDied, match="node02: QEMU exited .*Kernel panic"):
        node.execute("echo c > /proc/sysrq-trigger", check_return=False)
        node.wait_until_succeeds("false", timeout=60)


def test_lifecycle_shutdown_start_reboot_crash(two_nodes: Driver) -> None:
    node = two_nodes.machine("node02")
    node.start()
    node.connect()
    first_boot = node.succeed("cat /proc/sys/kernel/random/boot_id")
    node.succeed("echo persisted > /var/tmp/keep && sync")
    node.reboot()
    assert node.is_up()
    assert node.succeed("cat /proc/sys/kernel/random/boot_id") != first_boot
    assert node.succeed("cat /var/tmp/keep") == "persisted\n"
    node.shutdown()
    assert not node.is_up() and not node.is_running()
    node.start()
    node.connect()
    node.crash()
    assert not node.is_running()
    assert node.exit_status == 0  # QEMU quit through QMP: not killed by a signal
    node.start()
    node.wait_for_unit("multi-user.target", timeout=120)


def test_driver_helpers(two_nodes: Driver, n1: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    two_nodes.wait_for_all_booted()
    lines = iter(["hostname", "echo interact-$((6 * 7))", "exit"])
    capsys.readouterr()
    n1.shell_interact(read_line=lambda prompt: next(lines))
    assert capsys.readouterr().out == "node01\ninteract-42\n"
    calls: list[float | None] = []
    retry(lambda remaining: calls.append(remaining) or len(calls) == 2, timeout_seconds=30)
    assert len(calls) == 2 and all(c is not None and 0 < c <= 30 for c in calls)
    polling = two_nodes.polling
    with polling.polling_condition(lambda: n1.execute("true")[0] == 0, seconds_interval=0.2):
        n1.sleep(0.5)
    with pytest.raises(TestFailure, match="Polling condition failed: never"):
        with polling.polling_condition(lambda: False, seconds_interval=0.1, description="never"):
            n1.sleep(0.5)
    with pytest.raises(TestFailure, match="action timed out"):
        retry(lambda remaining: False, timeout_seconds=1)


def test_serial_stdout_off_and_on(two_nodes: Driver, n1: Machine) -> None:
    stream = io.StringIO()
    original, two_nodes.logger.stream = two_nodes.logger.stream, stream
    try:
        two_nodes.serial_stdout_off()
        n1.succeed("echo serial-marker-off > /dev/ttyS0")
        n1.wait_for_console_text("serial-marker-off", timeout=30)
        # Switching back on streams what came before as it was (hidden) first.
        two_nodes.serial_stdout_on()
        n1.succeed("echo serial-marker-on > /dev/ttyS0")
        n1.wait_for_console_text("serial-marker-on", timeout=30)
        with contextlib.suppress(TimeoutError):  # the streamer polls vm.log every 0.2 s
            wait_until(lambda: "node01 # serial-marker-on" in stream.getvalue(), 10, 0.1)
    finally:
        two_nodes.logger.stream = original
    assert "node01 # serial-marker-on" in stream.getvalue()
    assert "node01 # serial-marker-off" not in stream.getvalue()


def test_backdoor_runs_with_only_its_units_path(n1: Machine) -> None:
    # NixOS shape (tests/nixos_shape.py): no FHS bin dirs but /bin/sh and /usr/bin/env.
    # Commands get the login environment (/etc/profile's PATH) with the unit's PATH after it.
    assert n1.succeed("echo $PATH").strip().split(":")[-1] == "/opt/nixlike/bin"
    assert n1.succeed("command -v systemctl timeout mkfifo").split() == [
        "/opt/nixlike/bin/systemctl",
        "/opt/nixlike/bin/timeout",
        "/opt/nixlike/bin/mkfifo",
    ]
    assert sorted(n1.succeed("ls /usr/bin").split()) == ["env", "sh"]
    n1.fail("test -e /usr/sbin/sshd")


def test_output_is_byte_exact(n1: Machine) -> None:
    assert n1.execute("printf 'a\\0b'") == (0, "a\x00b")
    assert n1.execute_bytes("printf '\\0\\377x\\0\\0'") == (0, b"\x00\xffx\x00\x00")
    result = n1.run("printf 'e\\0\\n' >&2; printf 'tail\\n\\n'")
    assert (result.stdout, result.stderr_bytes) == ("tail\n\n", b"e\x00\n")
    big = n1.execute_bytes(
        "head -c 3000000 /dev/urandom | tee /tmp/big | sha256sum >&2; cat /tmp/big"
    )
    digest = n1.succeed("sha256sum < /tmp/big").split()[0]
    assert hashlib.sha256(big[1]).hexdigest() == digest and len(big[1]) == 3_000_000


def test_background_child_does_not_hold_the_reply(n1: Machine) -> None:
    started = time.monotonic()
    # The classic mistake: a daemon started in the background without redirecting output.
    n1.succeed("nc -l 9931 & sleep 1001 &", timeout=30)
    assert time.monotonic() - started < 5.0
    n1.wait_for_open_port(9931, timeout=30)
    n1.succeed("pkill -f 'sleep 1001'; pkill -f 'nc -l 9931'")


def test_timed_out_command_is_killed_and_the_node_answers(n1: Machine) -> None:
    with pytest.raises(
        CommandTimeout,
        match=r"node01: command `sleep 1002 & sleep 1003` failed \(exit 124\): timed out after 3",
    ):
        n1.succeed("sleep 1002 & sleep 1003", timeout=3)
    started = time.monotonic()
    n1.succeed("true")
    assert time.monotonic() - started < 1.0
    n1.fail("pgrep -f 'sleep 100[23]'")  # the whole process group is gone


def test_deadlines_ignore_wall_clock_steps(n1: Machine, two_nodes: Driver) -> None:
    # The guest measures a command's deadline on the boot clock: a wall-clock step (date -s,
    # clock_skew, a restored snapshot) neither ends a command early nor logs errors.
    # Synced first: an earlier test may have left the guest clock off by seconds.
    node = two_nodes.node(n1)
    step_clock(node, "before test_deadlines_ignore_wall_clock_steps")
    try:
        result = n1.run("date -s @$(( $(date +%s) + 3600 )) >/dev/null; sleep 1; echo done", 30)
        assert (result.status, result.stdout, result.timed_out) == (0, "done\n", False)
        n1.succeed("sleep 0.5")  # no deadline at all (timeout None)
    finally:
        offset = step_clock(node, "test_deadlines_ignore_wall_clock_steps")
    assert 3590 < -offset < 3610
    assert "invalid integer" not in n1.get_console_log()


def test_exec_and_exit_in_a_command(n1: Machine) -> None:
    started = time.monotonic()
    assert n1.execute("exec true") == (0, "")
    assert n1.execute("echo x; exit 7") == (7, "x\n")
    assert time.monotonic() - started < 3.0


def ping_ms(source: Machine, target: str) -> float:
    output = source.succeed(f"ping -c1 -W3 {target}")
    return float(output.split("time=")[1].split()[0])


def test_partition_seen_from_both_sides_and_healed(
    two_nodes: Driver, n1: Machine, n2: Machine
) -> None:
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=60)
    with two_nodes.faults.partition([n1], [n2]) as fault:
        n1.fail("ping -c1 -W1 node02")
        n2.fail("ping -c1 -W1 node01")
        assert two_nodes.faults.active == [fault]
    assert two_nodes.faults.active == []
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=30)
    n2.succeed("ping -c1 -W1 node01")
    assert converges("hostname | cut -c1-4", [n1, n2], within=30) == "node"


def test_partition_outlives_a_networkd_start(two_nodes: Driver, n1: Machine, n2: Machine) -> None:
    # networkd drops foreign routes when it starts; the backdoor answers before it does, so a
    # partition laid in early in boot (or across a networkd restart) must not be dropped.
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=60)
    with two_nodes.faults.partition([n1], [n2]):
        n1.succeed("systemctl restart systemd-networkd", timeout=60)
        n1.wait_for_unit("systemd-networkd", timeout=60)
        assert "blackhole" in n1.succeed("ip route show type blackhole")
        n1.fail("ping -c1 -W1 node02")
    assert two_nodes.faults.active == []
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=30)


def test_every_fault_is_undone_after_a_failing_block(
    two_nodes: Driver, n1: Machine, n2: Machine
) -> None:
    faults = two_nodes.faults
    with pytest.raises(RuntimeError, match="the block fails"):
        with faults.delay(n1, n2, 400), faults.disk_full(n1, "/var/tmp"):
            with faults.clock_skew(n2, 3600), faults.loss(n1, n2, 0.1):
                assert ping_ms(n1, "node02") > 700  # 400 ms each way
                n1.fail("echo x > /var/tmp/more")
                assert float(n2.succeed("date +%s")) - time.time() > 3500
                raise RuntimeError("the block fails")
    assert faults.active == []
    assert ping_ms(n1, "node02") < 300
    n1.succeed("echo x > /var/tmp/more && rm /var/tmp/more")
    assert abs(float(n2.succeed("date +%s")) - time.time()) < 30
    with faults.pause(n2):
        n1.fail("ping -c1 -W2 node02")  # a frozen VM answers nothing
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=30)
    faults.loss(n1, n2, 100)
    n1.fail("ping -c1 -W1 node02")
    two_nodes.undo_faults()  # what the driver does before a health scan or at exit
    n1.wait_until_succeeds("ping -c1 -W1 node02", timeout=30)


def test_snapshot_and_restore_keep_a_tcp_connection_and_files(
    two_nodes: Driver, n1: Machine, n2: Machine
) -> None:
    n2.succeed("rm -f /tmp/got; (exec nc -l 9955 > /tmp/got) >/dev/null 2>&1 &")
    n2.wait_for_open_port(9955, timeout=30)
    # One long-lived connection node01 -> node02, fed through a fifo that a sleeper holds.
    n1.succeed(
        "rm -f /tmp/tx; mkfifo /tmp/tx; (sleep 100000 > /tmp/tx &) ; "
        "(nc node02 9955 < /tmp/tx > /dev/null 2>&1 &)"
    )
    n1.succeed("echo before > /tmp/tx")
    n2.wait_until_succeeds("grep -qx before /tmp/got", timeout=30)
    n1.succeed("echo kept > /var/tmp/snapshot-file && sync")
    uptime = float(n1.succeed("cut -d' ' -f1 /proc/uptime"))
    pids = [n1.pid, n2.pid]
    two_nodes.snapshot("two-nodes")
    n1.succeed("rm /var/tmp/snapshot-file; echo after-snapshot > /var/tmp/later && sync")
    time.sleep(5)  # the guests' clocks must not believe no time passed
    two_nodes.restore("two-nodes")
    # The monotonic clock goes on from the snapshot (no jump by the 5 s and more since it,
    # which fires every timer at once); the wall clock is stepped to the host's.
    assert float(n1.succeed("cut -d' ' -f1 /proc/uptime")) - uptime < 4.0
    assert [n1.pid, n2.pid] != pids  # restored by fresh QEMUs
    journal = n1.succeed("journalctl -b -t photon-driver --no-pager -o cat")
    assert "after restoring snapshot two-nodes" in journal
    assert n1.succeed("cat /var/tmp/snapshot-file") == "kept\n"
    n1.fail("test -e /var/tmp/later")
    for node in (n1, n2):
        assert abs(float(node.succeed("date +%s.%N")) - time.time()) < 2.0
    n1.succeed("echo after-restore > /tmp/tx")  # the same TCP connection, still open
    n2.wait_until_succeeds("grep -qx after-restore /tmp/got", timeout=30)
    with pytest.raises(TestFailure, match="no snapshot 'missing'"):
        two_nodes.restore("missing")


def test_fork_bomb_times_out_and_the_node_answers(n2: Machine) -> None:
    n2.start()
    n2.connect()
    with pytest.raises(CommandTimeout, match="node02: .* timed out after 5"):
        n2.succeed("bomb() { bomb | bomb; }; bomb", timeout=5)
    started = time.monotonic()
    n2.succeed("true")
    assert time.monotonic() - started < 1.0
    # execute() keeps the NixOS meaning: status 124, no exception.
    assert n2.execute("sleep 1004", timeout=2)[0] == 124


def test_join_all_waits_for_every_machine_to_shut_down(two_nodes: Driver) -> None:
    for machine in two_nodes.machines:
        machine.start()
        machine.connect()
        machine.execute("systemctl poweroff --no-block", check_output=False)
    two_nodes.join_all(timeout=120)
    assert not any(m.is_running() for m in two_nodes.machines)
