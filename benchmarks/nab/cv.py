"""Leave-one-group-out cross-validation of the metric detector on NAB, at the fixed threshold.

The files fall into four groups: the artificial files (with and without anomalies), the
AWS CloudWatch files, and the ``realKnownCause`` files split in two by their sorted position
(even, odd). For each group in turn, every candidate parameter set of the grid is scored on
the other three groups (standard profile, **at the service's fixed threshold**), the best is
kept, and the held-out group is scored with it: at the fixed threshold (what a user gets),
at the held-out group's own optimised threshold (what NAB reports), and the gap between the
two. Nothing about the held-out group enters the choice.

Each candidate's scores are computed once per file (a file's scores do not depend on the
fold), so the cost is one NAB run per grid point.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchmarks.nab.scoring import (
    CostProfile,
    ProfileResult,
    ScoringCorpus,
    optimise_threshold,
    score_at_threshold,
)
from detectors.metric import MetricDetectionConfig

GROUP_NAMES = ("artificial", "realAWSCloudwatch", "realKnownCause-even", "realKnownCause-odd")

Candidate = tuple[tuple[str, Any], ...]
"""Detector parameters that differ from the base configuration's, as sorted pairs."""


class JsonValue(str):
    """A mapping or list value of a grid, kept as its JSON text so candidates hash."""

    def decode(self) -> Any:
        return json.loads(self)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return JsonValue(json.dumps(value, sort_keys=True))
    return value


def group_of(relative: str, index_in_category: int) -> str:
    """The fold a file belongs to, from its ``<category>/<name>.csv`` path.

    >>> group_of("artificialNoAnomaly/art_flatline.csv", 3)
    'artificial'
    >>> group_of("realKnownCause/nyc_taxi.csv", 4), group_of("realKnownCause/x.csv", 1)
    ('realKnownCause-even', 'realKnownCause-odd')
    """
    category = relative.split("/", 1)[0]
    if category.startswith("artificial"):
        return "artificial"
    if category == "realKnownCause":
        return f"realKnownCause-{'even' if index_in_category % 2 == 0 else 'odd'}"
    return category


def assign_groups(relatives: Sequence[str]) -> list[str]:
    """:func:`group_of` for every file, indices counted per category in sorted order."""
    seen: dict[str, int] = {}
    groups = []
    for relative in relatives:
        category = relative.split("/", 1)[0]
        groups.append(group_of(relative, seen.get(category, 0)))
        seen[category] = seen.get(category, 0) + 1
    return groups


def parse_grid(items: Sequence[str]) -> list[Candidate]:
    """Every combination of ``name=[v1, v2, ...]`` items (JSON lists), the base first.

    >>> parse_grid(["a=[1, 2]", "b=[true]"])
    [(), (('a', 1), ('b', True)), (('a', 2), ('b', True))]
    """
    axes: list[tuple[str, list[Any]]] = []
    for item in items:
        key, _, text = item.partition("=")
        values = json.loads(text)
        if not isinstance(values, list) or not values:
            raise ValueError(f"--grid {key}: expected a non-empty JSON list, got {text!r}")
        axes.append((key, [_hashable(v) for v in values]))
    names = [k for k, _ in axes]
    combos = [
        tuple(sorted(zip(names, vs, strict=True)))
        for vs in itertools.product(*(v for _, v in axes))
    ]
    return [(), *(c for c in combos if c)]


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One held-out group: the candidate chosen without it, and its scores."""

    group: str
    chosen: Candidate
    train_standard: float
    fixed: list[ProfileResult]
    optimised: list[ProfileResult]

    @property
    def gap(self) -> float:
        """Standard profile: optimised minus fixed threshold."""
        return self.optimised[0].normalised - self.fixed[0].normalised


def corpus_of(
    files: Sequence[Any], scores: Sequence[Sequence[float]], indices: Sequence[int]
) -> ScoringCorpus:
    """The scoring corpus of the files at ``indices``."""
    corpus = ScoringCorpus()
    for index in indices:
        corpus.add_file(files[index].timestamps, scores[index], files[index].windows)
    return corpus


def cross_validate(
    files: Sequence[Any],
    groups: Sequence[str],
    scores_by_candidate: Mapping[Candidate, Sequence[Sequence[float]]],
    profiles: Sequence[CostProfile],
    threshold: float,
) -> list[FoldResult]:
    """Leave each group out; choose on the rest at ``threshold``; score the group left out.

    The standard profile (``profiles[0]``) makes the choice; ties keep the earlier
    candidate (the base configuration comes first).
    """
    results = []
    for held in dict.fromkeys(groups):
        train_at = [i for i, g in enumerate(groups) if g != held]
        test_at = [i for i, g in enumerate(groups) if g == held]
        best: tuple[float, Candidate] | None = None
        for candidate, scores in scores_by_candidate.items():
            train = corpus_of(files, scores, train_at)
            value = score_at_threshold(train, profiles[0], threshold).normalised
            if best is None or value > best[0]:
                best = (value, candidate)
        assert best is not None
        test = corpus_of(files, scores_by_candidate[best[1]], test_at)
        results.append(
            FoldResult(
                group=held,
                chosen=best[1],
                train_standard=best[0],
                fixed=[score_at_threshold(test, p, threshold) for p in profiles],
                optimised=[optimise_threshold(test, p) for p in profiles],
            )
        )
    return results


def config_for(base: MetricDetectionConfig, candidate: Candidate) -> MetricDetectionConfig:
    """The base configuration with the candidate's detector parameters on top."""
    if not candidate:
        return base
    params = {
        **base.default_params,
        **{k: v.decode() if isinstance(v, JsonValue) else v for k, v in candidate},
    }
    return base.model_copy(update={"default_params": params})


