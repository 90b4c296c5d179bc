# PhotonCloud faults: chainfire and flaredb (the 3-node replicated stores) under
# partitions, pauses and crashes between named nodes. Every CLI and endpoint comes from
# nodes/cluster.toml. NOT run here (no PhotonCloud packages): see README.
from driver.scripting.endpoints import boot_and_wait_for_units
from driver.scripting.photoncloud import cli

control = [node01, node02, node03]

with subtest("cluster ready"):
    boot_and_wait_for_units(start_all, control, profile)

for service in ("chainfire", "flaredb"):
    get = cli(profile, service, "get", "photon/faults")
    with subtest(f"{service}: the majority writes, the minority refuses, all converge"):
        with partition([node01], [node02, node03]):
            node02.wait_until_succeeds(
                cli(profile, service, "put", "photon/faults", "majority"), 90
            )
            node01.fail("timeout 10 " + cli(profile, service, "put", "photon/faults", "minority"))
        t.assertEqual(converges(get, control, within=90), "majority")

    with subtest(f"{service}: a paused member catches up after resume"):
        with pause(node03):
            node01.wait_until_succeeds(cli(profile, service, "put", "photon/faults", "paused"), 60)
        t.assertEqual(converges(get, control, within=90), "paused")

    with subtest(f"{service}: a crashed member rejoins"):
        node03.crash()
        node01.wait_until_succeeds(cli(profile, service, "put", "photon/faults", "crash"), 60)
        node03.start()
        node03.wait_for_unit(profile.service(service).unit, timeout=300)
        t.assertEqual(converges(get, control, within=120), "crash")
