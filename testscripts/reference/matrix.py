# Reference composed scenarios (the seed's `matrix`), the same compositions as
# testscripts/matrix.py with the reference profile's real services.
start_all()
for node in machines:
    node.wait_for_unit("multi-user.target", timeout=300)

with subtest("network + DNS + load balancer (prismnet + flashdns + fiberlb shape)"):
    lb = node04.succeed("dig +short @node01 lb.photon.test").strip()
    t.assertEqual(lb, "10.100.0.11")
    seen = {node05.succeed(f"curl -fsS http://{lb}:8080/").strip() for _ in range(4)}
    t.assertEqual(seen, {"backend node04", "backend node05"})

with subtest("block export attached on a worker (coronafs shape)"):
    node04.wait_for_unit("photon-nbd-export.service", timeout=300)
    node01.wait_for_unit("photon-nbd-export.service", timeout=300)
    node04.succeed("modprobe nbd nbds_max=4; nbd-client -d /dev/nbd3 >/dev/null 2>&1 || true")
    node04.succeed("nbd-client node01 10809 /dev/nbd3 -N photon -b 4096")
    node04.succeed(
        "echo matrix-block-data | dd of=/dev/nbd3 bs=4k conv=sync oflag=direct status=none"
    )
    t.assertIn(
        "matrix-block-data",
        node04.succeed("dd if=/dev/nbd3 bs=4k count=1 iflag=direct status=none | tr -d '\\0'"),
    )
    node04.succeed("nbd-client -d /dev/nbd3")

with subtest("replicated store behind the gateway (k8shost-style API bundle)"):
    node01.succeed("ETCDCTL_API=3 etcdctl put photon/matrix via-gateway")
    body = node06.host_http_get(80, "/etcd/version").body
    t.assertIn("etcdserver", body)

with subtest("gateway-mediated observability (nightlight + creditservice shape)"):
    t.assertIn("Healthy", node06.host_http_get(80, "/prometheus/-/healthy").body)
