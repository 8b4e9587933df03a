"""Prediction benchmark: how early, and how falsely, are limit crossings predicted.

Series are built from real noisy metrics: each NAB file is cut into segments whose noise and
seasonality are kept (rescaled to a share of a capacity), and a generated, seeded trend is
added. Half the series get a trend that reaches the limit at a known time; as many get a
trend that never does (a ramp to a plateau, a rise that reverses, a slow drift), chosen so
that even its steepest stretch, extrapolated, stays ``--margin`` horizons short of the limit.
Segments with a hole of more than two hours in the data are skipped.

Measured:

* lead time: crossing time minus the onset of the first prediction that came true (its
  crossing happened within 1.5 horizons of the onset, and not before it),
* the share of crossings predicted at least 30 minutes ahead,
* false predictions per series-day: episodes (a ``predicted`` onset) not followed by a
  crossing within 1.5 horizons, over all series-days,
* crossing-time error of the first true prediction, relative to the time it left,
* cost per point of :class:`~detectors.forecast.ForecastMonitor` and of the model alone.

Files are split in two halves by sorted name (even/odd). Parameters were chosen on
``--split tune --seed 1``; figures are reported with ``--split report --seed 2``.

Run ``python -m benchmarks.predict --help``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from detectors.anomaly import Anomaly
from detectors.events import MetricEvent
from detectors.forecast import (
    CrossingPredictor,
    ForecastConfig,
    ForecastMonitor,
    ForecastRule,
    Limit,
    RobustTrend,
    TrendEstimate,
    assess,
)
from detectors.forecast.predictor import TrendModel

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
LIMIT = 0.95
WARMUP_S = 2 * 86400.0
TAIL_S = 3600.0
SEGMENT_S = 4.5 * 86400.0
MAX_SEGMENTS_PER_FILE = 3
MAX_GAP_S = 2 * 3600.0
TRUE_WITHIN = 1.5  # horizons: a prediction is true if the crossing follows within this


@dataclass
class Series:
    """One generated series and its truth."""

    name: str
    times: list[float]
    values: list[float]
    crossing: float | None
    kind: str
    trend_start: float


@dataclass
class Outcome:
    """What the monitor said about one series."""

    series: Series
    onsets: list[tuple[float, float]] = field(default_factory=list)  # (onset, crossing)
    ends: list[float] = field(default_factory=list)  # withdrawal time or end of series
    withdrawn: int = 0


def load_nab(root: Path) -> dict[str, tuple[list[float], list[float]]]:
    """All NAB series under ``root/data`` as ``{name: (epoch seconds, values)}``."""
    out = {}
    for path in sorted((root / "data").glob("*/*.csv")):
        times, values = [], []
        with path.open() as fh:
            for row in csv.DictReader(fh):
                stamp = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")
                times.append(stamp.replace(tzinfo=UTC).timestamp())
                values.append(float(row["value"]))
        out[f"{path.parent.name}/{path.name}"] = (times, values)
    return out


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(int(q * len(sorted_values)), len(sorted_values) - 1)]


def _noise(values: list[float], amplitude: float) -> list[float]:
    ordered = sorted(values)
    med = _quantile(ordered, 0.5)
    spread = _quantile(ordered, 0.99) - _quantile(ordered, 0.01)
    if spread <= 0:
        spread = max(abs(med), 1.0)
    return [(v - med) / spread * amplitude for v in values]


def build_series(
    nab: dict[str, tuple[list[float], list[float]]],
    files: list[str],
    *,
    seed: int,
    horizon: float,
    margin: float,
) -> list[Series]:
    """Positive and negative series from the segments of ``files``."""
    rng = random.Random(seed)
    out: list[Series] = []
    for name in files:
        times, values = nab[name]
        start_i = 0
        for seg in range(MAX_SEGMENTS_PER_FILE):
            if start_i >= len(times):
                break
            t_start = times[start_i]
            end_i = start_i
            while end_i < len(times) and times[end_i] < t_start + SEGMENT_S:
                end_i += 1
            if times[end_i - 1] - t_start < SEGMENT_S * 0.95:
                break
            seg_t = times[start_i:end_i]
            seg_v = values[start_i:end_i]
            start_i = end_i
            if max(b - a for a, b in itertools.pairwise(seg_t)) > MAX_GAP_S:
                continue  # a crossing inside a hole in the data cannot be seen coming
            for positive in (True, False):
                base = rng.uniform(0.3, 0.6)
                gap = LIMIT - base
                noise = _noise(seg_v, rng.uniform(0.05, 0.25))
                duration = horizon * math.exp(rng.uniform(0.0, math.log(12.0)))
                duration = min(duration, SEGMENT_S - WARMUP_S - TAIL_S)  # long horizons
                latest = SEGMENT_S - WARMUP_S - duration - TAIL_S
                t0 = t_start + WARMUP_S + rng.uniform(0.0, max(latest, 0.0))
                label = f"{name}#{seg}{'+' if positive else '-'}"
                if positive:
                    power = rng.choice([1.0, 1.0, 1.5, 0.7])
                    kind = f"leak^{power}"
                    crossing: float | None = t0 + duration
                    end = t0 + duration + TAIL_S

                    trend = _leak(t0, duration, power, gap)
                else:
                    crossing = None
                    end = t_start + SEGMENT_S
                    kind = rng.choice(["plateau", "reversal", "slow"])
                    trend = _negative_trend(rng, kind, t0, duration, gap, horizon * margin, end)
                pts = [
                    (t, base + n + trend(t)) for t, n in zip(seg_t, noise, strict=True) if t <= end
                ]
                out.append(
                    Series(
                        name=label,
                        times=[t for t, _ in pts],
                        values=[min(max(v, 0.0), 1.0) for _, v in pts],
                        crossing=crossing,
                        kind=kind,
                        trend_start=t0,
                    )
                )
    return out


def _leak(t0: float, duration: float, power: float, gap: float) -> Callable[[float], float]:
    """A trend that covers ``gap`` in ``duration`` from ``t0``: linear, convex or concave."""

    def leak(t: float) -> float:
        return gap * (max(t - t0, 0.0) / duration) ** power

    return leak


def _negative_trend(
    rng: random.Random,
    kind: str,
    t0: float,
    duration: float,
    gap: float,
    reach: float,
    end: float,
) -> Callable[[float], float]:
    """A trend whose steepest linear extrapolation over ``reach`` seconds stays below the gap."""
    if kind == "plateau":
        # level g*gap at the end of the ramp, slope g*gap/duration: g*(1 + reach/d) < 1
        g = rng.uniform(0.3, 0.9) / (1.0 + reach / duration)

        def plateau(t: float) -> float:
            return g * gap * min(max(t - t0, 0.0) / duration, 1.0)

        return plateau
    if kind == "reversal":
        g = rng.uniform(0.3, 0.9) / (1.0 + 2.0 * reach / duration)
        half = duration / 2.0

        def reversal(t: float) -> float:
            x = max(t - t0, 0.0)
            return g * gap * max(1.0 - abs(x - half) / half, 0.0) if x < duration else 0.0

        return reversal
    slope = rng.uniform(0.3, 0.9) * gap / (end - t0 + reach)

    def slow(t: float) -> float:
        return slope * max(t - t0, 0.0)

    return slow


class HoltTrend:
    """River's Holt (level + trend exponential smoothing) on bucket means, for comparison.

    Holt gives a level and a slope but no uncertainty; the estimate borrows one from the
    least-squares window that weighs the past like it (``n = 2 / alpha - 1`` buckets) and the
    exponentially weighted variance of the one-step errors, so the same decision rule
    (:func:`~detectors.forecast.assess`) can be applied to both models.
    """

    def __init__(self, *, bucket_seconds: float, alpha: float, beta: float) -> None:
        from river import time_series

        self.model = time_series.HoltWinters(alpha=alpha, beta=beta)
        self.w = bucket_seconds
        self.n_eff = max(2.0 / alpha - 1.0, 3.0)
        self.bucket: int | None = None
        self.sum = self.time = 0.0
        self.count = 0
        self.learned = 0
        self.var = 0.0

    def learn_one(self, t: float, y: float) -> TrendEstimate | None:
        """Add a sample; an estimate when a bucket closes."""
        k = math.floor(t / self.w)
        out = None
        if self.bucket is not None and k > self.bucket:
            out = self._close()
        if self.bucket is None or k > self.bucket:
            self.bucket = k
        self.sum += y
        self.time += t
        self.count += 1
        return out

    def _close(self) -> TrendEstimate | None:
        value, now = self.sum / self.count, self.time / self.count
        self.sum = self.time = 0.0
        self.count = 0
        model = self.model
        if self.learned >= 3:
            err = value - model.forecast(1)[0]
            self.var += 2.0 / (self.n_eff + 1.0) * (err * err - self.var)
        model.learn_one(value)
        self.learned += 1
        if self.learned < 6:
            return None
        n, w = self.n_eff, self.w
        sxx = w * w * n * (n * n - 1.0) / 12.0
        assert model.trend is not None  # beta is set
        return TrendEstimate(
            time=now,
            level=model.level[-1],
            slope=model.trend[-1] / w,
            slope_se=math.sqrt(self.var / sxx),
            points=round(n),
            mean_time=now - (n - 1.0) / 2.0 * w,
            sxx=sxx,
            resid_var=self.var,
        )

    def to_state(self) -> dict[str, object]:
        """Not persisted: a comparison model."""
        raise NotImplementedError

    def load_state(self, state: dict[str, object]) -> None:
        """Not persisted: a comparison model."""
        raise NotImplementedError


ModelFactory = Callable[[ForecastRule], TrendModel]


def robust_model(rule: ForecastRule) -> TrendModel:
    """The library's model, as :class:`~detectors.forecast.ForecastMonitor` sets it up."""
    return RobustTrend(
        bucket_seconds=rule.effective_bucket_seconds,
        lookback_seconds=rule.effective_lookback_seconds,
        season_seconds=rule.season_seconds,
    )


