"""A corpus of hostile input, each message with what the worker must make of it.

Every :class:`Case` says how many events the worker accepts from its message and the
reasons of the dead-letter records it leaves (one per rejected element, at most
``worker.max_dead_letters_per_message`` per message, see ``docs/telemetry-contract.md``).
The expectations are written here by hand, from the contract, not computed by the
decoders; ``tests/ingest/test_hostile.py`` holds the decoders to them in process and
``tests/integration/test_hostile_flow.py`` holds the worker to them through the broker.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import orjson

Role = Literal["metrics", "logs", "alerts"]

DEAD_LETTER_LIMIT = 100
"""The worker's default ``max_dead_letters_per_message``."""
MAX_BYTES = 1_048_576
"""The worker's default ``max_message_bytes``."""
TS = 1_700_000_000


@dataclass(frozen=True, slots=True)
class Case:
    """One message, and what must come of it."""

    kind: str
    role: Role
    payload: bytes
    accepted: int
    """Events the worker accepts from the message."""
    letters: tuple[str, ...]
    """Reasons of its dead-letter records, in any order."""
    rejected: int
    """Elements rejected (a ``too_many_errors`` record holds many)."""


def _case(
    kind: str,
    role: Role,
    payload: bytes,
    accepted: int,
    letters: tuple[str, ...] = (),
    rejected: int | None = None,
) -> Case:
    return Case(
        kind, role, payload, accepted, letters, len(letters) if rejected is None else rejected
    )


def _metric(rng: random.Random, **fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "timestamp": TS + rng.randint(0, 86_400),
        "service": rng.choice(["api", "db", "cache"]),
        "metric": rng.choice(["latency_ms", "cpu", "errors"]),
        "value": rng.random() * 100,
    }
    event.update(fields)
    return event


def _log(rng: random.Random, **fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "timestamp": TS + rng.randint(0, 86_400),
        "service": rng.choice(["api", "db"]),
        "message": f"request {rng.randint(1, 9999)} served in {rng.randint(1, 500)} ms",
    }
    event.update(fields)
    return event


def _alert(rng: random.Random, **fields: object) -> dict[str, object]:
    alert: dict[str, object] = {
        "status": "firing",
        "labels": {"alertname": "HighLatency", "service": rng.choice(["api", "db"])},
        "annotations": {"summary": "p99 over 2 s"},
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{rng.getrandbits(64):016x}",
    }
    alert.update(fields)
    return alert


def _alertmanager(*alerts: dict[str, object], **fields: object) -> bytes:
    body: dict[str, object] = {
        "version": "4",
        "status": "firing",
        "receiver": "aiops",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }
    body.update(fields)
    return orjson.dumps(body)


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def _swap(raw: bytes, field: bytes, literal: bytes) -> bytes:
    """``raw`` with the JSON number of ``field`` replaced by a literal orjson would not write."""
    head, _, tail = raw.partition(b'"' + field + b'":')
    number_end = next(i for i, c in enumerate(tail) if c in b",}")
    return head + b'"' + field + b'":' + literal + tail[number_end:]


Builder = Callable[[random.Random], Case]

