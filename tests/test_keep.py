"""``run --keep-on-failure`` on two real guests: a failing subtest stops the run and leaves
both nodes running as the profile's cluster; ssh and ``run --reuse`` work on it, and
``cluster stop`` leaves nothing. A passing run with the flag leaves nothing at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import photon_cli, photon_env, qemu_pids
from driver.images.builder import Image
from junit_schema import junit_cases

pytestmark = pytest.mark.vm

FAILING = """start_all()
with subtest("first"):
    node01.succeed("touch /tmp/was-here")
with subtest("breaks"):
    node02.succeed("touch /var/tmp/during-breaks")
    node02.succeed("echo EVIDENCE-ON-STDERR >&2; exit 7")
with subtest("never reached"):
    node01.succeed("true")
"""

# The backdoor shell's voluntary context switches over 3 s: a detached node's shell waits for
# a host in one blocking write to its port, so it does not wake (a poll would, many times).
BACKDOOR_WAKEUPS = (
    "p=$(systemctl show -p MainPID --value photon-backdoor.service); "
    "w() { awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$p/status; }; "
    "a=$(w); sleep 3; b=$(w); echo $((b - a))"
)


def test_keep_on_failure_leaves_a_usable_cluster(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    env = photon_env(xdg_cache, tmp_path / "vm")
    state = Path(f"{tmp_path / 'vm'}-minimal")
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    junit = tmp_path / "junit.xml"

    try:
        proc = photon_cli(
            env,
            "run",
            "--nodes",
            "node01,node02",
            "--keep-on-failure",
            "--junit-xml",
            str(junit),
            str(script),
            profile="minimal",
        )
        assert proc.returncode == 1, proc.stderr[-3000:]
        # One message: what failed (command output, the failing node), what to type next.
        assert proc.stderr.count("kept: the nodes stay up as the minimal cluster") == 1
        kept = proc.stderr[proc.stderr.index("kept: ") :]
        assert "failed on node02: breaks" in kept and "EVIDENCE-ON-STDERR" in kept
        assert "photon-driver --profile minimal ssh node02" in kept
        assert "run --reuse -I" in kept and "cluster stop" in kept
        assert 'restore("before:breaks")' in kept
        assert "never reached" not in proc.stderr
        cases = junit_cases(junit)
        assert cases["breaks"].find("failure") is not None

        record = json.loads((state / "cluster.json").read_text())
        assert sorted(record["nodes"]) == ["node01", "node02"]
        assert len(qemu_pids(str(state))) == 2

        ssh = photon_cli(env, "ssh", "node01", "--", "hostname", profile="minimal", timeout=120)
        assert ssh.returncode == 0 and ssh.stdout.strip() == "node01", ssh.stderr
        woke = photon_cli(env, "ssh", "node02", "--", BACKDOOR_WAKEUPS, profile="minimal")
        assert woke.returncode == 0 and int(woke.stdout.split()[-1]) <= 2, woke
        again = tmp_path / "again.py"
        again.write_text(
            "node01.succeed('test -e /tmp/was-here')\n"
            "node02.succeed('test -e /var/tmp/during-breaks')\n"
            # the kept nodes go back to where the failed subtest began
            "restore('before:breaks')\n"
            "node02.fail('test -e /var/tmp/during-breaks')\n"
            "node01.succeed('test -e /tmp/was-here')\n"
        )
        proc = photon_cli(env, "run", "--reuse", str(again), profile="minimal")
        assert proc.returncode == 0, proc.stderr[-3000:]

        proc = photon_cli(env, "cluster", "stop", profile="minimal", timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert qemu_pids(str(state)) == [] and not (state / "cluster.json").exists()

        # The same flag on a passing run: nothing stays.
        script.write_text("start_all()\nnode01.succeed('true')\n")
        proc = photon_cli(
            env, "run", "--nodes", "node01", "--keep-on-failure", str(script), profile="minimal"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "kept:" not in proc.stderr
        assert qemu_pids(str(state)) == [] and not (state / "cluster.json").exists()
    finally:
        photon_cli(env, "cluster", "clean", profile="minimal", timeout=300)
        assert qemu_pids(str(state)) == []
