"""Calibrating the default detector's score against each series' own history, out of fold.

Each NAB file is scored once by the default detector; each candidate below then maps that
file's score stream, causally (a point sees only the scores before it), and the candidates
are cross-validated as ``--cv`` does: chosen on three groups at the service threshold 0.5,
scored on the fourth. Run::

    python -m benchmarks.nab.calibration

Candidates (``k`` sets the rarity that maps to the threshold, 0.5 at ``p = 10**-k``):

- ``gate``: the score is kept where its conformal p-value among the series' earlier scores
  (``(1 + #earlier >= s) / (n + 1)``) is at most ``10**-k``, else capped just below the
  threshold: an alert must also be rare for its own series.
- ``conformal``: the p-value alone as the score, ``-log10(p) / 2k``.
- ``likelihood``: Numenta's anomaly likelihood over the score: a normal fitted to the last
  ``window`` scores, the mean of the last 10 against it, ``-log10(tail) / 2k``.
"""

from __future__ import annotations

import argparse
import bisect
import math
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import NormalDist

import numpy as np

from benchmarks.nab.cv import Candidate, assign_groups, cross_validate, report
from benchmarks.nab.run import _detect, load_corpus, score_corpus
from benchmarks.nab.scoring import DEFAULT_PROFILES
from detectors.metric import MetricDetectionConfig

THRESHOLD = 0.5
_NORMAL = NormalDist()


def conformal(scores: Sequence[float], k: float, *, gate: bool) -> list[float]:
    """Each score's p-value among the earlier ones: a gate on the score, or the score."""
    earlier: list[float] = []
    rare = 10.0**-k
    out = []
    for s in scores:
        n = len(earlier)
        p = (1 + n - bisect.bisect_left(earlier, s)) / (n + 1)
        if gate:
            out.append(s if p <= rare else min(s, THRESHOLD - 0.01))
        else:
            out.append(min(1.0, -math.log10(p) / (2 * k)) if s > 0 else 0.0)
        bisect.insort(earlier, s)
    return out


def likelihood(scores: Sequence[float], k: float, window: int) -> list[float]:
    """Numenta's anomaly likelihood of the score (normal fit to the last ``window``)."""
    history: deque[float] = deque(maxlen=window)
    recent: deque[float] = deque(maxlen=10)
    out = []
    for s in scores:
        recent.append(s)
        if len(history) >= 100:
            values = np.fromiter(history, float)
            z = (sum(recent) / len(recent) - values.mean()) / max(float(values.std()), 1e-4)
            tail = max(1e-12, 1.0 - _NORMAL.cdf(z))
            out.append(min(1.0, -math.log10(tail) / (2 * k)))
        else:
            out.append(0.0)
        history.append(s)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/nab/data"))
    parser.add_argument(
        "--labels", type=Path, default=Path("../shared/data/nab/labels/windows.json")
    )
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    files = load_corpus(args.data, args.labels)
    config = MetricDetectionConfig()
    with ProcessPoolExecutor(args.jobs) as pool:
        raw = [s for s, _ in pool.map(_detect, [(f, config) for f in files])]
    candidates: dict[Candidate, list[list[float]]] = {(): raw}
    for k in (2.0, 2.5, 3.0):
        candidates[(("gate", k),)] = [conformal(s, k, gate=True) for s in raw]
        candidates[(("conformal", k),)] = [conformal(s, k, gate=False) for s in raw]
    for k in (3.0, 4.0, 5.0):
        candidates[(("likelihood", k),)] = [likelihood(s, k, 2000) for s in raw]
    profiles = list(DEFAULT_PROFILES)
    folds = cross_validate(
        files, assign_groups([f.relative for f in files]), candidates, profiles, THRESHOLD
    )
    print(report(folds, THRESHOLD))
    print(f"\nall {len(files)} files at {THRESHOLD} (standard / low FP / low FN, TP/FN/FP):")
    for candidate, scores in candidates.items():
        results = score_corpus(files, scores, profiles, THRESHOLD)
        fixed = [own for _, own in results if own is not None]
        best = results[0][0]
        name = ", ".join(f"{k}={v}" for k, v in candidate) or "the score as it is"
        print(
            f"  {name:<22} {' / '.join(f'{r.normalised:.2f}' for r in fixed)} "
            f"({fixed[0].true_positives}/{fixed[0].false_negatives}/{fixed[0].false_positives});"
            f" optimised standard {best.normalised:.2f} at {best.threshold:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