def run(
    series: list[Series],
    rule: ForecastRule,
    make_model: ModelFactory | None = None,
) -> tuple[list[Outcome], float, int]:
    """Feed every series through one monitor; returns outcomes, seconds spent, points.

    With ``make_model``, each series gets a crossing predictor around that model instead.
    """
    monitor = ForecastMonitor(ForecastConfig(rules=[rule]))
    outcomes = []
    spent = 0.0
    points = 0
    for s in series:
        outcome = Outcome(series=s)
        events = [
            MetricEvent(t, s.name, "used_ratio", v) for t, v in zip(s.times, s.values, strict=True)
        ]
        start = time.process_time()
        found: list[Anomaly] = []
        if make_model is None:
            for event in events:
                found.extend(monitor.process(event))
        else:
            predictor = CrossingPredictor(rule, events[0], model=make_model(rule))
            for event in events:
                anomaly = predictor.process(event)
                if anomaly is not None:
                    found.append(anomaly)
        spent += time.process_time() - start
        points += len(events)
        for a in found:
            if a.details["phase"] == "withdrawn":
                outcome.withdrawn += 1
                outcome.ends.append(float(a.details["emitted_at"]))
            elif a.details["emitted_at"] == a.timestamp:
                outcome.onsets.append((a.timestamp, float(a.details["crossing_time"])))
        outcome.ends += [s.times[-1]] * (len(outcome.onsets) - len(outcome.ends))
        outcomes.append(outcome)
    return outcomes, spent, points


