"""The Prometheus text exposition format (what /metrics endpoints return), parsed by
prometheus-client's own parser, with lookup helpers."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """Parse exposition text with prometheus-client's parser; raises MetricsParseError
    naming the first bad line."""
    # Imported here: prometheus_client brings its HTTP exposition code (urllib, http.server),
    # ~15 ms on every driver start that parses no metrics.
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    try:
        for family in text_string_to_metric_families(text):
            if family.type != "unknown":
                metrics.types[family.name] = family.type
            for sample in family.samples:
                metrics.samples.append(Sample(sample.name, dict(sample.labels), sample.value))
    except ValueError as exc:
        raise MetricsParseError(_first_bad_line(text, exc)) from None
    if not metrics.samples:
        raise MetricsParseError("no samples")
    return metrics


def _first_bad_line(text: str, error: ValueError) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                list(text_string_to_metric_families(line + "\n"))
            except ValueError:
                return f"line {number}: not a sample: {line.strip()[:80]}"
    return f"not Prometheus text: {error}"
