"""Parsing the Prometheus text exposition format (what /metrics endpoints return)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class MetricsParseError(ValueError):
    """The text is not valid Prometheus exposition format."""


@dataclass(frozen=True)
class Sample:
    """One sample line."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Metrics:
    """All samples of one scrape, with lookup helpers."""

    samples: list[Sample] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float:
        """The value of the first sample of ``name`` whose labels include ``labels``."""
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        raise KeyError(f"no sample {name}{labels or ''}")


def parse_metrics(text: str) -> Metrics:
    """Parse exposition text; raises MetricsParseError naming the bad line."""
    metrics = Metrics()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                metrics.types[parts[2]] = parts[3]
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MetricsParseError(f"line {number}: not a sample: {line[:80]}")
        try:
            value = float(match.group("value"))
        except ValueError:
            raise MetricsParseError(f"line {number}: bad value {match.group('value')!r}") from None
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        metrics.samples.append(Sample(match.group("name"), labels, value))
    if not metrics.samples:
        raise MetricsParseError("no samples")
    return metrics