def score_candidates(
    files: Sequence[Any],
    base: MetricDetectionConfig,
    candidates: Sequence[Candidate],
    detect: Callable[[tuple[Any, MetricDetectionConfig]], tuple[list[float], float]],
    jobs: int,
    say: Callable[[str], None] = print,
) -> dict[Candidate, list[list[float]]]:
    """Every candidate's scores of every file."""
    out: dict[Candidate, list[list[float]]] = {}
    pool = ProcessPoolExecutor(jobs) if jobs > 1 else None
    try:
        for number, candidate in enumerate(candidates, 1):
            work = [(f, config_for(base, candidate)) for f in files]
            done = list(pool.map(detect, work)) if pool else [detect(w) for w in work]
            out[candidate] = [s for s, _ in done]
            say(f"  candidate {number}/{len(candidates)}: {describe(candidate)}")
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def describe(candidate: Candidate) -> str:
    return ", ".join(f"{k}={v}" for k, v in candidate) or "defaults"


def report(folds: Sequence[FoldResult], threshold: float) -> str:
    """The per-fold table and the mean, as printed by ``--cv``."""
    names = [p.profile for p in folds[0].fixed]
    short = {"standard": "std", "reward_low_FP_rate": "lowFP", "reward_low_FN_rate": "lowFN"}
    head = " ".join(f"{short.get(n, n):>6}" for n in names)
    lines = [
        f"held-out group        at thr {threshold:<4}  {head} | optimised {head} |   gap  "
        "TP/FN/FP at thr   chosen on the other groups",
    ]
    for f in folds:
        fixed = " ".join(f"{r.normalised:6.2f}" for r in f.fixed)
        best = " ".join(f"{r.normalised:6.2f}" for r in f.optimised)
        s = f.fixed[0]
        lines.append(
            f"{f.group:<21} {'':12}{fixed} |           {best} | {f.gap:5.2f}  "
            f"{s.true_positives:>3}/{s.false_negatives}/{s.false_positives:<5}      "
            f"{describe(f.chosen)}"
        )
    n = len(folds)
    mean_fixed = " ".join(
        f"{sum(f.fixed[i].normalised for f in folds) / n:6.2f}" for i in range(len(names))
    )
    mean_best = " ".join(
        f"{sum(f.optimised[i].normalised for f in folds) / n:6.2f}" for i in range(len(names))
    )
    mean_gap = sum(f.gap for f in folds) / n
    lines.append(f"{'mean':<21} {'':12}{mean_fixed} |           {mean_best} | {mean_gap:5.2f}")
    lines.append(f"largest gap: {max(f.gap for f in folds):.2f}")
    return "\n".join(lines)