# Each builder makes one message of its kind. The weight says how often the corpus draws
# it: heavy messages (megabytes, 100,000 elements) are drawn rarely.
METRIC_CASES: dict[str, tuple[int, Builder]] = {
    "valid": (40, lambda r: _case("valid", "metrics", _dumps(_metric(r)), 1)),
    "valid_batch": (
        10,
        lambda r: _case("valid_batch", "metrics", _dumps([_metric(r) for _ in range(10)]), 10),
    ),
    "random_bytes": (
        6,
        lambda r: _case(
            "random_bytes",
            "metrics",
            b"\xff" + r.randbytes(r.randint(1, 2000)),
            0,
            ("unknown_format",),
        ),
    ),
    "corrupt_protobuf": (
        2,
        lambda r: _case(
            "corrupt_protobuf",
            "metrics",
            b"\x0a\x05ab" + b"\xff" * r.randint(3, 50),
            0,
            ("invalid_value",),
        ),
    ),
    "invalid_utf8": (
        4,
        lambda r: _case(
            "invalid_utf8",
            "metrics",
            _dumps(_metric(r, service="api")).replace(b'"api"', b'"a\xff\xfepi"'),
            0,
            ("invalid_json",),
        ),
    ),
    "nested_10000": (
        2,
        lambda r: _case(
            "nested_10000", "metrics", b"[" * 10_000 + b"]" * 10_000, 0, ("invalid_json",)
        ),
    ),
    "nested_objects_10000": (
        1,
        lambda r: _case(
            "nested_objects_10000",
            "metrics",
            b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
            0,
            ("invalid_json",),
        ),
    ),
    "five_megabytes": (
        0,  # drawn by count, see corpus()
        lambda r: _case(
            "five_megabytes",
            "metrics",
            _dumps(_metric(r, labels={"pad": "x" * 5_000_000})),
            0,
            ("oversized",),
        ),
    ),
    "nan_literal": (
        3,
        lambda r: _case(
            "nan_literal",
            "metrics",
            _swap(_dumps(_metric(r)), b"value", b"NaN"),
            0,
            ("invalid_json",),
        ),
    ),
    "infinity_literal": (
        3,
        lambda r: _case(
            "infinity_literal",
            "metrics",
            _swap(_dumps(_metric(r)), b"value", b"-Infinity"),
            0,
            ("invalid_json",),
        ),
    ),
    "1e400": (
        3,
        lambda r: _case(
            "1e400", "metrics", _swap(_dumps(_metric(r)), b"value", b"1e400"), 0, ("invalid_json",)
        ),
    ),
    "nan_string": (
        2,
        lambda r: _case(
            "nan_string", "metrics", _dumps(_metric(r, value="NaN")), 0, ("wrong_type",)
        ),
    ),
    "byte_order_mark": (
        2,
        lambda r: _case("byte_order_mark", "metrics", b"\xef\xbb\xbf" + _dumps(_metric(r)), 1),
    ),
    "1e300": (2, lambda r: _case("1e300", "metrics", _dumps(_metric(r, value=1e300)), 1)),
    "null_value": (2, lambda r: _case("null_value", "metrics", _dumps(_metric(r, value=None)), 1)),
    "year_1": (
        3,
        lambda r: _case(
            "year_1",
            "metrics",
            _dumps(_metric(r, timestamp="0001-01-01T00:00:00Z")),
            0,
            ("invalid_value",),
        ),
    ),
    "year_9999": (
        3,
        lambda r: _case(
            "year_9999",
            "metrics",
            _dumps(_metric(r, timestamp="9999-12-31T23:59:59+00:00")),
            0,
            ("invalid_value",),
        ),
    ),
    "epoch_ms": (
        2,
        lambda r: _case("epoch_ms", "metrics", _dumps(_metric(r, timestamp=TS * 1000)), 1),
    ),
    "epoch_ns": (
        2,
        lambda r: _case("epoch_ns", "metrics", _dumps(_metric(r, timestamp=TS * 10**9)), 1),
    ),
    "epoch_ps": (
        2,
        lambda r: _case(
            "epoch_ps",
            "metrics",
            _dumps(_metric(r, timestamp=float(TS) * 1e12)),
            0,
            ("invalid_value",),
        ),
    ),
    "negative_time": (
        2,
        lambda r: _case(
            "negative_time", "metrics", _dumps(_metric(r, timestamp=-TS)), 0, ("invalid_value",)
        ),
    ),
    "array_100000": (
        0,  # drawn by count
        lambda r: _case(
            "array_100000",
            "metrics",
            _dumps([_metric(r)] + [r.randint(0, 9)] * 99_999),
            1,
            ("not_an_event",) * (DEAD_LETTER_LIMIT - 1) + ("too_many_errors",),
            rejected=99_999,
        ),
    ),
    "numbers_100000": (
        0,  # drawn by count
        lambda r: _case("numbers_100000", "metrics", _dumps([1] * 100_000), 0, ("unknown_format",)),
    ),
    "name_10kb": (
        3,
        lambda r: _case(
            "name_10kb", "metrics", _dumps(_metric(r, metric="m" * 10_240)), 0, ("invalid_value",)
        ),
    ),
    "control_in_service": (
        3,
        lambda r: _case(
            "control_in_service",
            "metrics",
            _dumps(
                _metric(r, service="api" + r.choice(["\x00", "\x07", "\x1b", "\n", "\x85"]) + "x")
            ),
            0,
            ("invalid_value",),
        ),
    ),
    "rtl_in_service": (
        3,
        lambda r: _case(
            "rtl_in_service",
            "metrics",
            _dumps(_metric(r, service="pay" + r.choice(["\u200f", "\u202e", "\u2066"]) + "ments")),
            0,
            ("invalid_value",),
        ),
    ),
    "markup_in_names": (
        3,
        lambda r: _case(
            "markup_in_names",
            "metrics",
            _dumps(
                _metric(
                    r,
                    service=r.choice(
                        ["<script>alert(1)</script>", "*pay* <!channel>", 'a"b\\c{d}']
                    ),
                    metric='m{le="1"}',
                )
            ),
            1,
        ),
    ),
    "bad_element": (
        4,
        lambda r: _case(
            "bad_element",
            "metrics",
            _dumps([_metric(r), _metric(r, value=[1, 2]), _metric(r)]),
            2,
            ("wrong_type",),
        ),
    ),
    "influx_bad_field": (
        3,
        lambda r: _case(
            "influx_bad_field",
            "metrics",
            b"cpu,host=h1 usage=1.5 1700000000000000000\n"
            b"cpu,host=h1 usage=abc 1700000000000000000\n"
            b"cpu,host=h2 usage=2.5 1700000000000000000",
            2,
            ("invalid_value",),
        ),
    ),
    "influx_20000_bad_lines": (
        0,  # drawn by count
        lambda r: _case(
            "influx_20000_bad_lines",
            "metrics",
            b"\n".join([b"cpu,host=h1 usage=x%d 1700000000000000000" % i for i in range(20_000)]),
            0,
            ("invalid_value",) * (DEAD_LETTER_LIMIT - 1) + ("too_many_errors",),
            rejected=20_000,
        ),
    ),
    "graphite_bad_value": (
        3,
        lambda r: _case(
            "graphite_bad_value",
            "metrics",
            b"servers.web1.cpu 12.5 1700000000\nservers.web1.mem lots 1700000000",
            1,
            ("invalid_value",),
        ),
    ),
    "otlp_json_wrong_type": (
        2,
        lambda r: _case(
            "otlp_json_wrong_type",
            "metrics",
            b'{"resourceMetrics": "everything"}',
            0,
            ("wrong_type",),
        ),
    ),
    "otlp_json_no_time": (
        2,
        lambda r: _case(
            "otlp_json_no_time",
            "metrics",
            _dumps(
                {
                    "resourceMetrics": [
                        {
                            "scopeMetrics": [
                                {
                                    "metrics": [
                                        {"name": "x", "gauge": {"dataPoints": [{"asDouble": 1.0}]}}
                                    ]
                                }
                            ]
                        }
                    ]
                }
            ),
            0,
            ("missing_field",),
        ),
    ),
    "prometheus_bad_value": (
        2,
        lambda r: _case(
            "prometheus_bad_value",
            "metrics",
            _dumps(
                {
                    "timestamp": "2023-11-14T22:13:20Z",
                    "value": "lots",
                    "name": "up",
                    "labels": {"__name__": "up", "job": "node"},
                }
            ),
            0,
            ("invalid_value",),
        ),
    ),
    "collectd_bad_time": (
        2,
        lambda r: _case(
            "collectd_bad_time",
            "metrics",
            _dumps(
                [
                    {
                        "values": [1.0],
                        "dstypes": ["gauge"],
                        "dsnames": ["value"],
                        "time": "yesterday",
                        "interval": 10,
                        "host": "h1",
                        "plugin": "cpu",
                        "plugin_instance": "",
                        "type": "cpu",
                        "type_instance": "",
                    }
                ]
            ),
            0,
            ("invalid_value",),
        ),
    ),
    "empty": (2, lambda r: _case("empty", "metrics", r.choice([b"", b"  \n\t"]), 0, ("empty",))),
    "json_scalar": (
        2,
        lambda r: _case(
            "json_scalar",
            "metrics",
            r.choice([b"null", b"42", b'"x"', b"true"]),
            0,
            ("unknown_format",),
        ),
    ),
}

