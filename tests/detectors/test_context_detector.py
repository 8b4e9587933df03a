"""The contextual detector and the ensemble that makes it part of the default."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detectors.metric import make_detector
from detectors.metric.context import ContextBank, ContextParams
from detectors.metric.ensemble import Ensemble


def feed(name: str, values: list[float], step: float = 60.0, **params: object) -> list[float]:
    det = make_detector(name, dict(params))
    scores = []
    for i, x in enumerate(values):
        scores.append(det.score_one(x, step * i))
        det.learn_one(x, step * i)
    return scores


def sawtooth(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [10.0 * (i % 12) + rng.gauss(0.0, 0.3) for i in range(n)]


def test_a_value_out_of_its_context_scores_high_inside_the_usual_range() -> None:
    # a sawtooth 0..110 that jumps back to the bottom in the middle of a rise: every value
    # is inside the usual range, but a low value never followed a middle one
    values = sawtooth(2000)
    values[1806] = 0.0  # at i % 12 == 6, after 50
    scores = feed("context", values)
    assert scores[1806] >= 0.5
    assert max(scores[600:1800]) < 0.5


def test_noise_in_the_lowest_bit_leaves_the_coarse_contexts_confirmed() -> None:
    rng = random.Random(2)
    values = [50.0 + 10.0 * rng.random() for _ in range(3000)]  # one coarse level, noisy
    scores = feed("context", values)
    assert max(scores[1000:]) < 0.5


def test_the_rest_period_silences_the_learning_after_a_change() -> None:
    values = sawtooth(2000)
    values[1806] = 0.0  # after 50: out of its context
    scores = feed("context", values, rest_threshold=0.5, rest_points=120)
    assert scores[1806] >= 0.5
    assert max(scores[1807:1927]) == 0.0


def test_a_new_extreme_of_noise_is_not_new_to_every_context() -> None:
    # how far a value lies beyond the range is robust_likelihood's question; here the
    # value takes the nearest level and the range widens
    rng = random.Random(4)
    values = [100.0 + rng.gauss(0.0, 6.0) for _ in range(3000)]
    values[2500] = max(values[:2500]) + 5.0
    scores = feed("context", values)
    assert scores[2500] < 0.5


def test_a_gap_restarts_the_recent_past_without_alarm() -> None:
    values = sawtooth(1500)
    det = make_detector("context")
    for i, x in enumerate(values):
        det.score_one(x, 60.0 * i)
        det.learn_one(x, 60.0 * i)
    later = 60.0 * 1500 + 30 * 86400.0
    resumed = [det.score_one(values[5], later)]
    det.learn_one(values[5], later)
    for i, x in enumerate(values[6:200], 1):
        resumed.append(det.score_one(x, later + 60.0 * i))
        det.learn_one(x, later + 60.0 * i)
    assert max(resumed) < 0.5


def test_a_context_bank_runs_many_series_as_one_detector_each() -> None:
    values = sawtooth(800)
    bank = ContextBank(ContextParams())
    rows = [bank.allocate() for _ in range(3)]
    xs = np.array([v * (r + 1) for v in values for r in range(3)])
    ts = np.repeat(np.arange(len(values)) * 60.0, 3)
    out = bank.step(np.array(rows * len(values)), xs, ts)
    for r in range(3):
        alone = feed("context", [v * (r + 1) for v in values])
        assert out[r::3, 0].tolist() == alone


def test_parameters_that_need_too_large_a_table_are_refused() -> None:
    with pytest.raises(ValueError, match="table entries"):
        ContextParams(bits=3, max_order=7)


def test_the_ensemble_is_the_larger_of_its_weighted_scores() -> None:
    values = sawtooth(2000)
    values[1806] = 0.0
    robust = feed("robust_likelihood", values)
    context = feed("context", values)
    ensemble = feed("ensemble", values)
    assert ensemble == [max(r, 0.5 * c) for r, c in zip(robust, context, strict=True)]
    assert feed("ensemble", values, context_weight=0.0) == robust


def test_the_ensemble_of_a_bank_matches_one_detector_at_a_time() -> None:
    values = sawtooth(700)
    det = Ensemble()
    alone = []
    for i, x in enumerate(values):
        alone.append(det.score_one(x, 60.0 * i)), det.learn_one(x, 60.0 * i)
    bank = Ensemble().new_bank()
    row = bank.allocate()
    out = bank.step(np.full(len(values), row), np.array(values), np.arange(len(values)) * 60.0)
    assert out[:, 0].tolist() == alone
