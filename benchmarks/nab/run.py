"""Stream NAB files through :class:`~detectors.metric.MetricMonitor` and score the results.

Each CSV (``timestamp,value``) goes, row by row and in time order, through the same monitor
the streaming agent runs; nothing looks ahead and every file gets the same configuration.
The per-row score is written in NAB's results layout
(``OUT/<detector>/<category>/<detector>_<name>.csv`` with ``timestamp,value,anomaly_score,label``)
and scored with :mod:`benchmarks.nab.scoring`, at NAB's optimised threshold and at the
monitor's own threshold.

Example::

    python -m benchmarks.nab --data ../shared/data/nab/data \\
        --labels ../shared/data/nab/labels/windows.json --out build/nab
    python -m benchmarks.nab --data ../shared/data/nab/data \\
        --labels ../shared/data/nab/labels/windows.json \\
        --results ../shared/data/nab/reference/numenta
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.nab.scoring import (
    DEFAULT_PROFILES,
    CostProfile,
    ProfileResult,
    ScoringCorpus,
    optimise_threshold,
    parse_time,
    profiles_from_json,
    score_at_threshold,
)
from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor


@dataclass(frozen=True, slots=True)
class NabFile:
    """One data file: its path relative to the data directory, its rows and windows."""

    relative: str
    timestamps: list[datetime]
    raw_timestamps: list[str]
    values: list[float]
    windows: list[tuple[datetime, datetime]]


def load_corpus(data_dir: Path, labels_file: Path) -> list[NabFile]:
    """Every ``<category>/<name>.csv`` under ``data_dir`` that the labels file knows."""
    labels: dict[str, list[list[str]]] = json.loads(labels_file.read_text())
    files = []
    for path in sorted(data_dir.rglob("*.csv")):
        relative = path.relative_to(data_dir).as_posix()
        if relative not in labels:
            print(f"skipping {relative}: not in {labels_file.name}")
            continue
        raw, values = [], []
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                raw.append(row["timestamp"])
                values.append(float(row["value"]) if row["value"].strip() else math.nan)
        windows = [(parse_time(a), parse_time(b)) for a, b in labels[relative]]
        files.append(NabFile(relative, [parse_time(t) for t in raw], raw, values, windows))
    return files


def detect_file(nab_file: NabFile, config: MetricDetectionConfig) -> list[float]:
    """Scores of one file, from a fresh monitor fed one event per row."""
    monitor = MetricMonitor(config)
    category, _, name = nab_file.relative.rpartition("/")
    service, metric = category or "nab", name.removesuffix(".csv")
    scores = []
    for ts, value in zip(nab_file.timestamps, nab_file.values, strict=True):
        epoch = ts.replace(tzinfo=UTC).timestamp()
        scores.append(monitor.score(MetricEvent(epoch, service, metric, value)))
    return scores


def _detect(args: tuple[NabFile, MetricDetectionConfig]) -> tuple[list[float], float]:
    start = time.perf_counter()
    scores = detect_file(*args)
    return scores, time.perf_counter() - start


def write_results(out_dir: Path, detector: str, nab_file: NabFile, scores: Sequence[float]) -> None:
    """One results CSV in NAB's layout and columns."""
    category, _, name = nab_file.relative.rpartition("/")
    target = out_dir / detector / category / f"{detector}_{name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for raw, ts, value, score in zip(
            nab_file.raw_timestamps, nab_file.timestamps, nab_file.values, scores, strict=True
        ):
            label = int(any(a <= ts <= b for a, b in nab_file.windows))
            writer.writerow([raw, value, repr(float(score)), label])