LOG_CASES: dict[str, tuple[int, Builder]] = {
    "valid": (40, lambda r: _case("valid", "logs", _dumps(_log(r)), 1)),
    "raw_line": (
        10,
        lambda r: _case(
            "raw_line",
            "logs",
            b"<38>Nov 14 22:13:20 bastion sshd[811]: Failed password for root from 10.0.0.%d"
            % r.randint(1, 250),
            1,
        ),
    ),
    "binary": (
        6,
        lambda r: _case(
            "binary", "logs", b"\x00\xff" + r.randbytes(r.randint(1, 2000)), 0, ("unknown_format",)
        ),
    ),
    "invalid_utf8": (
        4,
        lambda r: _case(
            "invalid_utf8", "logs", b"disk sd\xffa failed \xfe\xfe", 0, ("unknown_format",)
        ),
    ),
    "empty": (2, lambda r: _case("empty", "logs", b"", 0, ("empty",))),
    "byte_order_mark": (
        2,
        lambda r: _case("byte_order_mark", "logs", b"\xef\xbb\xbf" + _dumps(_log(r)), 1),
    ),
    "line_1mb": (
        0,  # drawn by count
        lambda r: _case("line_1mb", "logs", b"panic: " + b"x" * 1_000_000, 1),
    ),
    "five_megabytes": (
        0,  # drawn by count
        lambda r: _case("five_megabytes", "logs", b"y" * 5_000_000, 0, ("oversized",)),
    ),
    "all_numbers": (
        3,
        lambda r: _case(
            "all_numbers", "logs", b" ".join(b"%d" % r.randint(0, 10**9) for _ in range(8)), 1
        ),
    ),
    "nested_objects_10000": (
        1,
        lambda r: _case(
            "nested_objects_10000",
            "logs",
            b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
            0,
            ("invalid_json",),
        ),
    ),
    "nan_literal": (
        2,
        lambda r: _case(
            "nan_literal",
            "logs",
            _swap(_dumps(_log(r)), b"timestamp", b"NaN"),
            0,
            ("invalid_json",),
        ),
    ),
    "year_1": (
        2,
        lambda r: _case(
            "year_1",
            "logs",
            _dumps(_log(r, timestamp="0001-01-01T00:00:00Z")),
            0,
            ("invalid_value",),
        ),
    ),
    "rtl_in_service": (
        3,
        lambda r: _case(
            "rtl_in_service", "logs", _dumps(_log(r, service="api\u202e")), 0, ("invalid_value",)
        ),
    ),
    "service_10kb": (
        2,
        lambda r: _case(
            "service_10kb", "logs", _dumps(_log(r, service="s" * 10_240)), 0, ("invalid_value",)
        ),
    ),
    "controls_in_message": (
        3,
        lambda r: _case(
            "controls_in_message", "logs", _dumps(_log(r, message="a\x00b\x1b[31mred\u202e")), 1
        ),
    ),
    "array_100000": (
        0,  # drawn by count
        lambda r: _case(
            "array_100000",
            "logs",
            _dumps([_log(r)] + [0] * 99_999),
            1,
            ("not_an_event",) * (DEAD_LETTER_LIMIT - 1) + ("too_many_errors",),
            rejected=99_999,
        ),
    ),
    "bad_element": (
        4,
        lambda r: _case(
            "bad_element",
            "logs",
            _dumps([_log(r), _log(r, message=5), _log(r)]),
            2,
            ("wrong_type",),
        ),
    ),
    "otlp_bad_time": (
        2,
        lambda r: _case(
            "otlp_bad_time",
            "logs",
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon",'
            b'"body":{"stringValue":"x"}}]}]}]}',
            0,
            ("invalid_value",),
        ),
    ),
    "vector_bad_time": (
        2,
        lambda r: _case(
            "vector_bad_time",
            "logs",
            _dumps({"source_type": "file", "timestamp": "noon", "message": "m"}),
            0,
            ("invalid_value",),
        ),
    ),
}

