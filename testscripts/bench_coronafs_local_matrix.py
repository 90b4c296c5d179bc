# PhotonCloud: CoronaFS local export across cache/aio combinations on a worker, marking the
# strongest (the seed's `bench-coronafs-local-matrix`). The export is restarted per profile
# through the coronafs unit's environment (CORONAFS_CACHE / CORONAFS_AIO drop-in).

from driver.scripting.storagebench import fio_command, parse_fio, strongest, write_report

export = profile.service("coronafs").endpoint("export")
unit = profile.service("coronafs").unit
COMBINATIONS = [
    ("none", "threads"),
    ("none", "native"),
    ("writeback", "threads"),
    ("directsync", "native"),
]
measurements = []

with subtest("matrix"):
    start_all()
    node04.wait_for_unit(unit, timeout=300)
    node04.succeed("modprobe nbd nbds_max=4")
    for cache, aio in COMBINATIONS:
        label = f"cache={cache},aio={aio}"
        node04.succeed(
            f"mkdir -p /run/systemd/system/{unit}.d && printf '[Service]\\nEnvironment=CORONAFS_CACHE={cache} "
            f"CORONAFS_AIO={aio}\\n' > /run/systemd/system/{unit}.d/matrix.conf && "
            f"systemctl daemon-reload && systemctl restart {unit}"
        )
        node04.wait_for_open_port(export.port, timeout=60)
        node04.succeed(f"nbd-client 127.0.0.1 {export.port} /dev/nbd2 -b 4096")
        for job, rw in (("rand-read", "randread"), ("rand-write", "randwrite")):
            measurements.append(
                parse_fio(label, job, node04.succeed(fio_command("/dev/nbd2", rw, "4k", seconds=4)))
            )
        node04.succeed("nbd-client -d /dev/nbd2")

with subtest("report"):
    best = strongest(measurements)
    log(f"strongest CoronaFS local export profile: {best}")
    accel = node04.accel.name if node04.accel else "unknown"
    report = driver.out_dir / "coronafs-local-matrix-photoncloud.md"
    write_report(
        measurements,
        {"strongest profile (sum of IOPS)": best},
        "CoronaFS local matrix",
        accel,
        report,
    )
