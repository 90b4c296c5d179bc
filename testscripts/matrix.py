# PhotonCloud composed scenarios (the seed's `matrix`). Ports and CLIs from nodes/cluster.toml.
from driver.scripting.endpoints import probe_endpoint
from driver.scripting.photoncloud import cli

start_all()
for node in machines:
    node.wait_for_unit("multi-user.target", timeout=300)

with subtest("prismnet + flashdns + fiberlb"):
    dns = profile.service("flashdns")
    answer = node04.succeed(
        f"{cli(profile, 'flashdns', 'query')} -p {dns.endpoint('dns').port} node01"
    )
    t.assertTrue(answer.strip(), "flashdns answered nothing")
    log(probe_endpoint(node06, "node01", profile.service("fiberlb").endpoint("api")))

with subtest("PrismNet-backed VM hosting: plasmavmc + prismnet + coronafs + lightningstor"):
    node04.succeed(cli(profile, "plasmavmc", "create_vm", "matrix-vm"))
    node04.wait_until_succeeds(f"{cli(profile, 'prismnet', 'ports')} | grep -q matrix-vm", 120)
    log(probe_endpoint(node04, "node04", profile.service("coronafs").endpoint("export")))
    log(probe_endpoint(node04, "node04", profile.service("lightningstor").endpoint("s3")))
    node04.succeed(cli(profile, "plasmavmc", "delete_vm", "matrix-vm"))

with subtest("Kubernetes-style hosting bundle: k8shost"):
    log(probe_endpoint(node06, "node01", profile.service("k8shost").endpoint("api")))

with subtest("API-gateway-mediated nightlight and creditservice"):
    gateway = profile.service("apigateway").endpoint("http")
    node06.host_http_get(gateway.port, gateway.path)
    node06.succeed(cli(profile, "creditservice", "iam_status"))