ALERT_CASES: dict[str, tuple[int, Builder]] = {
    "valid": (30, lambda r: _case("valid", "alerts", _alertmanager(_alert(r)), 1)),
    "wrong_version": (
        3,
        lambda r: _case(
            "wrong_version", "alerts", _alertmanager(_alert(r), version="3"), 0, ("invalid_value",)
        ),
    ),
    "bad_status": (
        3,
        lambda r: _case(
            "bad_status",
            "alerts",
            _alertmanager(_alert(r), _alert(r, status="maybe")),
            1,
            ("invalid_value",),
        ),
    ),
    "rtl_in_service": (
        3,
        lambda r: _case(
            "rtl_in_service",
            "alerts",
            _alertmanager(_alert(r, labels={"alertname": "A", "service": "pay\u200fments"})),
            0,
            ("invalid_value",),
        ),
    ),
    "alerts_not_a_list": (
        2,
        lambda r: _case(
            "alerts_not_a_list",
            "alerts",
            _alertmanager(alerts="all of them"),
            0,
            ("missing_field",),
        ),
    ),
    "binary": (
        3,
        lambda r: _case("binary", "alerts", b"\xff\xfe" + r.randbytes(30), 0, ("invalid_json",)),
    ),
    "nested_10000": (
        1,
        lambda r: _case(
            "nested_10000", "alerts", b"[" * 10_000 + b"]" * 10_000, 0, ("invalid_json",)
        ),
    ),
    "empty": (2, lambda r: _case("empty", "alerts", b"", 0, ("empty",))),
    "byte_order_mark": (
        2,
        lambda r: _case("byte_order_mark", "alerts", b"\xef\xbb\xbf" + _alertmanager(_alert(r)), 1),
    ),
}

