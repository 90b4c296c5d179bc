# The local export across qemu-nbd cache/aio combinations on a worker (the seed's
# `bench-coronafs-local-matrix`, reference profile), marking the strongest profile.

from driver.scripting.storagebench import fio_command, parse_fio, strongest, write_report

COMBINATIONS = [
    ("none", "threads"),
    ("none", "native"),
    ("writeback", "threads"),
    ("directsync", "native"),
]
measurements = []

with subtest("matrix"):
    start_all()
    node04.wait_for_unit("multi-user.target", timeout=300)
    node04.succeed("systemctl stop photon-nbd-export.service; modprobe nbd nbds_max=4")
    try:
        node04.succeed(
            "mkdir -p /var/lib/photon-nbd && truncate -s 256M /var/lib/photon-nbd/matrix.img"
        )
        for cache, aio in COMBINATIONS:
            label = f"cache={cache},aio={aio}"
            node04.succeed(
                f"systemd-run --unit=nbd-matrix qemu-nbd --persistent --format=raw --port=10810 "
                f"--cache={cache} --aio={aio} --export-name=m /var/lib/photon-nbd/matrix.img"
            )
            node04.wait_for_open_port(10810, timeout=60)
            node04.succeed("nbd-client 127.0.0.1 10810 /dev/nbd2 -N m -b 4096")
            for job, rw in (("rand-read", "randread"), ("rand-write", "randwrite")):
                output = node04.succeed(fio_command("/dev/nbd2", rw, "4k", seconds=4), timeout=120)
                measurements.append(parse_fio(label, job, output))
            node04.succeed("nbd-client -d /dev/nbd2; systemctl stop nbd-matrix")
            node04.wait_for_closed_port(10810, timeout=60)
    finally:
        # Leave a reused cluster as it was: the worker's own export runs again.
        node04.execute("nbd-client -d /dev/nbd2; systemctl stop nbd-matrix")
        node04.succeed("systemctl start photon-nbd-export.service")
        node04.wait_for_unit("photon-nbd-export.service", timeout=120)

with subtest("report"):
    best = strongest(measurements)
    log(f"strongest local export profile: {best}")
    accel = node04.accel.name if node04.accel else "unknown"
    report = driver.out_dir / "coronafs-local-matrix.md"
    write_report(
        measurements,
        {"strongest profile (sum of IOPS)": best},
        "Local export cache/aio matrix",
        accel,
        report,
    )
