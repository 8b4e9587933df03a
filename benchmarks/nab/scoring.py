"""The NAB scoring rules, implemented from NAB's documentation and public scorer.

A detection is a row whose ``anomaly_score`` is at or above a threshold. Each row past the
probation period gets a weight: inside a labelled window, a scaled sigmoid of its position
(the earliest row of the window earns ``tpWeight``, the last one about 0); outside every
window, ``fpWeight`` times a scaled sigmoid of its distance past the preceding window
(``-fpWeight`` when no window precedes it). Only the earliest detection of a window counts;
a window with none costs ``fnWeight``. One threshold is chosen for the whole corpus per
profile, the one whose summed raw score is highest, and the raw score is normalised between
the null detector (never fires) and the perfect one (fires on the first row of every window).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

PROBATION_PERCENT = 0.15
"""Share of each file, capped at 750 rows, that is not scored."""


@dataclass(frozen=True, slots=True)
class CostProfile:
    """One NAB application profile (its cost matrix)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


DEFAULT_PROFILES: tuple[CostProfile, ...] = (
    CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    CostProfile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
)
"""NAB's three profiles, as in its ``config/profiles.json``."""


def profiles_from_json(data: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[CostProfile]:
    """Profiles from the content of NAB's ``profiles.json``."""
    return [
        CostProfile(
            name,
            tp_weight=float(spec["CostMatrix"]["tpWeight"]),
            fp_weight=float(spec["CostMatrix"]["fpWeight"]),
            fn_weight=float(spec["CostMatrix"]["fnWeight"]),
        )
        for name, spec in data.items()
    ]


def scaled_sigmoid(position: float) -> float:
    """NAB's reward curve: about +1 at position -1 (window start), 0 at 0, -1 from 3 on.

    >>> round(scaled_sigmoid(-1.0), 5)
    0.98661
    >>> scaled_sigmoid(3.0)
    -1.0
    """
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(n_rows: int) -> float:
    """Rows at the start of a file that are not scored.

    >>> probation_length(1000), probation_length(22695)
    (150, 750.0)
    """
    return min(math.floor(PROBATION_PERCENT * n_rows), PROBATION_PERCENT * 5000)


def parse_time(text: str) -> datetime:
    """A NAB timestamp (``2014-04-10 07:15:00`` with optional fraction)."""
    return datetime.fromisoformat(text.strip())


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One row past probation: its score and what firing on it is worth."""

    score: float
    window: int | None  # corpus-wide window id, None outside every window
    inside_weight: float  # tp reward relative to tp_weight (0..1) inside a window
    outside_weight: float  # unweighted fp sigmoid outside (negative)


@dataclass(slots=True)
class ScoringCorpus:
    """Rows of every file, ready for threshold sweeps; fill it with :meth:`add_file`."""

    rows: list[ScoredRow] = field(default_factory=list)
    n_windows: int = 0  # every labelled window (the perfect detector's count)
    scorable_windows: set[int] = field(default_factory=set)

    def add_file(
        self,
        timestamps: Sequence[datetime],
        scores: Sequence[float],
        windows: Sequence[tuple[datetime, datetime]],
    ) -> None:
        """Add one file: its row times, its detector scores and its labelled windows."""
        if len(timestamps) != len(scores):
            raise ValueError("timestamps and scores differ in length")
        n = len(timestamps)
        probation = probation_length(n)
        # window k covers rows [starts[k], ends[k]]: first row at/after its start, last
        # row at/before its end (exact matches in NAB's own labels)
        spans: list[tuple[int, int, int]] = []
        for start, end in sorted(windows):
            lo = bisect.bisect_left(timestamps, start)
            hi = bisect.bisect_right(timestamps, end) - 1
            wid = self.n_windows
            self.n_windows += 1
            if lo <= hi:
                spans.append((lo, hi, wid))
        max_tp = scaled_sigmoid(-1.0)
        k = 0
        prev_end: int | None = None
        prev_width = 0.0
        for i in range(n):
            while k < len(spans) and i > spans[k][1]:
                prev_end, prev_width = spans[k][1], float(spans[k][1] - spans[k][0] + 1)
                k += 1
            inside = k < len(spans) and spans[k][0] <= i <= spans[k][1]
            if i < probation:
                continue
            if inside:
                lo, hi, wid = spans[k]
                width = float(hi - lo + 1)
                weight = scaled_sigmoid(-(hi - i + 1) / width) / max_tp
                self.rows.append(ScoredRow(float(scores[i]), wid, weight, 0.0))
                self.scorable_windows.add(wid)
            else:
                if prev_end is None:
                    position = 3.0
                elif prev_width > 1:
                    position = abs(prev_end - i) / (prev_width - 1.0)
                else:
                    position = 3.0
                self.rows.append(ScoredRow(float(scores[i]), None, 0.0, scaled_sigmoid(position)))


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """Score of a corpus for one profile at one threshold."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    true_positives: int  # windows detected
    false_negatives: int  # windows missed
    false_positives: int  # detections outside windows


def _raw_at(corpus: ScoringCorpus, profile: CostProfile, rows: Sequence[ScoredRow]) -> float:
    best: dict[int, float] = {}
    fp = 0.0
    for row in rows:
        if row.window is None:
            fp += row.outside_weight * profile.fp_weight
        else:
            weight = row.inside_weight * profile.tp_weight
            if weight > best.get(row.window, -math.inf):
                best[row.window] = weight
    missed = len(corpus.scorable_windows) - len(best)
    return fp + sum(best.values()) - missed * profile.fn_weight


def _normalise(corpus: ScoringCorpus, profile: CostProfile, raw: float) -> float:
    null = -profile.fn_weight * len(corpus.scorable_windows)
    perfect = profile.tp_weight * corpus.n_windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def score_at_threshold(
    corpus: ScoringCorpus, profile: CostProfile, threshold: float
) -> ProfileResult:
    """Score the corpus with detections at ``score >= threshold``."""
    fired = [r for r in corpus.rows if r.score >= threshold]
    raw = _raw_at(corpus, profile, fired)
    windows = {r.window for r in fired if r.window is not None}
    return ProfileResult(
        profile=profile.name,
        threshold=threshold,
        raw=raw,
        normalised=_normalise(corpus, profile, raw),
        true_positives=len(windows),
        false_negatives=len(corpus.scorable_windows) - len(windows),
        false_positives=sum(1 for r in fired if r.window is None),
    )


def optimise_threshold(corpus: ScoringCorpus, profile: CostProfile) -> ProfileResult:
    """Sweep every distinct score, highest first, and keep the best threshold.

    The null choice (a threshold above every score) is one of the candidates.
    """
    ordered = sorted(corpus.rows, key=lambda r: r.score, reverse=True)
    best: dict[int, float] = {}
    fp = 0.0
    scorable = len(corpus.scorable_windows)
    best_raw = -profile.fn_weight * scorable
    best_threshold = math.inf
    tp_sum = 0.0
    for i, row in enumerate(ordered):
        if row.window is None:
            fp += row.outside_weight * profile.fp_weight
        else:
            weight = row.inside_weight * profile.tp_weight
            old = best.get(row.window)
            if old is None:
                best[row.window] = weight
                tp_sum += weight
            elif weight > old:
                best[row.window] = weight
                tp_sum += weight - old
        if i + 1 < len(ordered) and ordered[i + 1].score == row.score:
            continue  # a threshold takes in every row with the same score
        raw = fp + tp_sum - (scorable - len(best)) * profile.fn_weight
        if raw > best_raw:
            best_raw, best_threshold = raw, row.score
    return score_at_threshold(corpus, profile, best_threshold)
