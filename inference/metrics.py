"""Process metrics in the Prometheus text format, hand-written (prometheus_client is not a dependency).

Counters, gauges and histograms with labels, thread-safe, rendered by ``GET /metrics``. One registry
per process (``REGISTRY``); tests build their own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Iterable[str] = ()):
        self.name, self.help, self.label_names = name, help, tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.label_names)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def total(self) -> float:
        with self._lock:
            return float(sum(self._values.values()))

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        out += [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in items]
        return out


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def remove(self, **labels: str) -> None:
        with self._lock:
            self._values.pop(self._key(labels), None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def max(self) -> float:
        with self._lock:
            return max(self._values.values(), default=0.0)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Iterable[str] = (), buckets: Iterable[float] = _LATENCY_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, b in enumerate(self.buckets):
                if value <= b:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        with self._lock:
            return sum(self._counts.get(self._key(labels), []))

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted(self._counts.items())
            sums = dict(self._sums)
        for key, counts in items:
            cum = 0
            for b, c in zip((*self.buckets, math.inf), counts, strict=True):
                cum += c
                le = 'le="' + _num(b) + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {cum}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_num(sums.get(key, 0.0))}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {cum}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: _Metric) -> _Metric:
        with self._lock:
            have = self._metrics.get(metric.name)
            if have is not None:
                return have
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, help: str, labels: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, help, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labels))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labels: Iterable[str] = (), buckets=_LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, labels, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for m in metrics:
            lines += m.render()
        return "\n".join(lines) + "\n"


class Metrics:
    """Every metric the service exports, on one registry."""

    def __init__(self, registry: Registry | None = None):
        r = self.registry = registry or Registry()
        p = "petrostream_"
        self.records_in = r.counter(p + "records_in_total", "Kinesis records read", ("consumer",))
        self.rows_in = r.counter(p + "rows_in_total", "Rows decoded from valid records", ("consumer",))
        self.rows_out = r.counter(p + "rows_out_total", "Rows durably written to the lake", ("consumer",))
        self.rows_scored = r.counter(p + "rows_scored_total", "Rows scored by the model", ("source",))
        self.rows_dropped = r.counter(
            p + "rows_dropped_total", "Rows not scored: duplicate in batch, or not newer than last scored", ("reason",)
        )
        self.anomalies = r.counter(p + "anomalies_total", "Rows flagged anomalous", ("source",))
        self.episodes = r.counter(p + "episodes_closed_total", "Anomaly episodes closed")
        self.quarantined = r.counter(p + "quarantined_records_total", "Records sent to quarantine", ("consumer",))
        self.flushes = r.counter(p + "flushes_total", "Batches durably written then checkpointed", ("consumer",))
        self.flush_errors = r.counter(p + "flush_errors_total", "Failed lake writes (retried)", ("consumer",))
        self.batch_latency = r.histogram(p + "batch_latency_seconds", "Micro-batch scoring latency")
        self.flush_latency = r.histogram(p + "flush_latency_seconds", "Lake write + checkpoint latency")
        self.millis_behind = r.gauge(p + "millis_behind_latest", "MillisBehindLatest per shard", ("consumer", "shard"))
        self.leases_held = r.gauge(p + "leases_held", "Shard leases held by this worker", ("consumer",))
        self.lease_events = r.counter(p + "lease_events_total", "Lease takes, steals, losses", ("consumer", "event"))
        self.model_info = r.gauge(p + "model_info", "Model in use (value 1)", ("name", "version"))
        self.model_reloads = r.counter(p + "model_reloads_total", "Champion changes picked up")
        self.model_errors = r.counter(p + "model_load_errors_total", "Failed champion loads")
        self.predict_requests = r.counter(p + "predict_requests_total", "POST /predict requests", ("status",))
        self.predict_rows = r.counter(p + "predict_rows_total", "Rows scored through POST /predict")

    def render(self) -> str:
        return self.registry.render()


_default: Metrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> Metrics:
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default
