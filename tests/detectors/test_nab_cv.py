"""The NAB cross-validation protocol: the choice never sees the held-out group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from benchmarks.nab.cv import assign_groups, cross_validate, parse_grid
from benchmarks.nab.scoring import DEFAULT_PROFILES


@dataclass(frozen=True)
class File:
    relative: str
    timestamps: list[datetime]
    windows: list[tuple[datetime, datetime]]


def make_file(relative: str, n: int = 400, window_at: int = 300) -> File:
    start = datetime(2024, 1, 1)
    times = [start + timedelta(minutes=5 * i) for i in range(n)]
    return File(relative, times, [(times[window_at - 10], times[window_at + 10])])


def fires_at(n: int, *rows: int) -> list[float]:
    return [0.9 if i in rows else 0.0 for i in range(n)]


FILES = [
    make_file("artificialWithAnomaly/a.csv"),
    make_file("realAWSCloudwatch/b.csv"),
    make_file("realKnownCause/c.csv"),
    make_file("realKnownCause/d.csv"),
]
GROUPS = assign_groups([f.relative for f in FILES])


def test_groups_are_the_four_named_in_the_protocol():
    assert GROUPS == [
        "artificial",
        "realAWSCloudwatch",
        "realKnownCause-even",
        "realKnownCause-odd",
    ]


def test_the_candidate_is_chosen_on_the_other_groups_and_scored_at_the_fixed_threshold():
    # "early" finds every window; "late" misses all but the last file's, where "early"
    # fires a false positive. Held out, the last file is scored with what the others chose.
    early = [fires_at(400, 292) for _ in FILES[:3]] + [fires_at(400, 100, 292)]
    late = [fires_at(400) for _ in FILES[:3]] + [fires_at(400, 292)]
    grid = {(("x", "early"),): early, (("x", "late"),): late}
    folds = cross_validate(FILES, GROUPS, grid, DEFAULT_PROFILES, threshold=0.5)
    by_group = {f.group: f for f in folds}
    assert by_group["realKnownCause-odd"].chosen == (("x", "early"),)
    held = by_group["realKnownCause-odd"].fixed[0]
    assert (held.true_positives, held.false_positives) == (1, 1)  # early's, not late's
    assert all(f.fixed[0].threshold == 0.5 for f in folds)


def test_the_gap_is_optimised_minus_fixed_and_never_negative():
    low = [[0.4 if i == 292 else 0.0 for i in range(400)] for _ in FILES]
    [fold, *_] = cross_validate(FILES, GROUPS, {(): low}, DEFAULT_PROFILES, threshold=0.5)
    assert fold.fixed[0].true_positives == 0  # 0.4 is under the fixed threshold
    assert fold.optimised[0].true_positives == 1
    assert fold.gap > 0


def test_the_grid_puts_the_base_configuration_first():
    assert parse_grid([]) == [()]
    assert parse_grid(["k=[1]"])[0] == ()
