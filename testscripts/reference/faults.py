# Reference faults (the seed's verbs plus `faults`): the replicated stores of the reference
# profile under partitions, pauses, packet loss and crashes, between named nodes. The same
# scenarios for PhotonCloud's chainfire and flaredb are in testscripts/faults.py.
from driver.scripting.clients import ETCDCTL, PSQL
from driver.scripting.endpoints import boot_and_wait_for_units

control = [node01, node02, node03]
etcdctl, psql = ETCDCTL, PSQL
revision = f"{etcdctl} endpoint status -w json | grep -o '\"revision\":[0-9]*'"

with subtest("cluster ready"):
    boot_and_wait_for_units(start_all, control, profile)
    for node in control:
        node.wait_until_succeeds(f"{etcdctl} endpoint health", 120)

with subtest("etcd: the majority writes, the minority refuses, all converge after heal"):
    with partition([node01], [node02, node03]):
        node02.wait_until_succeeds(f"{etcdctl} put photon/faults majority", 90)
        node01.fail(f"timeout 10 {etcdctl} --command-timeout=5s put photon/faults minority")
    value = converges(f"{etcdctl} get --print-value-only photon/faults", control, within=90)
    t.assertEqual(value, "majority")
    converges(revision, control, within=60)

with subtest("etcd: a paused member catches up after resume"):
    with pause(node03):
        node01.wait_until_succeeds(f"{etcdctl} put photon/paused while-paused", 60)
    value = converges(f"{etcdctl} get --print-value-only photon/paused", control, within=90)
    t.assertEqual(value, "while-paused")

with subtest("PostgreSQL: a standby catches up after a link flap with 30 % loss"):
    node01.succeed(f"{psql} 'create table if not exists faults (v int)'")
    with loss(node01, node02, 30):
        node02.block()
        node01.succeed(f"{psql} 'insert into faults select generate_series(1, 50)'")
        node02.unblock()
        node01.succeed(f"{psql} 'insert into faults select generate_series(51, 100)'")
    count = converges(f"{psql} 'select count(*) from faults'", [node01, node02], within=120)
    t.assertGreaterEqual(int(count), 100)

with subtest("etcd: a crashed member rejoins"):
    node03.crash()
    node01.wait_until_succeeds(f"{etcdctl} put photon/crash after-crash", 60)
    node03.start()
    node03.wait_for_unit("etcd.service", timeout=300)
    value = converges(f"{etcdctl} get --print-value-only photon/crash", control, within=120)
    t.assertEqual(value, "after-crash")
