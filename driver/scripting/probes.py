"""Every declared endpoint of a profile checked at once: the prober's HTTP, metrics and TCP
probes run side by side inside it (one round trip, each probe retried until a shared
deadline), and each serving node's UDP check runs in its own thread."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from driver.config.topology import Endpoint, Service
from driver.errors import TestFailure
from driver.machine.base import BOOT_CLOCK
from driver.machine.machine import Machine
from driver.metrics import MetricsParseError, parse_metrics
from driver.parallel import on_each

# The probes in the prober, retried every 0.2 s (sleeping without spawning a process:
# photon_sleep is the backdoor's) until they succeed or the deadline $d (centiseconds of
# /proc/uptime) passes. Each leaves INDEX.ok, or INDEX.err with its last error; a body is
# kept as INDEX.body. HTTP and metrics: one curl per round fetches every pending URL side by
# side (--parallel; under TCG each curl process costs a tenth of a second of the prober's
# vCPU, so not one per URL); tcp: one nc per endpoint, in the background.
_PROBE = r"""pause() { photon_sleep 0.2 2>/dev/null || sleep 0.2; }
late() { boot_cs; (( cs >= d )); }
tcp_probe() {
  until nc -z -w 3 "$2" "$3" 2>"$dir/$1.err"; do
    late && return
    pause
  done
  : >"$dir/$1.ok"
}
http_probe() {
  local i n code msg args next
  while :; do
    args=()
    for i in "${pending[@]}"; do args+=(-o "$dir/$i.body" "${urls[i]}"); done
    curl --parallel --parallel-max 64 -fsS -m 5 -w '%{urlnum} %{exitcode} %{errormsg}\n' \
      "${args[@]}" >"$dir/round" 2>/dev/null
    while read -r n code msg; do
      i=${pending[n]}
      if [ "$code" = 0 ]; then : >"$dir/$i.ok"; else echo "curl: ($code) $msg" >"$dir/$i.err"; fi
    done <"$dir/round"
    next=()
    for i in "${pending[@]}"; do [ -e "$dir/$i.ok" ] || next+=("$i"); done
    pending=("${next[@]}")
    ((${#pending[@]})) || return 0
    late && return
    pause
  done
}
"""


@dataclass(frozen=True)
class Probe:
    """One endpoint of one node, as the prober sees it."""

    host: str
    endpoint: Endpoint

    @property
    def url(self) -> str:
        """The endpoint's URL (http and metrics)."""
        return f"http://{self.host}:{self.endpoint.port}{self.endpoint.path}"

    @property
    def label(self) -> str:
        """How results and failures name it."""
        if self.endpoint.protocol == "tcp":
            return f"tcp {self.host}:{self.endpoint.port}"
        return self.url


def check_endpoints(
    services: Iterable[Service],
    machines: dict[str, Machine],
    prober: Machine,
    timeout: float = 60.0,
) -> list[str]:
    """Check every endpoint of ``services`` on each of their nodes, all at once, within
    ``timeout`` s; returns one line per endpoint, in declaration order. http: the declared
    path answers with a status below 400 (curl --fail), from ``prober``; metrics: that, and
    the body parses as Prometheus text; tcp: ``prober`` connects; udp: something listens on the serving node. Fails the
    test naming every endpoint that did not answer, with its last error."""
    order: list[tuple[str, Endpoint]] = [
        (node, endpoint)
        for service in services
        for node in service.nodes
        for endpoint in service.endpoints
    ]
    probes = [Probe(node, e) for node, e in order if e.protocol != "udp"]
    udp: dict[str, list[Endpoint]] = {}
    for node, endpoint in order:
        if endpoint.protocol == "udp":
            udp.setdefault(node, []).append(endpoint)
    workers = sorted(set(udp) | ({prober.name} if probes else set()))

    def work(name: str) -> dict[tuple[str, Endpoint], str]:
        found: dict[tuple[str, Endpoint], str] = {}
        if name == prober.name and probes:
            for probe, line in zip(probes, probe_all(prober, probes, timeout), strict=True):
                found[(probe.host, probe.endpoint)] = line
        for endpoint in udp.get(name, []):
            machines[name].wait_for_open_port(endpoint.port, protocol="udp", timeout=timeout)
            found[(name, endpoint)] = f"udp {name}:{endpoint.port} listening"
        return found

    results: dict[tuple[str, Endpoint], str] = {}
    for found in on_each(workers, work, "probe"):
        results.update(found)
    return [results[key] for key in order]


def probe_all(prober: Machine, probes: Sequence[Probe], timeout: float) -> list[str]:
    """Run ``probes`` side by side in ``prober``; the result lines in their order."""
    tcp = "".join(
        f"tcp_probe {i} {shlex.quote(p.host)} {p.endpoint.port} &\n"
        for i, p in enumerate(probes)
        if p.endpoint.protocol == "tcp"
    )
    web = {i: p.url for i, p in enumerate(probes) if p.endpoint.protocol != "tcp"}
    urls = " ".join(f"[{i}]={shlex.quote(url)}" for i, url in web.items())
    # Report: per probe "INDEX ok" or "INDEX fail <last error>"; then each metrics body, NUL
    # separated, in probe order.
    script = (
        f"{BOOT_CLOCK}{_PROBE}dir=$(mktemp -d /tmp/photon-probes.XXXXXX)\n"
        f"boot_cs; d=$(( cs + {math.ceil(timeout * 100)} ))\n"
        f"{tcp}urls=({urls})\npending=({' '.join(map(str, web))})\n"
        "((${#pending[@]})) && http_probe\nwait\n"
        f"for ((i = 0; i < {len(probes)}; i++)); do\n"
        '  if [ -e "$dir/$i.ok" ]; then echo "$i ok"; '
        'else echo "$i fail $(tail -n 1 "$dir/$i.err" 2>/dev/null | tr -d "\\0")"; fi\n'
        "done\n"
        "printf '\\0'\n"
        + "".join(
            f"cat \"$dir/{i}.body\" 2>/dev/null; printf '\\0'\n"
            for i, p in enumerate(probes)
            if p.endpoint.protocol == "metrics"
        )
        + 'rm -rf "$dir"\n'
    )
    with prober.nested(f"probing {len(probes)} endpoints at once"):
        result = prober.run(script, timeout + 60.0)
    report, *bodies = result.stdout_bytes.decode(errors="replace").split("\0")
    if result.status != 0 or result.timed_out:
        raise TestFailure(
            f"{prober.name}: the endpoint probes ended with status {result.status}: "
            f"{result.stderr.strip()[-500:]}",
            node=prober.name,
        )
    failed = []
    for line in report.splitlines():
        index, verdict, *error = line.split(" ", 2)
        if verdict != "ok":
            probe = probes[int(index)]
            failed.append(f"{probe.label} ({(error[0] if error else '') or 'no answer'})")
    if failed:
        raise TestFailure(
            f"{prober.name}: no answer within {timeout:g}s from " + "; ".join(failed),
            node=prober.name,
        )
    lines = []
    metrics_bodies = iter(bodies)
    for probe in probes:
        if probe.endpoint.protocol == "http":
            lines.append(f"{probe.url} answered")
        elif probe.endpoint.protocol == "metrics":
            try:
                samples = len(parse_metrics(next(metrics_bodies)).samples)
            except MetricsParseError as exc:
                raise TestFailure(
                    f"{prober.name}: {probe.url}: not Prometheus text: {exc}", node=prober.name
                ) from None
            lines.append(f"{probe.url} exposes {samples} samples")
        else:
            lines.append(f"{probe.label} accepts connections")
    return lines
