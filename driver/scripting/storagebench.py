"""Storage benchmark helpers: fio job lines, fio JSON parsing, the Markdown + PNG report."""

from __future__ import annotations

import json
import platform
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# (name, fio rw mode, block size): sequential and random, read and write.
FIO_JOBS = (
    ("seq-read", "read", "1M"),
    ("seq-write", "write", "1M"),
    ("rand-read", "randread", "4k"),
    ("rand-write", "randwrite", "4k"),
)


@dataclass(frozen=True)
class Measurement:
    """One fio result."""

    target: str
    job: str
    bandwidth_mib_s: float
    iops: float
    latency_ms: float


def fio_command(device: str, rw: str, block_size: str, size: str = "32M", seconds: int = 5) -> str:
    """A direct-I/O fio run on ``device`` that prints JSON."""
    return (
        f"fio --name=photon --filename={shlex.quote(device)} --rw={rw} --bs={block_size} "
        f"--size={size} --runtime={seconds} --time_based --direct=1 --ioengine=libaio "
        "--iodepth=4 --output-format=json"
    )


def parse_fio(target: str, job: str, output: str) -> Measurement:
    """Read bandwidth (MiB/s), IOPS and mean completion latency (ms) from fio JSON."""
    doc = json.loads(output[output.index("{") :])
    data = doc["jobs"][0]
    side = data["read"] if data["read"]["io_bytes"] > 0 else data["write"]
    latency_ns = side.get("clat_ns", {}).get("mean", 0.0)
    return Measurement(target, job, side["bw"] / 1024, side["iops"], latency_ns / 1e6)


def write_report(
    measurements: list[Measurement],
    extra: dict[str, float | str],
    title: str,
    accel: str,
    markdown: Path,
) -> list[Path]:
    """Write ``markdown`` (table with units, host, accelerator, date), a PNG chart and a JSON
    of the raw numbers beside it; returns the files written."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stem = markdown.with_suffix("")
    chart = stem.with_suffix(".png")
    raw = stem.with_suffix(".json")
    lines = [
        f"# {title}",
        "",
        f"Host: {platform.node()} ({platform.machine()}), accelerator: {accel}, date: {stamp}.",
        "",
        "| target | job | bandwidth (MiB/s) | IOPS | mean latency (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {m.target} | {m.job} | {m.bandwidth_mib_s:.1f} | {m.iops:.0f} | {m.latency_ms:.2f} |"
        for m in measurements
    ]
    if extra:
        lines += ["", "| measure | value |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in extra.items()]
    lines += ["", f"![chart]({chart.name})", ""]
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(lines))
    raw.write_text(
        json.dumps(
            {
                "accel": accel,
                "date": stamp,
                "extra": extra,
                "measurements": [asdict(m) for m in measurements],
            },
            indent=2,
        )
    )
    written = [markdown, raw]
    if draw_chart(measurements, title, accel, chart):
        written.append(chart)
    return written


def draw_chart(measurements: list[Measurement], title: str, accel: str, path: Path) -> bool:
    """Grouped bar chart of bandwidth per job and target; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    jobs = list(dict.fromkeys(m.job for m in measurements))
    targets = list(dict.fromkeys(m.target for m in measurements))
    width = 0.8 / max(len(targets), 1)
    figure, axes = plt.subplots(figsize=(9, 5), dpi=110)
    for index, target in enumerate(targets):
        values = [
            next(
                (m.bandwidth_mib_s for m in measurements if m.target == target and m.job == job),
                0.0,
            )
            for job in jobs
        ]
        positions = [j + (index - (len(targets) - 1) / 2) * width for j in range(len(jobs))]
        bars = axes.bar(positions, values, width, label=target)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(range(len(jobs)), jobs)
    axes.set_xlabel("fio job (direct I/O; seq 1 MiB blocks, rand 4 KiB blocks)")
    axes.set_ylabel("bandwidth (MiB/s)")
    axes.set_title(f"{title} ({accel})")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def strongest(measurements: list[Measurement]) -> str:
    """The target with the highest summed IOPS (the matrix scripts' "strongest profile")."""
    scores: dict[str, float] = {}
    for m in measurements:
        scores[m.target] = scores.get(m.target, 0.0) + m.iops
    return max(scores, key=lambda target: scores[target])
