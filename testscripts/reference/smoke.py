# Reference smoke: PhotonCloud's validation layers against real open-source services from
# Debian in the same six-node shape (profile "reference"). Every port and path comes from
# nodes/cluster.toml. Runs against a fresh cluster or, with --reuse, a running one.
import json

from driver.parallel import on_each
from driver.scripting.clients import ETCDCTL, PSQL
from driver.scripting.endpoints import (
    boot_and_wait_for_units,
    check_endpoints,
    nested_guest_script,
)

nodes = {m.name: m for m in machines}
control = [nodes[n] for n in ("node01", "node02", "node03")]
workers = [nodes[n] for n in ("node04", "node05")]
etcdctl, psql = ETCDCTL, PSQL

with subtest("boot and unit readiness"):
    boot_and_wait_for_units(start_all, machines, profile)

with subtest("control-plane formation: etcd Raft and PostgreSQL replication"):
    # Checks on different nodes run at once (on_each: one thread per node).
    seen = on_each(
        control, lambda n: n.wait_until_succeeds(f"{etcdctl} member list | grep -c started", 120)
    )
    for node, members in zip(control, seen, strict=True):
        t.assertEqual(members.strip(), "3", f"{node.name} sees {members.strip()} members")
    standbys = node01.wait_until_succeeds(
        f"{psql} \"select count(*) from pg_stat_replication where state = 'streaming'\""
        " | grep -qx 2 && echo 2",
        180,
    )
    t.assertEqual(standbys.strip(), "2")
    recovering = on_each(
        [node02, node03], lambda n: n.succeed(f"{psql} 'select pg_is_in_recovery()'")
    )
    t.assertEqual([r.strip() for r in recovering], ["t", "t"])

with subtest("protocol surfaces: every declared endpoint answers"):
    for line in check_endpoints(profile.services, nodes, node06):
        log(line)
    # Both lookups in one command: a node's name from node01, the gateway's from node02.
    node05_answer, gateway_answer = node04.succeed(
        "dig +short +time=2 @node01 node05.photon.test; echo --;"
        " dig +short +time=2 @node02 gateway.photon.test"
    ).split("--\n")
    # node05's address on the cluster VLAN: eth1 (eth0 is QEMU's user-mode NIC, as on NixOS).
    cluster_address = node05.succeed("set -- $(ip -4 -br addr show dev eth1); echo ${3%/*}")
    t.assertEqual(node05_answer.strip(), cluster_address.strip())
    t.assertEqual(gateway_answer.strip(), "10.100.0.31")

with subtest("replicated state: write once, read everywhere"):
    node01.succeed(f"{etcdctl} put photon/smoke converged-$(hostname)")
    values = on_each(
        [node02, node03],
        lambda n: n.wait_until_succeeds(f"{etcdctl} get --print-value-only photon/smoke", 30),
    )
    t.assertEqual([v.strip() for v in values], ["converged-node01"] * 2)
    node01.succeed(
        f"{psql} 'create table if not exists smoke (v text)'"
        " -c \"insert into smoke values ('row-from-primary')\""
    )
    on_each(
        [node02, node03],
        lambda n: n.wait_until_succeeds(
            f"{psql} 'select v from smoke' | grep -q row-from-primary", 60
        ),
    )

with subtest("load balancing: haproxy spreads over both worker backends"):
    # Six requests through the frontend in one command, one answer per line, until both
    # backends have answered: haproxy takes a backend in after two good checks 2 s apart,
    # and a worker may have come up just now (its control plane as containers, the smoke
    # can get here seconds after the workers' boot).
    answers = node01.wait_until_succeeds(
        "out=$(for i in 1 2 3 4 5 6; do curl -fsS http://127.0.0.1:8080/; echo; done);"
        ' echo "$out"; grep -q \'backend node04\' <<<"$out"; grep -q \'backend node05\' <<<"$out"',
        60,
    )
    seen = {line.strip() for line in answers.splitlines() if line.strip()}
    t.assertEqual(seen, {"backend node04", "backend node05"})

with subtest("worker virtualisation: nested guest in each worker"):
    # Both workers boot their nested guest at once (one thread each); each command answers
    # with the guest's exit status, its output and the end of the nested guest's console.
    boot_nested = (
        f"rc=0; (\n{nested_guest_script()}\n) > /tmp/nested.out 2>&1 || rc=$?;"
        " cat /tmp/nested.out; tail -n 5 /tmp/inner.log 2>/dev/null || true; exit $rc"
    )
    booted = on_each(workers, lambda w: w.execute(boot_nested, timeout=300))
    for worker, (status, output) in zip(workers, booted, strict=True):
        t.assertEqual(status, 0, f"{worker.name}: nested guest failed:\n{output}")
        accel = "kvm" if "accel=kvm" in output else "tcg"
        log(
            f"{worker.name}: nested guest booted with {accel}"
            + ("" if accel == "kvm" else " (no /dev/kvm in the worker: TCG inner guest)")
        )

with subtest("gateway and observability: Prometheus scrapes every exporter"):

    def all_targets_up(last_try):
        raw = node06.succeed("curl -fsS http://127.0.0.1:9090/api/v1/targets")
        targets = json.loads(raw)["data"]["activeTargets"]
        up = [x for x in targets if x["health"] == "up"]
        if last_try:
            log(f"targets: {[(x['scrapeUrl'], x['health']) for x in targets]}")
        return len(targets) == 9 and len(up) == 9

    retry(all_targets_up, timeout_seconds=120)

with subtest("external entry points: gateway and Prometheus from the host"):
    t.assertEqual(node06.host_http_get(80, "/health").body.strip(), "ok")
    t.assertIn("backend node0", node06.host_http_get(80, "/lb/").body)
    t.assertIn("Healthy", node06.host_http_get(9090, "/-/healthy").body)
