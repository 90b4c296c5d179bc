# A NixOS-style test script that uses only the NixOS test driver's API, with the meanings
# that API has there (nixos/lib/test-driver). tests/test_nixos_semantics.py runs it.
start_all()
machine = node01

with subtest("execute, succeed and fail run under set -euo pipefail"):
    machine.wait_for_unit("multi-user.target")
    machine.fail("false | true")
    machine.fail("echo $UNSET_VARIABLE")
    machine.fail("false; true")
    t.assertEqual(machine.execute("echo out; exit 3"), (3, "out\n"))
    t.assertEqual(machine.execute("echo out; exit 3", check_return=False), (-1, "out\n"))
    t.assertEqual(machine.execute("sleep 100", check_output=False), (-2, ""))
    t.assertEqual(machine.execute("sleep 100", timeout=2)[0], 124)
    t.assertEqual(machine.succeed("echo a", "echo b"), "a\nb\n")

with subtest("waits"):
    machine.succeed("(sleep 1; touch /tmp/later) >/dev/null 2>&1 &")
    machine.wait_for_file("/tmp/later")
    t.assertEqual(machine.wait_until_succeeds("test -e /tmp/later && echo there"), "there\n")
    machine.wait_until_fails("test -e /tmp/never")
    machine.succeed("(exec nc -l 7000) >/dev/null 2>&1 &")
    machine.wait_for_open_port(7000)
    machine.succeed("pkill -f 'nc -l 7000'")
    machine.wait_for_closed_port(7000)

with subtest("systemd"):
    t.assertEqual(machine.get_unit_property("multi-user.target", "ActiveState"), "active")
    t.assertEqual(machine.get_unit_info("multi-user.target")["ActiveState"], "active")
    machine.require_unit_state("multi-user.target", "active")
    status, output = machine.systemctl("is-active multi-user.target")
    t.assertEqual((status, output.strip()), (0, "active"))

with subtest("files, console, tty, monitor"):
    import tempfile

    source = tempfile.NamedTemporaryFile("w", delete=False, suffix=".txt")
    source.write("copied via shell\n")
    source.close()
    machine.copy_from_host_via_shell(source.name, "/tmp/dir/copied.txt")
    t.assertEqual(machine.succeed("cat /tmp/dir/copied.txt"), "copied via shell\n")
    machine.succeed("echo nixos-console-marker > /dev/ttyS0")
    machine.wait_for_console_text("nixos-console-marker")
    machine.succeed("echo tty-marker-5 > /dev/tty1")
    machine.wait_until_tty_matches("1", "tty-marker-5")
    t.assertIn("tty-marker-5", machine.get_tty_text("1"))
    machine.send_monitor_command("stop")
    event = machine.wait_for_qmp_event(lambda e: e["event"] == "STOP", timeout=30)
    t.assertEqual(event["event"], "STOP")
    machine.send_monitor_command("cont")
    with machine.nested("a nested log block"):
        machine.log("inside")
    machine.sleep(1)
    try:
        machine.get_screen_text()
    except Exception as exc:
        t.assertIn("needs a graphical display", str(exc))
    else:
        raise AssertionError("get_screen_text should fail on a headless node")

with subtest("shutdown and join_all"):
    machine.shutdown()
    join_all()
    t.assertFalse(machine.is_up())
