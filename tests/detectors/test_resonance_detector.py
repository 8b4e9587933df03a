"""The adaptive-resonance detector, alone and as an optional member of the ensemble."""

from __future__ import annotations

import pickle
import random

import numpy as np

from detectors.metric import make_detector
from detectors.metric.ensemble import Ensemble
from detectors.metric.resonance import S_CATS, AdaptiveResonance


def feed(det: object, values: list[float], step: float = 60.0) -> list[float]:
    scores = []
    for i, x in enumerate(values):
        scores.append(det.score_one(x, step * i))  # type: ignore[attr-defined]
        det.learn_one(x, step * i)  # type: ignore[attr-defined]
    return scores


def wave(n: int, seed: int = 1, noise: float = 0.3) -> list[float]:
    rng = random.Random(seed)
    return [50.0 + 40.0 * np.sin(i / 8.0) + rng.gauss(0.0, noise) for i in range(n)]


def test_a_shape_never_seen_inside_the_usual_range_scores_high() -> None:
    values = wave(3000)
    for i in range(2600, 2616):  # the wave stops half-way up and stays flat
        values[i] = 50.0
    scores = feed(make_detector("resonance"), values)
    assert max(scores[2600:2616]) >= 0.5
    assert max(scores[1000:2600]) < 0.5


def test_the_vigilance_adapts_to_a_noisy_series() -> None:
    # the same wave drowned in noise: windows vary much more, and the similarity that
    # counts as usual falls with them instead of every window being new
    rng = random.Random(3)
    values = [x + rng.gauss(0.0, 8.0) for x in wave(6000)]
    det = AdaptiveResonance()
    scores = feed(det, values)
    alarms = sum(s >= 0.5 for s in scores[1000:])
    assert alarms <= 10
    noisy_rho = det.bank.state[det.row, 6]  # the mean similarity
    clean = AdaptiveResonance()
    feed(clean, wave(6000))
    assert noisy_rho < clean.bank.state[clean.row, 6]


def test_the_rest_period_silences_what_follows_a_new_window() -> None:
    values = wave(3000)
    for i in range(2600, 2700):
        values[i] = 50.0
    scores = feed(make_detector("resonance", {"rest_points": 50}), values)
    first = next(i for i, s in enumerate(scores) if i >= 2600 and s >= 0.5)
    assert max(scores[first + 1 : first + 51]) == 0.0


def test_categories_are_bounded_and_the_state_stays_small() -> None:
    rng = random.Random(5)
    det = AdaptiveResonance(categories=16)
    feed(det, [rng.uniform(0.0, 100.0) for _ in range(5000)])
    assert det.bank.state[det.row, S_CATS] <= 16
    assert len(pickle.dumps(det)) < 3000


def test_a_round_trip_keeps_the_scores() -> None:
    values = wave(1500)
    det = AdaptiveResonance(stride=2)
    feed(det, values[:1000])
    copy = pickle.loads(pickle.dumps(det))
    assert feed(det, values[1000:]) == feed(copy, values[1000:])


def test_the_ensemble_takes_resonance_as_a_weighted_member() -> None:
    values = wave(3000)
    for i in range(2600, 2616):
        values[i] = 50.0
    plain, with_resonance = Ensemble(), Ensemble(resonance_weight=1.0)
    assert plain.bank.resonance is None
    base, scores = feed(plain, values), feed(with_resonance, values)
    assert all(b <= s for b, s in zip(base, scores, strict=True))
    alone = feed(make_detector("resonance"), values)
    assert scores == [max(b, r) for b, r in zip(base, alone, strict=True)]
    copy = pickle.loads(pickle.dumps(with_resonance))
    assert copy.bank.key == with_resonance.bank.key
    assert feed(copy, values[:200]) == feed(with_resonance, values[:200])


def test_the_default_ensemble_keeps_its_state_layout() -> None:
    # state written before resonance existed (four items) still loads, unchanged
    det = Ensemble()
    feed(det, wave(700))
    state = det.__getstate__()
    assert len(state) == 4
    copy = Ensemble.__new__(Ensemble)
    copy.__setstate__(state)
    assert copy.bank.key == det.bank.key


def test_a_batch_through_the_ensemble_bank_scores_as_one_at_a_time() -> None:
    values = wave(2000)
    for i in range(1700, 1716):
        values[i] = 50.0
    one = Ensemble(resonance_weight=1.0)
    expected = feed(one, values)
    banked = Ensemble(resonance_weight=1.0)
    out = banked.bank.step(
        np.full(len(values), banked.row), np.array(values), np.arange(len(values)) * 60.0
    )
    assert out[:, 0].tolist() == expected
