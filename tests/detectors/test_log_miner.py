"""Template mining: grouping of generated logs, persistence, the template cap."""

from __future__ import annotations

import itertools
import random

import pytest

from benchmarks.loghub import grouping_accuracy
from detectors.logs import OVERFLOW_ID, MinerConfig, StateError, TemplateMiner

USERS = [f"user{c}" for c in "abcdefghij"] + ["root", "admin", "oracle", "git", "test", "guest"]
HOSTS = ["web", "db", "cache", "queue", "auth"]


TEMPLATES = [
    "Accepted password for {user} from {ip} port {port} ssh2",
    "Failed password for invalid user {user} from {ip} port {port} ssh2",
    "Failed none for invalid user {user} from {ip} port {port} ssh2",
    "Changing view acls to: {user}",
    "Changing modify acls to: {user}",
    "Block rdd_{n}_{n} stored as bytes in memory (estimated size {n}.0 KB, free {n}.2 MB)",
    "Block rdd_{n}_{n} stored as values in memory (estimated size {n}.0 KB, free {n}.2 MB)",
    "Finished task {n}.0 in stage {n}.0 (TID {n}) in {n} ms",
    "Opening file /data/{host}/part-{n}.parquet took {n}ms",
    "Request {hex} served by {host}-{n} in 0.{n}s",
    "running",
    "blocked",
    "Connection reset by peer",
    "Session {hex} of {user} closed",
]


def _fill(template: str, rng: random.Random) -> str:
    out = template
    while "{" in out:
        values = {
            "user": rng.choice(USERS),
            "ip": ".".join(str(rng.randint(1, 254)) for _ in range(4)),
            "port": str(rng.randint(1, 65535)),
            "n": str(rng.randint(0, 999)),
            "hex": f"{rng.getrandbits(64):016x}",
            "host": rng.choice(HOSTS),
        }
        name = out[out.index("{") + 1 : out.index("}")]
        out = out.replace("{" + name + "}", values[name], 1)
    return out


