"""Recent points of metric series, and a small PNG chart of one around its onset.

:class:`SeriesWindow` is fed every :class:`~detectors.events.MetricEvent` and every
:class:`~detectors.anomaly.Anomaly`. Memory stays bounded: each series keeps a short ring
(``lookback_points``) so that a chart can show what came before an onset, up to
``max_series`` series (least recently seen dropped first); a series with an anomaly
switches to a long ring (``points``) for ``retain_s`` after its latest anomaly, up to
``max_anomalous`` series. Series are looked up by the anomaly fingerprint, which is what
an incident's :class:`~rca.model.AnomalyRef` carries.
"""

from __future__ import annotations

import hashlib
import io
from array import array
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from detectors.anomaly import Anomaly, SignalKind
from detectors.events import MetricEvent
from notify.config import ChartConfig
from notify.exceptions import ChartError


def metric_fingerprint(event: MetricEvent) -> str:
    """The fingerprint an anomaly of this event's series carries.

    >>> from detectors.anomaly import Direction
    >>> e = MetricEvent(1.0, "carts", "cpu", 0.5, host="h1", labels=(("pod", "a"),))
    >>> a = Anomaly("carts", "cpu", SignalKind.METRIC, 1.0, 0.5, 0.9, Direction.SPIKE, "d",
    ...             host="h1", labels=(("pod", "a"),))
    >>> metric_fingerprint(e) == a.fingerprint
    True
    """
    # Anomaly.fingerprint's formula, without building a probe Anomaly for every new series
    labels = [f"{k}={v}" for k, v in event.labels]
    ident = "|".join([event.service, event.metric, event.host or "", *labels])
    return hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()


class _Ring:
    """Times (float64) and values (float32) of the latest ``capacity`` points.

    Plain ``array`` buffers: a numpy array costs about a hundred bytes more per buffer and
    is slower to write one item at a time.
    """

    __slots__ = ("capacity", "count", "head", "t", "v")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.t = array("d", bytes(8 * capacity))
        self.v = array("f", bytes(4 * capacity))
        self.head = 0
        self.count = 0

    def add(self, t: float, v: float) -> None:
        head = self.head
        self.t[head] = t
        self.v[head] = v
        head += 1
        self.head = 0 if head == self.capacity else head
        if self.count < self.capacity:
            self.count += 1

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        t = np.frombuffer(self.t, dtype=np.float64)
        v = np.frombuffer(self.v, dtype=np.float32)
        if self.count < self.capacity:
            t, v = t[: self.count], v[: self.count]
        else:
            t, v = np.roll(t, -self.head), np.roll(v, -self.head)
        order = np.argsort(t, kind="stable")
        return t[order].copy(), v[order].astype(np.float64)

    def grown(self, capacity: int) -> _Ring:
        bigger = _Ring(capacity)
        t, v = self.points()
        for ti, vi in zip(t[-capacity:], v[-capacity:], strict=True):
            bigger.add(float(ti), float(vi))
        return bigger

    @property
    def nbytes(self) -> int:
        return 12 * self.capacity


@dataclass(frozen=True, slots=True)
class SeriesMark:
    """What the chart marks: the latest anomaly of a series."""

    onset: float
    band: tuple[float, float] | None
    expected: float | None
    label: str


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """Points of one series, oldest first, and its latest anomaly."""

    times: np.ndarray
    values: np.ndarray
    mark: SeriesMark | None