def model_cost(
    series: list[Series],
    rule: ForecastRule,
    make_model: ModelFactory = robust_model,
    limit_points: int = 50_000,
) -> float:
    """Microseconds per point of the trend model plus the crossing assessment alone.

    The best of three runs: the machine is shared, and the slowest run measures the
    neighbours rather than the model.
    """
    return min(_model_cost_once(series, rule, make_model, limit_points) for _ in range(3))


def _model_cost_once(
    series: list[Series], rule: ForecastRule, make_model: ModelFactory, limit_points: int
) -> float:
    done = 0
    spent = 0.0
    for s in series:
        model = make_model(rule)
        start = time.process_time()
        for t, v in zip(s.times, s.values, strict=True):
            est = model.learn_one(t, v)
            if est is not None:
                assess(rule, est, t)
        spent += time.process_time() - start
        done += len(s.times)
        if done >= limit_points:
            break
    return spent / done * 1e6


def summarise(outcomes: list[Outcome], horizon: float) -> dict[str, float]:
    """The benchmark's figures."""
    leads: list[float] = []
    errors: list[float] = []
    false = 0
    early = 0
    days = 0.0
    positives = 0
    for o in outcomes:
        s = o.series
        days += (s.times[-1] - s.times[0]) / 86400.0
        first_true = None
        for (onset, predicted), end in zip(o.onsets, o.ends, strict=True):
            if s.crossing is not None and onset <= s.crossing <= onset + TRUE_WITHIN * horizon:
                if first_true is None:
                    first_true = (onset, predicted)
            elif s.crossing is None or onset < s.crossing:
                false += 1
                if s.crossing is not None and s.crossing <= end:
                    early += 1
        if s.crossing is not None:
            positives += 1
            if first_true is None:
                leads.append(0.0)
            else:
                left = s.crossing - first_true[0]
                leads.append(left)
                if left > 0:
                    errors.append(abs(first_true[1] - s.crossing) / left)
    ordered = sorted(leads)
    return {
        "series": len(outcomes),
        "positives": positives,
        "series_days": days,
        "lead_p10_min": _quantile(ordered, 0.10) / 60,
        "lead_p25_min": _quantile(ordered, 0.25) / 60,
        "lead_median_min": statistics.median(ordered) / 60,
        "lead_p75_min": _quantile(ordered, 0.75) / 60,
        "lead_max_min": ordered[-1] / 60,
        "share_30min": sum(v >= 1800 for v in leads) / max(len(leads), 1),
        "missed": sum(v <= 0 for v in leads),
        "median_lead_over_horizon": statistics.median(ordered) / horizon,
        "false": false,
        "early": early,
        "false_per_series_day": false / days,
        "withdrawn": sum(o.withdrawn for o in outcomes),
        "crossing_error_median": statistics.median(errors) if errors else math.nan,
        "crossing_error_p90": _quantile(sorted(errors), 0.9) if errors else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="NAB root folder")
    parser.add_argument("--split", choices=["tune", "report", "all"], default="report")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--horizon-hours", type=float, default=4.0)
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument(
        "--lookback-horizons",
        type=float,
        default=None,
        help="fit window in horizons (default: the rule's default)",
    )
    parser.add_argument(
        "--season-hours", type=float, default=None, help="seasonal period to remove (default: none)"
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=1.5,
        help="negatives' steepest extrapolation stays this many horizons short",
    )
    parser.add_argument(
        "--model",
        choices=["robust", "holt"],
        default="robust",
        help="trend model: ours, or River's Holt (through the same decision rule)",
    )
    parser.add_argument("--holt-alpha", type=float, default=0.1)
    parser.add_argument("--holt-beta", type=float, default=0.05)
    parser.add_argument("--show-false", action="store_true", help="list false predictions")
    parser.add_argument(
        "--show-missed", action="store_true", help="list crossings not predicted 30 min ahead"
    )
    args = parser.parse_args(argv)

    if not (args.data / "data").is_dir():
        print(f"no NAB data under {args.data}", file=sys.stderr)
        return 2
    nab = load_nab(args.data)
    names = sorted(nab)
    files = {"tune": names[0::2], "report": names[1::2], "all": names}[args.split]
    horizon = args.horizon_hours * 3600.0
    overrides: dict[str, float] = {}
    if args.min_confidence is not None:
        overrides["min_confidence"] = args.min_confidence
    if args.lookback_horizons is not None:
        overrides["lookback_seconds"] = args.lookback_horizons * horizon
    if args.season_hours is not None:
        overrides["season_seconds"] = args.season_hours * 3600.0
    rule = ForecastRule(
        name="capacity",
        metric="used_ratio",
        limit=Limit(op=">=", value=LIMIT),
        horizon_seconds=horizon,
        **overrides,  # type: ignore[arg-type]
    )
    series = build_series(nab, files, seed=args.seed, horizon=horizon, margin=args.margin)
    make_model: ModelFactory | None = None
    if args.model == "holt":
        alpha, beta = args.holt_alpha, args.holt_beta

        def make_model(rule: ForecastRule) -> TrendModel:
            return HoltTrend(bucket_seconds=rule.effective_bucket_seconds, alpha=alpha, beta=beta)

    outcomes, spent, points = run(series, rule, make_model)
    figures = summarise(outcomes, horizon)

    print(f"split={args.split} files={len(files)} seed={args.seed} horizon={args.horizon_hours}h")
    if args.model == "holt":
        print(f"model: River HoltWinters alpha={args.holt_alpha} beta={args.holt_beta}")
    print(
        f"rule: min_confidence={rule.min_confidence} "
        f"lookback={rule.effective_lookback_seconds / 3600:g}h "
        f"bucket={rule.effective_bucket_seconds:g}s season={rule.season_seconds}"
    )
    print(
        f"series={figures['series']:.0f} (crossing: {figures['positives']:.0f}) "
        f"series-days={figures['series_days']:.1f} points={points}"
    )
    print(
        "lead time (min) p10 / p25 / median / p75 / max: "
        + " / ".join(
            f"{figures[k]:.0f}"
            for k in (
                "lead_p10_min",
                "lead_p25_min",
                "lead_median_min",
                "lead_p75_min",
                "lead_max_min",
            )
        )
    )
    print(
        f"predicted >= 30 min ahead: {figures['share_30min']:.1%} "
        f"(missed: {figures['missed']:.0f})   target >= 90%"
    )
    print(f"median lead / horizon: {figures['median_lead_over_horizon']:.2f}   target >= 0.50")
    print(
        f"false predictions: {figures['false']:.0f} = "
        f"{figures['false_per_series_day']:.3f} per series-day   target <= 0.05"
    )
    print(
        f"  of which early: {figures['early']:.0f} (opened more than {TRUE_WITHIN:g} horizons "
        "before the crossing, still open when it came; counted false and the crossing missed)"
    )
    print(f"withdrawn: {figures['withdrawn']:.0f}")
    print(
        f"crossing-time error / time left, first true prediction: median "
        f"{figures['crossing_error_median']:.1%}, p90 {figures['crossing_error_p90']:.1%}"
    )
    print(
        f"cost: monitor {spent / points * 1e6:.1f} us/point, "
        f"model + assessment {model_cost(series, rule, make_model or robust_model):.1f} "
        "us/point   target <= 20"
    )
    if args.show_false:
        for o in outcomes:
            s = o.series
            for onset, predicted in o.onsets:
                ok = s.crossing is not None and onset <= s.crossing <= onset + TRUE_WITHIN * horizon
                if not ok and (s.crossing is None or onset < s.crossing):
                    print(
                        f"  false: {s.name} {s.kind} onset={onset - s.trend_start:+.0f}s "
                        f"from trend start, predicted in {predicted - onset:.0f}s"
                    )
    if args.show_missed:
        for o in outcomes:
            s = o.series
            if s.crossing is None:
                continue
            good = [
                on
                for on, _ in o.onsets
                if s.crossing - TRUE_WITHIN * horizon <= on <= s.crossing - 1800
            ]
            if not good:
                print(
                    f"  missed: {s.name} {s.kind} trend {(s.crossing - s.trend_start) / 3600:.1f}h"
                    f", onsets at {[round((on - s.crossing) / 60) for on, _ in o.onsets]} min"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