def generate(n: int, seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    lines, truth = [], []
    for _ in range(n):
        k = rng.randrange(len(TEMPLATES))
        lines.append(_fill(TEMPLATES[k], rng))
        truth.append(k)
    return lines, truth


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_logs_are_grouped_exactly(seed: int) -> None:
    lines, truth = generate(3000, seed)
    miner = TemplateMiner()
    ids = [miner.add(line).template_id for line in lines]
    assert grouping_accuracy([miner.resolve(i) for i in ids], truth) == 1.0
    assert miner.template_count == len(TEMPLATES)


def test_constant_words_stay_apart_and_short_lines_are_not_merged() -> None:
    miner = TemplateMiner()
    states = ["running", "blocked", "normal", "warning", "starting", "closing"]
    for user in USERS:
        miner.add(f"Changing view acls to: {user}")
        miner.add(f"Changing modify acls to: {user}")
        for state in states:
            miner.add(state)
    assert sorted(miner.templates().values()) == sorted(
        ["Changing view acls to: <*>", "Changing modify acls to: <*>", *states]
    )


def test_user_names_become_a_parameter_after_enough_variety() -> None:
    miner = TemplateMiner(MinerConfig(merge_after=3))
    first = miner.add("Invalid user webmaster from 1.2.3.4")
    assert first.is_new
    miner.add("Invalid user oracle from 1.2.3.5")
    third = miner.add("Invalid user git from 1.2.3.6")
    assert not third.is_new  # merged into the oldest template
    assert miner.resolve(first.template_id) == third.template_id
    assert miner.template_text(third.template_id) == "Invalid user <*> from <*>"
    assert miner.size(third.template_id) == 3
    assert not miner.add("Invalid user zed from 9.9.9.9").is_new


def test_state_round_trip_continues_identically() -> None:
    lines, _ = generate(2000, 7)
    straight = TemplateMiner()
    ids_straight = [straight.add(line).template_id for line in lines]

    first = TemplateMiner()
    ids = [first.add(line).template_id for line in lines[:700]]
    restored = TemplateMiner.from_state(first.to_state())
    ids += [restored.add(line).template_id for line in lines[700:]]

    assert [straight.resolve(i) for i in ids_straight] == [restored.resolve(i) for i in ids]
    assert restored.templates() == straight.templates()


def test_template_cap_counts_overflow() -> None:
    miner = TemplateMiner(MinerConfig(max_templates=2))
    miner.add("alpha one")
    miner.add("beta two")
    over = miner.add("gamma three")
    assert over.template_id == OVERFLOW_ID and miner.cap_hits == 1
    assert miner.template_count == 2
    assert miner.add("alpha one").template_id != OVERFLOW_ID  # known lines still match


def test_corrupt_state_raises_state_error() -> None:
    with pytest.raises(StateError):
        TemplateMiner.from_state({"v": 1, "t": "nope"})
    with pytest.raises(StateError):
        TemplateMiner.from_state({"v": 99, "next": 1, "cap_hits": 0, "t": [], "a": []})


def test_two_varying_words_merge_once_both_vary_a_lot() -> None:
    rng = random.Random(5)
    names = [f"{a}{b}" for a in "bcdfghjklm" for b in ["ax", "ey", "oz", "ur"]]
    miner = TemplateMiner()
    ids = [
        miner.add(f"Connection from {rng.choice(names)} to {rng.choice(names)} closed").template_id
        for _ in range(300)
    ]
    assert {miner.resolve(i) for i in ids} == {miner.resolve(ids[0])}
    assert miner.template_text(ids[0]) == "Connection from <*> to <*> closed"


def test_state_transitions_stay_apart() -> None:
    states = ["NEW", "UNASSIGNED", "ASSIGNED", "RUNNING", "SUCCESS_CONTAINER_CLEANUP", "SUCCEEDED"]
    miner = TemplateMiner()
    for _ in range(20):
        for a, b in itertools.pairwise(states):
            miner.add(f"attempt_{random.randint(1, 99)} TaskAttempt Transitioned from {a} to {b}")
    assert miner.template_count == len(states) - 1


def test_overflow_lines_are_not_searched_again() -> None:
    miner = TemplateMiner(MinerConfig(max_templates=1))
    miner.add("alpha one")
    assert miner.add("beta two").template_id == OVERFLOW_ID
    assert miner.add("beta two").template_id == OVERFLOW_ID
    assert miner.cap_hits == 2


def test_the_loghub_alert_benchmark_takes_a_system_without_level_or_node_columns():
    from benchmarks.loghub import run_alerts

    rows = [{"Content": f"job {i} finished", "Label": "-"} for i in range(50)]
    rows.append({"Content": "KERNEL FATAL machine check interrupt", "Label": "KERNMC"})
    result = run_alerts(rows, "x")
    assert (result.lines, result.alerts) == (51, 1)


def _loghub_system(root, name: str, lines: list[tuple[str, str, str]]) -> None:
    import csv

    folder = root / name
    folder.mkdir()
    with (folder / f"{name}_2k.log_structured.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["LineId", "Content", "EventId", "EventTemplate"])
        for i, (content, event, template) in enumerate(lines, 1):
            writer.writerow([i, content, event, template])
    (folder / f"{name}_2k.log").write_text("".join(f"{c}\n" for c, _, _ in lines))


def test_the_loghub_cross_validation_scores_each_system_with_the_others_choice(tmp_path, capsys):
    from benchmarks.loghub import main, parsing_accuracy

    assert parsing_accuracy(["a <*> <*>", "b c"], ["a <*>", "b <*>"]) == 0.5
    for name in ("Alpha", "Beta"):
        lines = [(f"user {i} logged in", "E1", "user <*> logged in") for i in range(30)]
        lines += [(f"disk {i} full", "E2", "disk <*> full") for i in range(30)]
        _loghub_system(tmp_path, name, lines)
    assert main(["--data", str(tmp_path), "--cv", "--grid", "merge_after=[3,4]"]) == 0
    out = capsys.readouterr().out
    assert "Alpha" in out and "Beta" in out
    mean = next(line for line in out.splitlines() if line.startswith("mean"))
    assert mean.split()[1:] == ["1.0000", "1.0000"]  # GA and PA of two plain templates
