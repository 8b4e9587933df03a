"""The NAB scorer and the NAB benchmark command, on small generated corpora."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.nab.run import main
from benchmarks.nab.scoring import (
    DEFAULT_PROFILES,
    ScoringCorpus,
    optimise_threshold,
    probation_length,
    scaled_sigmoid,
    score_at_threshold,
)

STANDARD = DEFAULT_PROFILES[0]
START = datetime(2024, 1, 1)
N = 1000
WINDOW = (500, 599)


def stamps(n: int = N) -> list[datetime]:
    return [START + timedelta(minutes=5 * i) for i in range(n)]


def corpus_with(scores: list[float]) -> ScoringCorpus:
    ts = stamps(len(scores))
    corpus = ScoringCorpus()
    corpus.add_file(ts, scores, [(ts[WINDOW[0]], ts[WINDOW[1]])])
    return corpus


def fire_at(*rows: int) -> list[float]:
    scores = [0.0] * N
    for r in rows:
        scores[r] = 1.0
    return scores


def test_sigmoid_and_probation_follow_nab() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(5.0) == -1.0
    assert probation_length(1000) == 150
    assert probation_length(100_000) == 750


def test_perfect_and_null_detectors_normalise_to_100_and_0() -> None:
    for profile in DEFAULT_PROFILES:
        assert optimise_threshold(corpus_with(fire_at(500)), profile).normalised == pytest.approx(
            100.0
        )
        assert optimise_threshold(corpus_with([0.0] * N), profile).normalised == pytest.approx(0.0)


def test_only_the_earliest_detection_of_a_window_counts() -> None:
    early_and_late = score_at_threshold(corpus_with(fire_at(520, 590)), STANDARD, 0.5)
    early_only = score_at_threshold(corpus_with(fire_at(520)), STANDARD, 0.5)
    assert early_and_late.raw == pytest.approx(early_only.raw)
    late_only = score_at_threshold(corpus_with(fire_at(590)), STANDARD, 0.5)
    assert 0.0 < late_only.raw < early_only.raw < 1.0


def test_false_positives_cost_by_position() -> None:
    before_any_window = score_at_threshold(corpus_with(fire_at(500, 300)), STANDARD, 0.5)
    just_after = score_at_threshold(corpus_with(fire_at(500, 605)), STANDARD, 0.5)
    far_after = score_at_threshold(corpus_with(fire_at(500, 990)), STANDARD, 0.5)
    assert before_any_window.raw == pytest.approx(1.0 - STANDARD.fp_weight)
    assert far_after.raw == pytest.approx(1.0 - STANDARD.fp_weight)
    assert 1.0 - STANDARD.fp_weight < just_after.raw < 1.0
    assert before_any_window.false_positives == 1


def test_detections_in_probation_are_ignored() -> None:
    result = score_at_threshold(corpus_with(fire_at(500, 10, 100)), STANDARD, 0.5)
    assert result.normalised == pytest.approx(100.0)


def test_threshold_is_chosen_over_the_whole_corpus() -> None:
    ts = stamps()
    corpus = ScoringCorpus()
    good = [0.0] * N
    good[510] = 0.9
    noisy = [0.0] * N
    noisy[300] = 0.95  # a false alarm that outranks the detection
    noisy[520] = 0.8
    for scores in (good, noisy):
        corpus.add_file(ts, scores, [(ts[WINDOW[0]], ts[WINDOW[1]])])
    best = optimise_threshold(corpus, STANDARD)
    assert best.threshold == 0.8
    assert (best.true_positives, best.false_positives, best.false_negatives) == (2, 1, 0)


def write_corpus(root: Path) -> tuple[Path, Path]:
    data = root / "data"
    labels: dict[str, list[list[str]]] = {}
    for name, spike_at in (("flat.csv", 700), ("wave.csv", 800)):
        path = data / "synthetic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ts = stamps()
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value"])
            for i, t in enumerate(ts):
                value = 10.0 + math.sin(i / 20.0) + (40.0 if i == spike_at else 0.0)
                writer.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), value])
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        labels[f"synthetic/{name}"] = [
            [ts[spike_at - 40].strftime(fmt), ts[spike_at + 40].strftime(fmt)]
        ]
    labels_file = root / "windows.json"
    labels_file.write_text(json.dumps(labels))
    return data, labels_file


def test_command_writes_nab_results_and_prints_three_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = write_corpus(tmp_path)
    out = tmp_path / "results"
    assert main(["--data", str(data), "--labels", str(labels), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert profile in printed
    result = out / "ensemble" / "synthetic" / "ensemble_flat.csv"
    with result.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == N
    assert sum(int(r["label"]) for r in rows) == 81
    spike_score = float(rows[700]["anomaly_score"])
    assert spike_score >= 0.5
    assert spike_score == max(float(r["anomaly_score"]) for r in rows[150:])

    # the written results score the same when read back
    assert (
        main(
            [
                "--data",
                str(data),
                "--labels",
                str(labels),
                "--results",
                str(out / "ensemble"),
            ]
        )
        == 0
    )
    rescored = capsys.readouterr().out
    assert printed.splitlines()[-3].split()[:2] == rescored.splitlines()[-3].split()[:2]