class SeriesWindow:
    """Bounded recent points per metric series (see the module docstring).

    >>> w = SeriesWindow(ChartConfig(lookback_points=3, points=10))
    >>> for t in range(5):
    ...     w.observe(MetricEvent(float(t), "api", "latency", float(t)))
    >>> w.points(metric_fingerprint(MetricEvent(0.0, "api", "latency", 0.0))).values.tolist()
    [2.0, 3.0, 4.0]
    """

    def __init__(self, config: ChartConfig | None = None) -> None:
        self.config = config or ChartConfig()
        self._keys: dict[str, str] = {}
        self._key_of: dict[str, str] = {}
        self._rings: OrderedDict[str, _Ring] = OrderedDict()
        self._long: OrderedDict[str, float] = OrderedDict()
        self._marks: dict[str, SeriesMark] = {}

    def observe(self, event: MetricEvent) -> None:
        """Add one sample (NaN values are skipped)."""
        if event.value != event.value:
            return
        key = event.series_key
        fp = self._keys.get(key)
        if fp is None:
            fp = metric_fingerprint(event)
            self._keys[key] = fp
            self._key_of[fp] = key
        ring = self._rings.get(fp)
        if ring is None:
            long = fp in self._long
            ring = _Ring(self.config.points if long else self.config.lookback_points)
            self._rings[fp] = ring
            self._evict()
        else:
            self._rings.move_to_end(fp)
        ring.add(event.timestamp, event.value)
        if fp in self._long and event.timestamp - self._long[fp] > self.config.retain_s:
            self._shrink(fp)

    def mark(self, anomaly: Anomaly) -> None:
        """Note a metric anomaly: its series keeps a long history from now on."""
        if anomaly.kind is not SignalKind.METRIC:
            return
        fp = anomaly.fingerprint
        self._marks[fp] = SeriesMark(
            onset=anomaly.timestamp,
            band=anomaly.band,
            expected=anomaly.expected,
            label=f"{anomaly.service} {anomaly.signal}",
        )
        self._long[fp] = anomaly.timestamp
        self._long.move_to_end(fp)
        ring = self._rings.get(fp)
        if ring is not None and ring.capacity < self.config.points:
            self._rings[fp] = ring.grown(self.config.points)
        while len(self._long) > self.config.max_anomalous:
            oldest, _ = self._long.popitem(last=False)
            self._shrink(oldest)

    def points(self, fingerprint: str) -> SeriesPoints | None:
        """The series' points and latest mark, or ``None`` if it has no point."""
        ring = self._rings.get(fingerprint)
        if ring is None or ring.count == 0:
            return None
        t, v = ring.points()
        return SeriesPoints(times=t, values=v, mark=self._marks.get(fingerprint))

    def marked(self) -> list[str]:
        """Fingerprints of the series that keep a long history (an anomaly within
        ``retain_s``), least recently marked first."""
        return list(self._long)

    def __contains__(self, fingerprint: object) -> bool:
        ring = self._rings.get(str(fingerprint))
        return ring is not None and ring.count > 1

    def __len__(self) -> int:
        return len(self._rings)

    @property
    def nbytes(self) -> int:
        """Memory held by the samples."""
        return sum(ring.nbytes for ring in self._rings.values())

    def _shrink(self, fp: str) -> None:
        self._long.pop(fp, None)
        self._marks.pop(fp, None)
        ring = self._rings.get(fp)
        if ring is not None and ring.capacity > self.config.lookback_points:
            self._rings[fp] = ring.grown(self.config.lookback_points)

    def _evict(self) -> None:
        while len(self._rings) > self.config.max_series:
            fp, _ = self._rings.popitem(last=False)
            self._long.pop(fp, None)
            self._marks.pop(fp, None)
            key = self._key_of.pop(fp, None)
            if key is not None:
                self._keys.pop(key, None)


def render_chart(
    times: np.ndarray,
    values: np.ndarray,
    *,
    onset: float | None = None,
    band: tuple[float, float] | None = None,
    title: str = "",
    config: ChartConfig | None = None,
) -> bytes:
    """A PNG line chart of a series, the onset marked by a red line and dot, the normal
    band shaded.

    >>> png = render_chart(np.arange(10.0), np.arange(10.0) ** 2, onset=7.0, band=(0, 30))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from matplotlib.figure import Figure  # Agg through Figure.savefig; no pyplot state

    if len(times) == 0 or len(times) != len(values):
        raise ChartError("a chart needs at least one point, as many times as values")
    cfg = config or ChartConfig()
    t0 = float(onset) if onset is not None else float(times[-1])
    rel = (np.asarray(times, dtype=np.float64) - t0) / 60.0
    fig = Figure(figsize=(cfg.width_in, cfg.height_in), dpi=cfg.dpi)
    ax = fig.add_subplot()
    if band is not None:
        ax.axhspan(band[0], band[1], color="#2EB67D", alpha=0.15, label="normal band")
    ax.plot(rel, values, color="#1D1C1D", linewidth=1.2)
    if onset is not None:
        ax.axvline(0.0, color="#E01E5A", linewidth=1.0, linestyle="--")
        after = np.flatnonzero(rel >= 0.0)
        if after.size:
            i = int(after[0])
            ax.plot([rel[i]], [values[i]], "o", color="#E01E5A", markersize=6, label="onset")
    ax.set_xlabel("minutes from onset" if onset is not None else "minutes")
    if title:
        # a "$" would start matplotlib's mathtext (and a bad formula raises): shown as is
        ax.set_title(title.replace("$", r"\$"), fontsize=10)
    ax.grid(alpha=0.3)
    if band is not None or onset is not None:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.86 if title else 0.95, bottom=0.2)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def series_record(fingerprint: str, series: SeriesPoints) -> dict[str, object]:
    """A series' points and latest mark as a JSON-ready record (the ``series`` topic's
    value, from which consoles draw the same chart as :func:`render_chart`).

    >>> w = SeriesWindow(ChartConfig(lookback_points=3))
    >>> w.observe(MetricEvent(60.0, "api", "latency", 0.25))
    >>> fp = metric_fingerprint(MetricEvent(0.0, "api", "latency", 0.0))
    >>> record = series_record(fp, w.points(fp))
    >>> record["t"], record["v"], record["onset"]
    ([60.0], [0.25], None)
    """
    mark = series.mark
    return {
        "fingerprint": fingerprint,
        "label": mark.label if mark else "",
        "onset": mark.onset if mark else None,
        "band": list(mark.band) if mark and mark.band else None,
        "expected": mark.expected if mark else None,
        "t": series.times.tolist(),
        # the ring keeps float32: its shortest repr, not float64 noise
        "v": [float(str(x)) for x in series.values.astype(np.float32)],
    }