HEAVY = {
    "metrics": {
        "five_megabytes": 2,
        "array_100000": 3,
        "numbers_100000": 2,
        "influx_20000_bad_lines": 2,
    },
    "logs": {"five_megabytes": 2, "line_1mb": 2, "array_100000": 3},
    "alerts": {},
}
"""Messages of megabytes or 100,000 elements, a fixed number of each per corpus."""

CASES: dict[Role, dict[str, tuple[int, Builder]]] = {
    "metrics": METRIC_CASES,
    "logs": LOG_CASES,
    "alerts": ALERT_CASES,
}


def every_kind(seed: int = 0) -> Iterator[Case]:
    """One message of every kind of every role."""
    rng = random.Random(seed)
    for cases in CASES.values():
        for _, build in cases.values():
            yield build(rng)


def corpus(role: Role, n: int, seed: int) -> list[Case]:
    """``n`` messages for ``role``: the heavy ones once each, the rest drawn by weight."""
    rng = random.Random(seed)
    cases = CASES[role]
    out = [cases[kind][1](rng) for kind, count in HEAVY[role].items() for _ in range(count)]
    kinds = [kind for kind, (weight, _) in cases.items() if weight]
    weights = [cases[kind][0] for kind in kinds]
    for kind in rng.choices(kinds, weights, k=n - len(out)):
        out.append(cases[kind][1](rng))
    rng.shuffle(out)
    return out
