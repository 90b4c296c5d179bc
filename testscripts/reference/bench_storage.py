# Reference storage benchmark (the seed's `bench-storage`): block export from a control node
# (qemu-nbd on node01, the CoronaFS controller-export stand-in) vs the worker's local export
# (qemu-nbd on node04), fio with direct I/O, plus worker-side attach ("materialisation")
# latency. Writes storage-benchmarks.md with a PNG chart and the raw JSON to the run's
# output directory (-o; `-o docs` regenerates the committed report).
import time

from driver.scripting.storagebench import FIO_JOBS, fio_command, parse_fio, write_report

nbd = profile.service("qemu-nbd-export").endpoint("nbd")
targets = {
    "controller export (node01)": ("node01", "/dev/nbd0"),
    "local export (node04)": ("127.0.0.1", "/dev/nbd1"),
}
measurements = []
extra = {}

with subtest("block exports up"):
    start_all()
    for node in (node01, node04):
        node.wait_for_unit("photon-nbd-export.service", timeout=300)
        node.wait_for_open_port(nbd.port, timeout=60)
    node04.succeed("modprobe nbd nbds_max=4")

with subtest("worker-side materialisation latency"):
    for label, (host, device) in targets.items():
        node04.execute(f"nbd-client -d {device}")
        started = time.monotonic()
        node04.succeed(
            f"nbd-client {host} {nbd.port} {device} -N photon -b 4096 && "
            f"dd if={device} of=/dev/null bs=4k count=1 iflag=direct status=none"
        )
        extra[f"attach + first read, {label} (s)"] = round(time.monotonic() - started, 3)

with subtest("fio: controller export vs local export"):
    for label, (_, device) in targets.items():
        for job, rw, block_size in FIO_JOBS:
            output = node04.succeed(fio_command(device, rw, block_size), timeout=120)
            measurements.append(parse_fio(label, job, output))
            log(f"{label} {job}: {measurements[-1].bandwidth_mib_s:.1f} MiB/s")

with subtest("LightningStor-style S3 object throughput"):
    skip("the reference profile has no S3 object store stand-in: not measured")

with subtest("report"):
    for _, device in targets.values():
        node04.execute(f"nbd-client -d {device}")
    accel = machines[0].accel.name if machines[0].accel else "unknown"
    report = driver.out_dir / "storage-benchmarks.md"
    for path in write_report(
        measurements, extra, "Reference block export benchmark", accel, report
    ):
        log(f"wrote {path}")
