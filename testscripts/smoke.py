# PhotonCloud smoke: the validation layers against PhotonCloud's own services (profile
# "photoncloud", built by the flake). Ports, paths and CLIs come from nodes/cluster.toml.
from driver.scripting.endpoints import (
    boot_and_wait_for_units,
    check_endpoints,
    nested_guest_script,
)
from driver.scripting.photoncloud import cli, members_seen, put_then_read_everywhere

nodes = {m.name: m for m in machines}
control = [node01, node02, node03]
workers = [node04, node05]

with subtest("boot and unit readiness"):
    boot_and_wait_for_units(start_all, machines, profile)

with subtest("control-plane formation: chainfire, flaredb, iam"):
    for service in ("chainfire", "flaredb", "iam"):
        for node in control:
            node.wait_until_succeeds(
                f"{cli(profile, service, 'members')} | grep -c . | grep -qx 3", 120
            )
            t.assertEqual(members_seen(node, profile, service), 3)

with subtest(
    "control-plane health: prismnet, flashdns, fiberlb, plasmavmc, lightningstor, k8shost"
):
    for service in ("prismnet", "flashdns", "fiberlb", "plasmavmc", "lightningstor", "k8shost"):
        for name in profile.service(service).nodes:
            nodes[name].wait_for_unit(profile.service(service).unit, timeout=120)

with subtest("protocol surfaces: every declared endpoint answers"):
    for line in check_endpoints(profile.services, nodes, node06):
        log(line)

with subtest("replicated state: chainfire and flaredb"):
    for service in ("chainfire", "flaredb"):
        put_then_read_everywhere(node01, [node02, node03], profile, service, "photon/smoke", "v1")

with subtest("worker virtualisation: plasmavmc, prismnet ports, nested KVM"):
    for worker in workers:
        worker.wait_for_unit(profile.service("plasmavmc").unit)
        worker.wait_for_unit(profile.service("lightningstor").unit)
    node04.succeed(cli(profile, "plasmavmc", "create_vm", "smoke-vm"))
    node04.wait_until_succeeds(f"{cli(profile, 'prismnet', 'ports')} | grep -q smoke-vm", 120)
    node04.succeed(cli(profile, "plasmavmc", "delete_vm", "smoke-vm"))
    node04.wait_until_fails(f"{cli(profile, 'prismnet', 'ports')} | grep -q smoke-vm", 120)
    if any(
        w.execute("modprobe kvm_amd || modprobe kvm_intel; test -c /dev/kvm")[0] for w in workers
    ):
        skip("a worker has no /dev/kvm: nested KVM not available on this host")
    for worker in workers:
        t.assertIn("accel=kvm", worker.succeed(nested_guest_script()))

with subtest("gateway: apigateway, nightlight, creditservice connected to IAM"):
    for service in ("apigateway", "nightlight", "creditservice"):
        node06.wait_for_unit(profile.service(service).unit)
    node06.wait_until_succeeds(
        cli(profile, "creditservice", "iam_status") + " | grep -q connected", 60
    )
    node01.wait_until_succeeds("journalctl -u iam.service | grep -q creditservice", 60)

with subtest("external entry points: API gateway and NightLight from the host"):
    gateway = profile.service("apigateway").endpoint("http")
    nightlight = profile.service("nightlight").endpoint("http")
    node06.host_http_get(gateway.port, gateway.path)
    node06.host_http_get(nightlight.port, nightlight.path)
