# Bare nodes (profile "minimal", Debian or Nix images): every node boots, knows its own name
# and address, and reaches every other node by name over the cluster VLAN.
start_all()

with subtest("boot: multi-user on every node"):
    for machine in machines:
        machine.wait_for_unit("multi-user.target", timeout=300)

with subtest("identity: hostname and cluster address"):
    for machine in machines:
        t.assertEqual(machine.succeed("hostname").strip(), machine.name)
        address = topology.nodes[machine.name].address()
        t.assertIn(f"{address}/", machine.succeed("ip -o -4 addr show"))

with subtest("cluster VLAN: every node reaches every other by name"):
    for machine in machines:
        for other in machines:
            if other is not machine:
                machine.wait_until_succeeds(f"ping -c1 -W2 {other.name}", timeout=60)
