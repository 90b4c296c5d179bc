# PhotonCloud storage benchmark (the seed's `bench-storage`): CoronaFS controller export vs
# node-local export, worker-side materialisation latency, LightningStor S3 object throughput.
# Ports come from nodes/cluster.toml; writes storage-benchmarks-photoncloud.md (+ PNG, JSON)
# to the run's output directory (-o).
import time

from driver.scripting.storagebench import FIO_JOBS, fio_command, parse_fio, write_report

export = profile.service("coronafs").endpoint("export")
s3 = profile.service("lightningstor").endpoint("s3")
targets = {
    "CoronaFS controller export (node01)": ("node01", "/dev/nbd0"),
    "CoronaFS local export (node04)": ("127.0.0.1", "/dev/nbd1"),
}
measurements = []
extra = {}

with subtest("exports up"):
    start_all()
    for node in (node01, node04):
        node.wait_for_unit(profile.service("coronafs").unit, timeout=300)
        node.wait_for_open_port(export.port, timeout=60)
    node04.succeed("modprobe nbd nbds_max=4")

with subtest("worker-side materialisation latency"):
    for label, (host, device) in targets.items():
        started = time.monotonic()
        node04.succeed(
            f"nbd-client {host} {export.port} {device} -b 4096 && "
            f"dd if={device} of=/dev/null bs=4k count=1 iflag=direct status=none"
        )
        extra[f"attach + first read, {label} (s)"] = round(time.monotonic() - started, 3)

with subtest("fio: controller export vs local export"):
    for label, (_, device) in targets.items():
        for job, rw, block_size in FIO_JOBS:
            measurements.append(
                parse_fio(
                    label, job, node04.succeed(fio_command(device, rw, block_size), timeout=120)
                )
            )

with subtest("LightningStor S3 large and small objects"):
    url = f"http://127.0.0.1:{s3.port}/bench"
    for label, size, count in (("large 64 MiB", "64M", 1), ("small 4 KiB", "4K", 200)):
        node04.succeed(f"head -c {size} /dev/urandom > /tmp/obj")
        started = time.monotonic()
        node04.succeed(
            f"for i in $(seq {count}); do curl -fsS -T /tmp/obj {url}/obj$i >/dev/null; done"
        )
        extra[f"S3 PUT {label}: seconds for {count}"] = round(time.monotonic() - started, 3)

with subtest("report"):
    for _, device in targets.values():
        node04.execute(f"nbd-client -d {device}")
    accel = node04.accel.name if node04.accel else "unknown"
    report = driver.out_dir / "storage-benchmarks-photoncloud.md"
    write_report(measurements, extra, "PhotonCloud storage benchmark", accel, report)
