"""Log anomaly detection per service: new templates, rate departures and bursts.

:class:`LogMonitor` mines every line into a template (one :class:`TemplateMiner` per
service) and reports:

* **new templates**: a template first seen after the service's warm-up, when its
  severity (level and failure words, see :class:`SeverityScorer`) reaches
  ``new_template_threshold``; reported at once by :meth:`LogMonitor.process`;
* **rate departures**: the count of a template, or of the error-level lines
  (``log:errors``), in a bucket of ``bucket_seconds`` rising ``rate_z`` deviations above
  its exponentially weighted baseline;
* **bursts**: a template that was (nearly) silent emitting ``burst_ratio`` times its
  baseline and at least ``min_count`` lines in one bucket.

Buckets follow event time, not the wall clock: a bucket closes when an event of a later
bucket arrives (:meth:`LogMonitor.process`) or when :meth:`LogMonitor.tick` is called with
a later time, so a replay yields the same anomalies. A rate or burst episode is reported
once, when it starts; the signal is re-armed once a bucket is back under the threshold.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.anomaly import Anomaly, Direction, SignalKind
from detectors.events import LogEvent
from detectors.logs.config import LogDetectionConfig
from detectors.logs.exceptions import StateError
from detectors.logs.miner import OVERFLOW_ID, TemplateMiner
from detectors.logs.rates import RateBaseline, SignalTrack
from detectors.logs.severity import ERROR_LEVELS, LEVEL_WEIGHTS, SeverityScorer

ERRORS_SIGNAL = "log:errors"
"""Signal name of the error-level line count of a service."""

_STATE_VERSION = 1
_MAX_EXAMPLE_CHARS = 256
_SEVERITY_CACHE_SIZE = 20_000
_MAX_CLOSED_BUCKETS = 1000  # buckets closed one by one before fast-forwarding a silence


def template_signal(template_id: int) -> str:
    """Signal name of a template: ``log:<template id>``.

    >>> template_signal(12)
    'log:12'
    """
    return f"log:{template_id}"


@dataclass(frozen=True, slots=True)
class LogMonitorStats:
    """Counters of a :class:`LogMonitor`.

    Parameters
    ----------
    services
        Services seen (or restored).
    templates
        Live templates over all services.
    template_cap_hits
        Lines that found no template because their service was at ``max_templates``.
    services_rejected
        Lines of new services not kept because the monitor was at ``max_services``.
    lines
        Lines processed.
    anomalies
        Anomalies reported.
    """

    services: int
    templates: int
    template_cap_hits: int
    lines: int
    anomalies: int
    services_rejected: int = 0


@dataclass(frozen=True, slots=True)
class LineVerdict:
    """What the monitor made of one line.

    Parameters
    ----------
    template_id
        The line's template (0 past the template cap).
    template
        The template text, parameters as ``<*>``.
    is_new
        Whether the line created its template.
    severity
        0..1 from the line's level and the failure words of its template.
    alert
        Whether the severity reaches ``alert_severity``.
    """

    template_id: int
    template: str
    is_new: bool
    severity: float
    alert: bool


class _Service:
    """Everything the monitor knows about one service."""

    __slots__ = ("bucket_start", "errors", "lines", "miner", "tracks")

    def __init__(self, miner: TemplateMiner) -> None:
        self.miner = miner
        self.lines = 0
        self.bucket_start: float | None = None
        self.tracks: OrderedDict[int, SignalTrack] = OrderedDict()
        self.errors: SignalTrack | None = None


class LogMonitor:
    """Online log anomaly detection for many services.

    Parameters
    ----------
    config
        Detection settings; defaults to :class:`LogDetectionConfig` ().

    Examples
    --------
    >>> from detectors.events import LogEvent
    >>> monitor = LogMonitor(LogDetectionConfig(warmup_lines=3))
    >>> for i in range(3):
    ...     _ = monitor.process(LogEvent(float(i), "api", f"request {i} served", "info"))
    >>> [a] = monitor.process(LogEvent(3.0, "api", "database connection failed", "error"))
    >>> a.signal, a.direction.value, a.details["template"]
    ('log:2', 'new_template', 'database connection failed')
    """

    def __init__(self, config: LogDetectionConfig | None = None) -> None:
        self.config = config or LogDetectionConfig()
        self._services: dict[str, _Service] = {}
        self._severity = SeverityScorer(self.config.failure_words, self.config.caller_errors)
        self._severity_cache: dict[tuple[str, str | None], float] = {}
        self._alpha = 1.0 - 0.5 ** (1.0 / self.config.baseline_halflife_buckets)
        self._peak_keep = 0.5 ** (1.0 / self.config.peak_halflife_buckets)
        self._dirty: set[str] = set()
        self._lines = 0
        self._anomalies = 0
        self._services_rejected = 0

    # -- public API --------------------------------------------------------------------

    @property
    def stats(self) -> LogMonitorStats:
        """Counters over all services."""
        return LogMonitorStats(
            services=len(self._services),
            templates=sum(s.miner.template_count for s in self._services.values()),
            template_cap_hits=sum(s.miner.cap_hits for s in self._services.values()),
            lines=self._lines,
            anomalies=self._anomalies,
            services_rejected=self._services_rejected,
        )

    def process(self, event: LogEvent) -> list[Anomaly]:
        """Learn one line; return the anomalies it reveals.

        That is a new template, plus any rate or burst anomaly of the buckets that this
        event's time closes.
        """
        _, anomalies = self.observe(event)
        return anomalies

    def observe(self, event: LogEvent) -> tuple[LineVerdict, list[Anomaly]]:
        """Like :meth:`process`, also telling where the line went and how severe it is.

        A line of a new service when ``max_services`` are kept goes to the overflow
        template (id 0) with the severity of its own text, and is counted in
        ``stats.services_rejected``.
        """
        service = self._service(event.service)
        if service is None:
            self._services_rejected += 1
            severity = self._severity.score(event.message[:_MAX_EXAMPLE_CHARS], event.level)
            alert = severity >= self.config.alert_severity
            return LineVerdict(OVERFLOW_ID, "", False, severity, alert), []
        ts = event.timestamp
        if not math.isfinite(ts):  # no usable time: count the line in the open bucket
            ts = service.bucket_start if service.bucket_start is not None else 0.0
        anomalies = self._advance(event.service, service, ts)
        if service.bucket_start is None:
            service.bucket_start = self._bucket_of(ts)
        mined = service.miner.add(event.message)
        tid = mined.template_id
        text = service.miner.template_text(tid)
        severity = self._score(text, event.level)
        service.lines += 1
        self._lines += 1
        self._dirty.add(event.service)

        track = self._track(service, tid)
        track.count += 1
        track.total += 1
        track.examples.append(event.message[:_MAX_EXAMPLE_CHARS])
        if _level_weight(event.level) > _level_weight(track.level):
            track.level = event.level
        if event.level in ERROR_LEVELS:
            errors = self._errors(service)
            errors.count += 1
            errors.total += 1
            errors.examples.append(event.message[:_MAX_EXAMPLE_CHARS])
            if _level_weight(event.level) > _level_weight(errors.level):
                errors.level = event.level

        if (
            mined.is_new
            and service.lines > self.config.warmup_lines
            and severity >= self.config.new_template_threshold
            and self._novel(service, tid, text, event.level)
        ):
            anomalies.append(
                Anomaly(
                    service=event.service,
                    signal=template_signal(tid),
                    kind=SignalKind.LOG,
                    timestamp=ts,
                    value=1.0,
                    score=severity,
                    direction=Direction.NEW_TEMPLATE,
                    detector="log_new_template",
                    expected=0.0,
                    host=event.host,
                    details={
                        "template": text,
                        "examples": list(track.examples),
                        "count": track.total,
                        "baseline_rate": 0.0,
                        "level": event.level,
                    },
                )
            )
        self._anomalies += len(anomalies)
        alert = severity >= self.config.alert_severity
        return LineVerdict(tid, text, mined.is_new, severity, alert), anomalies

    def tick(self, now: float, services: Iterable[str] | None = None) -> list[Anomaly]:
        """Close every bucket that ended by ``now`` (event-time clock) in every service, or
        only in ``services`` (e.g. the ones that went quiet: a service that still sends
        lines closes its own buckets as its lines arrive)."""
        out: list[Anomaly] = []
        if not math.isfinite(now):
            return out
        names = list(self._services) if services is None else services
        for name in names:
            service = self._services.get(name)
            if service is not None:
                out.extend(self._advance(name, service, now))
        self._anomalies += len(out)
        return out

    def dirty_states(self) -> list[tuple[str, bytes]]:
        """``(service, state)`` of the services changed since the last call."""
        out = [(name, self.state_of(name)) for name in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def state_of(self, service: str) -> bytes:
        """The persisted form of one service (templates, ids, baselines, examples)."""
        s = self._services[service]
        doc: dict[str, Any] = {
            "v": _STATE_VERSION,
            "miner": s.miner.to_state(),
            "lines": s.lines,
            "bucket": s.bucket_start,
            "tracks": [[tid, *t.to_list()] for tid, t in s.tracks.items()],
            "errors": s.errors.to_list() if s.errors else None,
        }
        return orjson.dumps(doc)

    def restore(self, service: str, state: bytes) -> None:
        """Replace a service's state by one from :meth:`state_of` / :meth:`dirty_states`.

        Raises :class:`StateError` when the bytes are not such a state.
        """
        try:
            doc = orjson.loads(state)
            if not isinstance(doc, dict) or doc.get("v") != _STATE_VERSION:
                raise StateError(f"log state of {service!r} has an unsupported version")
            s = _Service(TemplateMiner.from_state(doc["miner"], self.config.miner))
            s.lines = int(doc["lines"])
            s.bucket_start = None if doc["bucket"] is None else float(doc["bucket"])
            keep = self.config.max_examples
            for tid, *rest in doc["tracks"]:
                s.tracks[int(tid)] = SignalTrack.from_list(rest, self._alpha, keep)
            if doc["errors"] is not None:
                s.errors = SignalTrack.from_list(doc["errors"], self._alpha, keep)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"malformed log state of {service!r}: {exc}") from None
        self._services[service] = s

    def template_text(self, service: str, template_id: int) -> str | None:
        """The current text of a service's template, if the service is known."""
        s = self._services.get(service)
        return None if s is None else s.miner.template_text(template_id)

    def keeps(self, service: str) -> bool:
        """Whether lines of ``service`` are mined here: it has state, or there is room."""
        return service in self._services or len(self._services) < self.config.max_services

    def services(self) -> list[str]:
        """Services known to the monitor."""
        return sorted(self._services)

    # -- internals ---------------------------------------------------------------------

    def _novel(self, service: _Service, tid: int, text: str, level: str | None) -> bool:
        """A new template is news unless it is a known one with another value in one word,
        at no higher level and with no failure word that the known one lacks (``Disk sda
        failed`` next to ``Disk sda ok`` is news; ``user bob`` next to ``user alice`` is
        not)."""
        siblings = service.miner.siblings(tid)
        if not siblings:
            return True
        weight = _level_weight(level)
        words = self._severity.has_failure_word(text)
        for sibling in siblings:
            track = service.tracks.get(sibling)
            if track is not None and _level_weight(track.level) < weight:
                continue
            if words and not self._severity.has_failure_word(service.miner.template_text(sibling)):
                continue
            return False  # a known event with a new value
        return True

    def _score(self, text: str, level: str | None) -> float:
        """Severity of a template at a level, cached: templates repeat, the regex is costly."""
        key = (text, level)
        cached = self._severity_cache.get(key)
        if cached is None:
            if len(self._severity_cache) >= _SEVERITY_CACHE_SIZE:
                self._severity_cache.clear()
            cached = self._severity_cache[key] = self._severity.score(text, level)
        return cached

    def _service(self, name: str) -> _Service | None:
        service = self._services.get(name)
        if service is None:
            if len(self._services) >= self.config.max_services:
                return None
            service = self._services[name] = _Service(TemplateMiner(self.config.miner))
        return service

    def _new_track(self) -> SignalTrack:
        return SignalTrack(
            baseline=RateBaseline(self._alpha),
            examples=deque(maxlen=self.config.max_examples),
        )

    def _track(self, service: _Service, tid: int) -> SignalTrack:
        track = service.tracks.get(tid)
        if track is None:
            track = service.tracks[tid] = self._new_track()
            if len(service.tracks) > self.config.max_tracked_templates:
                service.tracks.popitem(last=False)
        else:
            service.tracks.move_to_end(tid)
        return track

    def _errors(self, service: _Service) -> SignalTrack:
        if service.errors is None:
            service.errors = self._new_track()
        return service.errors

    def _bucket_of(self, ts: float) -> float:
        width = self.config.bucket_seconds
        return math.floor(ts / width) * width

    def _advance(self, name: str, service: _Service, now: float) -> list[Anomaly]:
        """Close the buckets of a service that ended by ``now``."""
        if service.bucket_start is None:
            return []
        width = self.config.bucket_seconds
        closable = int((now - service.bucket_start) // width)
        if closable <= 0:
            return []
        out = self._close_bucket(name, service, service.bucket_start)
        silent = closable - 1
        if silent > 0:
            step = min(silent, _MAX_CLOSED_BUCKETS)
            for track in self._all_tracks(service):
                track.baseline.decay(step)
                track.baseline.buckets += silent - step
                track.baseline.peak *= self._peak_keep ** min(silent, 1_000_000)
                if track.active:
                    track.active = False
        service.bucket_start += closable * width
        self._dirty.add(name)
        return out

    def _all_tracks(self, service: _Service) -> list[SignalTrack]:
        tracks = list(service.tracks.values())
        if service.errors is not None:
            tracks.append(service.errors)
        return tracks

    def _fold_merged(self, service: _Service) -> None:
        """Move the counts of templates merged since into the template that absorbed them."""
        for tid in list(service.tracks):
            survivor = service.miner.resolve(tid)
            if survivor == tid:
                continue
            gone = service.tracks.pop(tid)
            track = service.tracks.get(survivor)
            if track is None:
                service.tracks[survivor] = gone
                continue
            track.count += gone.count
            track.total += gone.total
            track.examples.extend(gone.examples)
            if _level_weight(gone.level) > _level_weight(track.level):
                track.level = gone.level

    def _close_bucket(self, name: str, service: _Service, start: float) -> list[Anomaly]:
        out: list[Anomaly] = []
        self._fold_merged(service)
        items: list[tuple[str, int, SignalTrack]] = [
            (template_signal(tid), tid, t) for tid, t in service.tracks.items()
        ]
        if service.errors is not None:
            items.append((ERRORS_SIGNAL, -1, service.errors))
        for signal, tid, track in items:
            anomaly = None
            if tid != OVERFLOW_ID:
                anomaly = self._judge(name, service, signal, tid, track, start)
            if anomaly is not None:
                out.append(anomaly)
            track.baseline.update(track.count)
            track.baseline.peak = max(track.baseline.peak * self._peak_keep, track.count)
            track.count = 0
        return out

    def _judge(
        self,
        name: str,
        service: _Service,
        signal: str,
        tid: int,
        track: SignalTrack,
        start: float,
    ) -> Anomaly | None:
        cfg = self.config
        x = track.count
        base = track.baseline
        service_warm = self._service_buckets(service) >= cfg.warmup_buckets
        direction: Direction | None = None
        score = 0.0
        if x >= cfg.min_count and service_warm and base.mean < 1.0:
            ratio = x / max(base.mean, 0.1)
            if ratio >= cfg.burst_ratio:
                direction = Direction.BURST
                score = ratio / (ratio + cfg.burst_ratio)
        if direction is None and x >= cfg.min_count and base.buckets >= cfg.warmup_buckets:
            z = base.zscore(x)
            if z >= cfg.rate_z:
                direction = Direction.RATE
                score = z / (z + cfg.rate_z)
        if direction is None or x < cfg.peak_ratio * base.peak:  # normal, or seen before
            track.active = False
            return None
        if track.active:
            return None
        track.active = True
        width = cfg.bucket_seconds
        std = math.sqrt(base.var + base.mean)
        template = service.miner.template_text(tid) if tid >= 0 else "lines at level error or above"
        return Anomaly(
            service=name,
            signal=signal,
            kind=SignalKind.LOG,
            timestamp=start,
            value=x / width,
            score=round(score, 6),
            direction=direction,
            detector=f"log_{direction.value}",
            expected=base.mean / width,
            band=(0.0, (base.mean + cfg.rate_z * std) / width),
            details={
                "template": template,
                "examples": list(track.examples),
                "count": x,
                "baseline_rate": base.mean / width,
                "level": track.level,
            },
        )

    def _service_buckets(self, service: _Service) -> int:
        return max((t.baseline.buckets for t in self._all_tracks(service)), default=0)


def _level_weight(level: str | None) -> float:
    return LEVEL_WEIGHTS.get(level, LEVEL_WEIGHTS[None])
