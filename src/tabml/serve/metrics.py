"""Prometheus metrics of one serving app: requests, predictions, out-of-range values,
the prediction log and the limits on what clients hold."""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tabml.serve.limits import BodyDeadlines, RequestSlots
from tabml.serve.numbers import Outside
from tabml.serve.prediction_log import PredictionLog
from tabml.serve.problems import Problem
from tabml.serve.protocol import HeaderDeadlineProtocol


class _Tally:
    """A count, a sum and per-bucket counts: one histogram series (or a counter's)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self, bounds: int) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (bounds + 1)  # the last one is +Inf

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        running = 0
        points: list[tuple[str, float]] = []
        for bound, hits in zip((*map(str, bounds), "+Inf"), self.buckets, strict=True):
            running += hits
            points.append((bound, running))
        return points


class Metrics:
    """Prometheus metrics, in a registry of their own so each app counts only itself.

    prometheus_client's Counter and Histogram take a lock on every update, and four
    updates a request cost more than the rest of a single-row prediction's bookkeeping.
    The app runs in one thread per process, so requests add to plain numbers here and
    `collect()` turns them into metric families when /metrics is read."""

    LATENCY_BUCKETS = (
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
    )
    BATCH_BUCKETS = (1.0, 10.0, 100.0, 1000.0, 10_000.0)
    # Up to this many classes seen so far, a batch's labels are counted class by class.
    COUNTED_BY_CLASS = 3

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model_info = Gauge(
            "tabml_model_info",
            "The loaded model (value 1)",
            ["name", "version", "data_version"],
            registry=self.registry,
        )
        # Readiness as a series, for alerts: `up` says /metrics answered, not that a
        # model is loaded, and a probe's answer never reaches Prometheus.
        self.ready = Gauge(
            "tabml_ready",
            "1 while the model is loaded and requests are served, else 0",
            registry=self.registry,
        )
        # The class mix of the training labels, from metadata.json: what the predicted
        # class mix (tabml_predicted_class_total) is held against as a fast drift signal.
        self.training_class_ratio = Gauge(
            "tabml_training_class_ratio",
            "Share of each class among the training rows' labels (metadata.json)",
            ["class"],
            registry=self.registry,
        )
        self._requests: dict[tuple[str, str, int], _Tally] = {}
        self._classes: collections.Counter[str] = collections.Counter()
        self._batch_rows = _Tally(len(self.BATCH_BUCKETS))
        # Values outside their feature's schema range, refused or accepted, by feature.
        self._out_of_range: dict[str, int] = {}
        self._numeric_names: Sequence[str] = ()
        self.prediction_log: PredictionLog | None = None
        self.slots: RequestSlots | None = None
        self.body_deadlines: BodyDeadlines | None = None
        self.registry.register(self)

    def watch_ranges(self, numeric_names: Sequence[str], ranged: Iterable[str]) -> None:
        """Count out-of-range values of the `ranged` features (each from zero, so that a
        rate is defined before the first one); `numeric_names` are the columns of the
        masks `observe_outside` gets."""
        self._numeric_names = numeric_names
        self._out_of_range = dict.fromkeys(ranged, 0)

    def observe_outside(self, outside: Outside) -> None:
        """Count accepted values outside their range: True cells of [rows, features]."""
        if outside is None:
            return
        for name, count in zip(self._numeric_names, outside.sum(axis=0).tolist(), strict=True):
            if count:
                self._out_of_range[name] += count

    def observe_refused(self, problems: Iterable[Problem]) -> None:
        """Count refused values outside their range among a request's problems."""
        for problem in problems:
            if problem.out_of_range is not None:
                self._out_of_range[problem.out_of_range] += 1

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        tally = self._requests.get((endpoint, method, status))
        if tally is None:
            tally = self._requests[endpoint, method, status] = _Tally(len(self.LATENCY_BUCKETS))
        tally.count += 1
        tally.total += seconds
        tally.buckets[bisect.bisect_left(self.LATENCY_BUCKETS, seconds)] += 1

    def observe_predictions(self, labels: list[str]) -> None:
        rows = len(labels)
        batch = self._batch_rows
        batch.count += 1
        batch.total += rows
        batch.buckets[bisect.bisect_left(self.BATCH_BUCKETS, rows)] += 1
        if rows == 1:
            self._classes[labels[0]] += 1
            return
        seen = list(self._classes)
        if len(seen) <= self.COUNTED_BY_CLASS:
            # list.count compares each label in C, where a Counter hashes each one (the
            # model's labels are new strings every time). 1,000 labels of 2 classes: 23
            # against 48 µs; of 4 classes 43 against 49, too close to pay for the batch
            # that brings a class not seen before, which is counted both ways.
            counts = [labels.count(label) for label in seen]
            if sum(counts) == rows:
                for label, count in zip(seen, counts, strict=True):
                    self._classes[label] += count
                return
        self._classes.update(labels)  # a class not seen before, or many classes

    def collect(self) -> Iterator[Metric]:
        """The metric families, for the registry (called when /metrics is read)."""
        requests = CounterMetricFamily(
            "tabml_http_requests",
            "HTTP requests by endpoint, method and status",
            labels=["endpoint", "method", "status"],
        )
        by_status: dict[tuple[str, str], _Tally] = {}
        for (endpoint, method, status), tally in sorted(self._requests.items()):
            requests.add_metric([endpoint, method, str(status)], tally.count)
            merged = by_status.setdefault(
                (endpoint, str(status)), _Tally(len(self.LATENCY_BUCKETS))
            )
            merged.count += tally.count
            merged.total += tally.total
            merged.buckets = [a + b for a, b in zip(merged.buckets, tally.buckets, strict=True)]
        yield requests
        latency = HistogramMetricFamily(
            "tabml_http_request_duration_seconds",
            "Time from request to response by endpoint and status",
            labels=["endpoint", "status"],
        )
        for labels, tally in by_status.items():
            latency.add_metric(
                list(labels), tally.cumulative(self.LATENCY_BUCKETS), sum_value=tally.total
            )
        yield latency
        predicted = CounterMetricFamily(
            "tabml_predicted_class", "Rows predicted per class", labels=["class"]
        )
        for label, count in sorted(self._classes.items()):
            predicted.add_metric([label], count)
        yield predicted
        batch = HistogramMetricFamily("tabml_prediction_batch_rows", "Rows per prediction request")
        batch.add_metric(
            [], self._batch_rows.cumulative(self.BATCH_BUCKETS), sum_value=self._batch_rows.total
        )
        yield batch
        out_of_range = CounterMetricFamily(
            "tabml_out_of_range_values",
            "Numeric values outside their feature's range in the model's data schema, by "
            "feature: refused, or accepted under TABML_OUT_OF_RANGE=count",
            labels=["feature"],
        )
        for name, count in self._out_of_range.items():
            out_of_range.add_metric([name], count)
        yield out_of_range
        if self.prediction_log is not None:
            logged = CounterMetricFamily(
                "tabml_prediction_log_rows",
                "Sampled rows by what became of their prediction-log line",
                labels=["outcome"],
            )
            logged.add_metric(["written"], self.prediction_log.written_rows)
            logged.add_metric(["dropped"], self.prediction_log.dropped_rows)
            yield logged
            # A gauge: it falls at every flush, which a counter's rate() takes for a reset.
            yield GaugeMetricFamily(
                "tabml_prediction_log_pending_rows",
                "Sampled rows whose prediction-log line waits for the next flush",
                value=self.prediction_log.pending_rows,
            )
        yield from self._collect_limits()

    def _collect_limits(self) -> Iterator[Metric]:
        if self.slots is None or self.body_deadlines is None:
            return
        rejected = CounterMetricFamily(
            "tabml_http_rejected",
            "Requests cut off or turned away to bound what clients hold, by reason",
            labels=["reason"],
        )
        rejected.add_metric(["body_timeout"], self.body_deadlines.timed_out)
        # Connections, not requests: the app never sees a request whose headers stall.
        rejected.add_metric(["header_timeout"], HeaderDeadlineProtocol.closed_for_header_timeout)
        rejected.add_metric(["overload"], self.slots.rejected)
        yield rejected
        yield GaugeMetricFamily(
            "tabml_http_requests_in_flight",
            "Requests with a body being received or answered",
            value=self.slots.in_use,
        )