def read_results(results_dir: Path, nab_file: NabFile) -> list[float]:
    """Scores of one file from a NAB results directory (``name.csv`` or ``<det>_name.csv``)."""
    category, _, name = nab_file.relative.rpartition("/")
    folder = results_dir / category
    candidates = [folder / name, *sorted(folder.glob(f"*_{name}"))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no results for {nab_file.relative} in {results_dir}")
    with path.open(newline="") as fh:
        scores = [float(row["anomaly_score"]) for row in csv.DictReader(fh)]
    if len(scores) != len(nab_file.values):
        raise ValueError(f"{path}: {len(scores)} scores for {len(nab_file.values)} rows")
    return scores


def score_corpus(
    files: Sequence[NabFile],
    scores: Sequence[Sequence[float]],
    profiles: Sequence[CostProfile],
    own_threshold: float | None,
) -> list[tuple[ProfileResult, ProfileResult | None]]:
    """Per profile: the result at NAB's optimised threshold and at ``own_threshold``."""
    corpus = ScoringCorpus()
    for nab_file, file_scores in zip(files, scores, strict=True):
        corpus.add_file(nab_file.timestamps, file_scores, nab_file.windows)
    out = []
    for profile in profiles:
        best = optimise_threshold(corpus, profile)
        own = None if own_threshold is None else score_at_threshold(corpus, profile, own_threshold)
        out.append((best, own))
    return out


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        params[key] = json.loads(text)
    return params


def _base_config(args: argparse.Namespace) -> MetricDetectionConfig:
    base: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    if args.detector:
        base["default_detector"] = args.detector
    if args.param:
        base["default_params"] = _parse_params(args.param)
    return MetricDetectionConfig.model_validate(base)


def _cross_validate(
    args: argparse.Namespace, files: Sequence[NabFile], profiles: Sequence[CostProfile]
) -> int:
    from benchmarks.nab.cv import (
        assign_groups,
        cross_validate,
        parse_grid,
        report,
        score_candidates,
    )

    base = _base_config(args)
    candidates = parse_grid(args.grid)
    groups = assign_groups([f.relative for f in files])
    print(
        f"{base.default_detector}: {len(files)} files in groups "
        + ", ".join(f"{g} ({groups.count(g)})" for g in dict.fromkeys(groups))
        + f"; {len(candidates)} candidate(s)"
    )
    start = time.perf_counter()
    scores = score_candidates(files, base, candidates, _detect, args.jobs)
    print(f"detection: {time.perf_counter() - start:.1f} s")
    folds = cross_validate(files, groups, scores, profiles, base.threshold)
    print(report(folds, base.threshold))
    everything = score_corpus(files, scores[()], profiles, base.threshold)
    print(
        "all files, base configuration: "
        + "  ".join(
            f"{best.profile} {own.normalised:.2f} at {base.threshold} "
            f"(optimised {best.normalised:.2f})"
            for best, own in everything
            if own is not None
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the normalised scores."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/nab/data"))
    parser.add_argument(
        "--labels", type=Path, default=Path("../shared/data/nab/labels/windows.json")
    )
    parser.add_argument("--out", type=Path, help="write NAB-format results here")
    parser.add_argument("--profiles", type=Path, help="NAB profiles.json (default: NAB's)")
    parser.add_argument("--results", type=Path, help="score these results instead of detecting")
    parser.add_argument("--detector", help="detector name (default: the configured default)")
    parser.add_argument("--param", action="append", default=[], help="detector param k=JSON")
    parser.add_argument("--config", type=Path, help="MetricDetectionConfig as JSON")
    parser.add_argument("--jobs", type=int, default=1, help="files processed in parallel")
    parser.add_argument(
        "--cv",
        action="store_true",
        help="leave-one-group-out over four groups of files, choosing among --grid on the "
        "other groups and scoring the held-out one at the fixed threshold",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        help="with --cv: detector parameter and the values to try, name=JSON list",
    )
    parser.add_argument(
        "--halves",
        action="store_true",
        help="also score the even- and odd-numbered files (sorted order) apart",
    )
    args = parser.parse_args(argv)

    profiles = (
        profiles_from_json(json.loads(args.profiles.read_text()))
        if args.profiles
        else list(DEFAULT_PROFILES)
    )
    files = load_corpus(args.data, args.labels)
    if not files:
        parser.error(f"no labelled CSV files under {args.data}")

    if args.cv:
        return _cross_validate(args, files, profiles)

    own_threshold: float | None = None
    if args.results:
        scores = [read_results(args.results, f) for f in files]
        name = args.results.name
        print(f"scored {len(files)} result files from {args.results}")
    else:
        config = _base_config(args)
        own_threshold = config.threshold
        name = config.default_detector
        jobs = [(f, config) for f in files]
        start = time.perf_counter()
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                done = list(pool.map(_detect, jobs))
        else:
            done = [_detect(job) for job in jobs]
        scores = [s for s, _ in done]
        busy = sum(t for _, t in done)
        n_points = sum(len(f.values) for f in files)
        print(
            f"{name}: {len(files)} files, {n_points} points, "
            f"{1e6 * busy / n_points:.1f} us/point (monitor incl.), "
            f"wall {time.perf_counter() - start:.1f} s"
        )
        if args.out:
            for f, s in zip(files, scores, strict=True):
                write_results(args.out, name, f, s)
            print(f"results written to {args.out / name}")

    print(f"{'profile':<20} {'optimised':>9} {'thr':>8} {'TP/FN/FP':>12}   {'own thr':>9}")
    for best, own in score_corpus(files, scores, profiles, own_threshold):
        line = (
            f"{best.profile:<20} {best.normalised:9.2f} {best.threshold:8.4f} "
            f"{best.true_positives:>4}/{best.false_negatives}/{best.false_positives:<4}"
        )
        if own is not None:
            line += (
                f"   {own.normalised:9.2f} at {own.threshold:.3f} "
                f"({own.true_positives}/{own.false_negatives}/{own.false_positives})"
            )
        print(line)
    if args.halves:
        for label, part in (("even", slice(0, None, 2)), ("odd", slice(1, None, 2))):
            results = score_corpus(files[part], scores[part], profiles, own_threshold)
            text = "  ".join(
                f"{best.profile} {best.normalised:.2f}"
                + ("" if own is None else f" (own thr {own.normalised:.2f})")
                for best, own in results
            )
            print(f"{label} files: {text}")
    return 0
