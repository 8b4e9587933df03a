"""The spine end to end: real broker, real worker process, every message accounted for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.deadletter import parse_headers
from tests.kafka_harness import BrokerHandle, WorkerProcess, consume_all, produce, unique_prefix

pytestmark = pytest.mark.kafka

MAX_BYTES = 64 * 1024
TOTAL = 20_000
BAD_SHARE = 0.02


def _metric(rng: random.Random, ts: float) -> dict[str, object]:
    return {
        "timestamp": ts,
        "service": rng.choice(["api", "db", "cache"]),
        "metric": rng.choice(["latency_ms", "cpu", "errors"]),
        "value": rng.random() * 100,
        "labels": {"region": "eu"},
    }


def _log(rng: random.Random, ts: float) -> dict[str, object]:
    return {
        "timestamp": ts,
        "service": rng.choice(["api", "db"]),
        "message": f"request {rng.randint(1, 9999)} served in {rng.randint(1, 500)} ms",
        "level": "info",
    }


def _bad(kind: str, rng: random.Random, make: object) -> tuple[bytes, str]:
    """A malformed message (or element) of a kind, and the reason it must be rejected with."""
    good = make(rng, 1_700_000_000.0)  # type: ignore[operator]
    if kind == "invalid_json":
        return b'{"timestamp": 1700000000, "service": "api", ', "invalid_json"
    if kind == "missing_field":
        good.pop("service")
        return orjson.dumps(good), "missing_field"
    if kind == "wrong_type":
        key = "value" if "value" in good else "message"
        good[key] = ["not", "a", "scalar"]
        return orjson.dumps(good), "wrong_type"
    if kind == "oversized":
        good["labels" if "labels" in good else "attributes"] = {"pad": "x" * (MAX_BYTES + 10)}
        return orjson.dumps(good), "oversized"
    if kind == "binary":
        return b"\xff\xfe" + rng.randbytes(62), "unknown_format"
    raise AssertionError(kind)


def build_stream(
    make: object, seed: int
) -> tuple[list[bytes], int, Counter[str], list[tuple[bytes, str]]]:
    """Messages with TOTAL events of which BAD_SHARE are malformed.

    Returns the messages, the number of valid events, the expected dead-letter reasons,
    and the (original, reason) pairs of the bad items.
    """
    rng = random.Random(seed)
    n_bad = int(TOTAL * BAD_SHARE)
    kinds = ["invalid_json", "missing_field", "wrong_type", "oversized", "binary"]
    messages: list[bytes] = []
    bad_items: list[tuple[bytes, str]] = []
    valid = 0
    ts = 1_700_000_000.0
    bad_left = n_bad
    good_left = TOTAL - n_bad
    while good_left or bad_left:
        ts += 1
        roll = rng.random()
        if bad_left and (roll < bad_left / (good_left + bad_left) or not good_left):
            kind = kinds[bad_left % len(kinds)]
            raw, reason = _bad(kind, rng, make)
            bad_left -= 1
            if kind in ("missing_field", "wrong_type") and good_left >= 3 and rng.random() < 0.5:
                # a bad element inside an array: the good neighbours must be kept
                items = [make(rng, ts), orjson.loads(raw), make(rng, ts)]  # type: ignore[operator]
                messages.append(orjson.dumps(items))
                bad_items.append((orjson.dumps(items[1]), reason))
                good_left -= 2
                valid += 2
            else:
                messages.append(raw)
                bad_items.append((raw, reason))
        elif good_left >= 10 and rng.random() < 0.2:
            messages.append(orjson.dumps([make(rng, ts + i / 10) for i in range(10)]))  # type: ignore[operator]
            good_left -= 10
            valid += 10
        else:
            messages.append(orjson.dumps(make(rng, ts)))  # type: ignore[operator]
            good_left -= 1
            valid += 1
    return messages, valid, Counter(reason for _, reason in bad_items), bad_items


def test_every_message_is_accepted_or_dead_lettered(kafka: BrokerHandle, tmp_path: Path) -> None:
    worker = WorkerProcess(
        kafka.bootstrap,
        unique_prefix("spine"),
        tmp_path,
        extra_env={"AIOPS_WORKER__MAX_MESSAGE_BYTES": str(MAX_BYTES)},
    ).start()
    try:
        metric_msgs, metric_valid, metric_reasons, metric_bad = build_stream(_metric, seed=1)
        log_msgs, log_valid, log_reasons, log_bad = build_stream(_log, seed=2)
        topics = worker.topics
        asyncio.run(produce(kafka.bootstrap, topics["metrics"], metric_msgs))
        asyncio.run(produce(kafka.bootstrap, topics["logs"], log_msgs))

        expected_dead = len(metric_bad) + len(log_bad)
        letters = asyncio.run(
            consume_all(kafka.bootstrap, topics["deadletter"], expect=expected_dead)
        )
        from tests.kafka_harness import wait_until

        assert wait_until(
            lambda: (
                worker.metric("aiops_events_accepted_total", topic=topics["metrics"])
                >= metric_valid
                and worker.metric("aiops_events_accepted_total", topic=topics["logs"]) >= log_valid
            ),
            timeout=120,
        ), worker.log_text()[-3000:]

        # every valid event accepted, no more
        assert worker.metric("aiops_events_accepted_total", topic=topics["metrics"]) == metric_valid
        assert worker.metric("aiops_events_accepted_total", topic=topics["logs"]) == log_valid
        assert worker.metric("aiops_messages_consumed_total", topic=topics["metrics"]) == len(
            metric_msgs
        )

        # the dead-letter topic holds exactly the bad items, each with its reason and origin
        assert len(letters) == expected_dead
        got: dict[str, Counter[str]] = {topics["metrics"]: Counter(), topics["logs"]: Counter()}
        originals: dict[str, Counter[tuple[bytes, str]]] = {
            topics["metrics"]: Counter(),
            topics["logs"]: Counter(),
        }
        for record in letters:
            headers = parse_headers(list(record.headers))
            assert int(headers["offset"]) >= 0 and int(headers["partition"]) >= 0
            assert headers["detail"]
            got[headers["topic"]][headers["reason"]] += 1
            originals[headers["topic"]][(record.value, headers["reason"])] += 1
        assert got[topics["metrics"]] == metric_reasons
        assert got[topics["logs"]] == log_reasons
        assert originals[topics["metrics"]] == Counter(metric_bad)
        assert originals[topics["logs"]] == Counter(log_bad)

        # the counters on /metrics say the same, reason by reason
        for reason, count in metric_reasons.items():
            assert (
                worker.metric(
                    "aiops_events_deadlettered_total", topic=topics["metrics"], reason=reason
                )
                == count
            )
    finally:
        worker.stop()
