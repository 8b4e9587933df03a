"""Loghub-2k benchmark of the log pipeline: parsing accuracy, alert detection, speed.

For every system directory of a Loghub-2k layout (``<S>/<S>_2k.log_structured.csv``):

* **Grouping accuracy** (GA) of the template miner exactly as the service configures it
  (``LogDetectionConfig().miner``, one configuration for every system). The miner is fed
  the ``Content`` column, i.e. the message body once Loghub's header is stripped; that is
  what the service feeds it after syslog / JSON decoding. A line is correct when the set of
  lines in its final template equals the set sharing its ground-truth ``EventId``.
* **Speed** of the parse-and-mine step (masking + mining, a fresh miner per system, so
  every template is created within the timed loop), in lines per CPU second (process
  time, so that other load on a shared machine does not count), best of ``--repeat``.

For BGL, the per-line **alert detection**: the 2,000 lines are streamed in order through
:class:`~detectors.logs.LogMonitor` as ``LogEvent(timestamp=Timestamp, service="bgl",
message=Content, level=Level)``; a line is predicted an alert when its verdict says so
(:attr:`~detectors.logs.LineVerdict.alert`: level error or worse and a failure word in its
template). The ``Label`` column is read only to score.

Also measured, for information: the **end-to-end** rate of the raw ``<S>_2k.log`` lines, one
Kafka message per line, through :func:`ingest.logs.decode_log_message` (framing, level,
service) and :meth:`LogMonitor.process` (mining, severity, buckets).

With ``--drain3``, the grouping accuracy of Drain3's ``Drain`` (depth 4, ``sim_th`` 0.5) fed
the same masked lines is printed beside ours, for comparison.

Run ``python -m benchmarks.loghub --data ../shared/data/loghub``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.events import LogEvent
from detectors.logs import LogDetectionConfig, LogMonitor, TemplateMiner, mask
from detectors.logs.config import MinerConfig
from ingest.contract import normalise_level
from ingest.header import HeaderLearner
from ingest.line_format import LineFormatRule
from ingest.logs import LogIngestConfig, decode_log_message

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"

#: The header of each shared system's lines, as its operators would configure it
#: (``ingest.logs.line_formats``); the layouts are those Loghub documents for these systems.
LINE_FORMATS: dict[str, LineFormatRule] = {
    "HDFS": LineFormatRule(
        format="<Date> <Time> <Pid> <Level> <Component>: <Content>", time="%y%m%d %H%M%S"
    ),
    "Hadoop": LineFormatRule(
        format="<Date> <Time> <Level> [<Process>] <Component>: <Content>",
        time="%Y-%m-%d %H:%M:%S,%f",
    ),
    "Spark": LineFormatRule(
        format="<Date> <Time> <Level> <Component>: <Content>", time="%y/%m/%d %H:%M:%S"
    ),
    "Zookeeper": LineFormatRule(
        format="<Date> <Time> - <Level> [<Thread>:<Component>@<Line>] - <Content>",
        time="%Y-%m-%d %H:%M:%S,%f",
    ),
    "BGL": LineFormatRule(
        format="<Flag> <Timestamp> <Day> <Node> <Clock> <Location> <Type> <Component> "
        "<Level> <Content>",
        time="epoch",
    ),
    "HPC": LineFormatRule(
        format="<LogId> <Node> <Component> <State> <Timestamp> <Flag> <Content>", time="epoch"
    ),
    "Apache": LineFormatRule(format="[<Time>] [<Level>] <Content>", time="%a %b %d %H:%M:%S %Y"),
    "OpenSSH": LineFormatRule(format="<Date> <Day> <Time> <Host> sshd[<Pid>]: <Content>"),
}


@dataclass(frozen=True, slots=True)
class SystemResult:
    """Figures of one system."""

    system: str
    lines: int
    true_templates: int
    templates: int
    grouping_accuracy: float
    lines_per_second: float
    parsing_accuracy: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertResult:
    """Per-line alert detection figures."""

    lines: int
    alerts: int
    predicted: int
    precision: float
    recall: float
    f1: float


def read_structured(path: Path) -> list[dict[str, str]]:
    """Rows of a ``*_log_structured.csv`` file."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def grouping_accuracy(predicted: Sequence[object], truth: Sequence[object]) -> float:
    """Share of lines whose predicted group is exactly their true group.

    >>> grouping_accuracy([1, 1, 2, 3], ["a", "a", "b", "b"])
    0.5
    """
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth differ in length")
    if not truth:
        return 0.0
    true_groups: dict[object, set[int]] = defaultdict(set)
    pred_groups: dict[object, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        true_groups[t].add(i)
        pred_groups[p].add(i)
    correct = 0
    for members in pred_groups.values():
        first = truth[next(iter(members))]
        if true_groups[first] == members:
            correct += len(members)
    return correct / len(truth)


_WILDCARD_RUN = re.compile(r"<\*>(?:[\s:,/=#.\-]*<\*>)+")


def normalise_template(template: str) -> str:
    """A template as parsing accuracy compares it: wildcards separated only by blanks or
    punctuation become one (as Loghub-2.0's evaluation post-processes templates), and blanks
    are single spaces. Applied to the truth and to ours alike.

    >>> normalise_template("src: <*>:<*>  dest: <*> <*>")
    'src: <*> dest: <*>'
    """
    return " ".join(_WILDCARD_RUN.sub("<*>", template).split())


def parsing_accuracy(templates: Sequence[str], truth: Sequence[str]) -> float:
    """Share of lines whose template is exactly their ground-truth template (normalised).

    >>> parsing_accuracy(["a <*>", "b"], ["a <*> <*>", "c"])
    0.5
    """
    if not truth:
        return 0.0
    hits = sum(
        normalise_template(a) == normalise_template(b)
        for a, b in zip(templates, truth, strict=True)
    )
    return hits / len(truth)


def mine(contents: Sequence[str], config: MinerConfig | None = None) -> tuple[list[int], list[str]]:
    """Every line's final template id and template text, from one fresh miner."""
    miner = TemplateMiner(config or LogDetectionConfig().miner)
    assigned = [miner.add(line).template_id for line in contents]
    final = [miner.resolve(tid) for tid in assigned]
    return final, [miner.template_text(tid) for tid in final]


def run_system(system: str, rows: list[dict[str, str]], repeat: int) -> SystemResult:
    """Mine one system's contents; time ``repeat`` fresh runs and keep the fastest."""
    contents = [r["Content"] for r in rows]
    config = LogDetectionConfig().miner
    best = float("inf")
    miner = TemplateMiner(config)
    assigned: list[int] = []
    for _ in range(max(1, repeat)):
        miner = TemplateMiner(config)
        add = miner.add
        start = time.process_time()
        assigned = [add(line).template_id for line in contents]
        best = min(best, time.process_time() - start)
    final = [miner.resolve(tid) for tid in assigned]
    texts = [miner.template_text(tid) for tid in final]
    return SystemResult(
        system=system,
        lines=len(rows),
        parsing_accuracy=parsing_accuracy(texts, [r["EventTemplate"] for r in rows]),
        true_templates=len({r["EventId"] for r in rows}),
        templates=miner.template_count,
        grouping_accuracy=grouping_accuracy(final, [r["EventId"] for r in rows]),
        lines_per_second=len(contents) / best if best > 0 else float("inf"),
    )


def _epoch(row: dict[str, str], index: int) -> float:
    """A row's ``Timestamp`` (epoch seconds) where it has one, else its position."""
    try:
        return float(row.get("Timestamp") or index)
    except ValueError:
        return float(index)


def raw_grouping_accuracy(
    raw_lines: Sequence[bytes],
    rows: list[dict[str, str]],
    line_format: LineFormatRule | None,
    headers: HeaderLearner | None = None,
) -> tuple[float, int]:
    """GA of the service's own path: each raw line a message through
    :func:`decode_log_message` (with ``line_format`` configured, if any, and ``headers``
    learning the stream's header), its message mined.

    Returns the GA and how many lines the configured format matched.
    """
    messages, matched = decoded_messages(raw_lines, line_format, headers)
    final, _ = mine(messages)
    return grouping_accuracy(final, [r["EventId"] for r in rows]), matched


def decoded_messages(
    raw_lines: Sequence[bytes],
    line_format: LineFormatRule | None,
    headers: HeaderLearner | None = None,
) -> tuple[list[str], int]:
    """Each raw line's message as :func:`decode_log_message` makes it (one message per line,
    one stream), and how many lines ``line_format`` matched."""
    config = LogIngestConfig(line_formats=(line_format,) if line_format else ())
    messages: list[str] = []
    matched = 0
    for payload in raw_lines:
        events = decode_log_message(
            payload,
            config=config,
            max_bytes=1 << 20,
            received_at=1.7e9,
            headers=headers,
            stream="system",
        ).events
        messages.append(events[0].message if events else "")
        matched += bool(events) and ("format", "configured") in events[0].attributes
    return messages, matched


def run_alerts(rows: list[dict[str, str]], system: str = "bgl") -> AlertResult:
    """Stream labelled rows (``Label`` is ``-`` for a normal line) through a
    :class:`LogMonitor`; score per-line alerts. ``Level``, ``Timestamp`` and ``Node`` are
    used where the system's structured file has them."""
    monitor = LogMonitor()
    tp = fp = fn = 0
    for index, r in enumerate(rows):
        raw_level = r.get("Level") or ""
        level = normalise_level(raw_level) or raw_level.lower() or None
        event = LogEvent(_epoch(r, index), system, r["Content"], level, r.get("Node") or None)
        verdict, _ = monitor.observe(event)
        is_alert = r["Label"] != "-"
        tp += verdict.alert and is_alert
        fp += verdict.alert and not is_alert
        fn += (not verdict.alert) and is_alert
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return AlertResult(len(rows), tp + fn, tp + fp, precision, recall, f1)


def drain3_accuracy(rows: list[dict[str, str]]) -> float:
    """Grouping accuracy of Drain3's ``Drain`` on the same masked contents."""
    from drain3.drain import Drain

    drain = Drain(depth=4, sim_th=0.5, max_children=100)
    assigned = [drain.add_log_message(mask(r["Content"]))[0].cluster_id for r in rows]
    return grouping_accuracy(assigned, [r["EventId"] for r in rows])


def run_end_to_end(raw_lines: list[bytes]) -> float:
    """CPU seconds to decode and monitor raw lines, one message each."""
    config = LogIngestConfig(default_service="bench")
    headers = config.header_learner()
    monitor = LogMonitor()
    start = time.process_time()
    for payload in raw_lines:
        for event in decode_log_message(
            payload, config=config, max_bytes=1 << 20, received_at=1.7e9, headers=headers
        ).events:
            monitor.process(event)
    return time.process_time() - start


def find_systems(data: Path) -> list[tuple[str, Path]]:
    """``(system, structured csv)`` of every system directory under ``data``."""
    out = []
    for sub in sorted(p for p in data.iterdir() if p.is_dir()):
        path = sub / f"{sub.name}_2k.log_structured.csv"
        if path.exists():
            out.append((sub.name, path))
    return out


def cross_validate(
    systems: Sequence[tuple[str, Path]],
    grid: Sequence[str],
    no_line_formats: bool,
    no_learned_headers: bool = False,
) -> int:
    """Leave one system out: choose the miner's settings among ``grid`` by mean GA on the
    others (raw lines through the decoder), score the one left out; print GA and PA."""
    axes = [(k, json.loads(v)) for k, _, v in (item.partition("=") for item in grid)]
    names = [k for k, _ in axes]
    base = LogDetectionConfig().miner
    candidates: list[dict[str, object]] = [{}]
    for values in itertools.product(*(v for _, v in axes)):
        candidate = dict(zip(names, values, strict=True))
        if candidate and candidate not in candidates:
            candidates.append(candidate)
    # every candidate's GA and PA on every system, each computed once
    table: dict[int, dict[str, tuple[float, float]]] = {}
    for number, candidate in enumerate(candidates):
        config = base.model_copy(update=candidate)
        table[number] = {}
        for system, path in systems:
            rows = read_structured(path)
            raw_path = path.with_name(f"{system}_2k.log")
            raw = [line for line in raw_path.read_bytes().splitlines() if line.strip()]
            fmt = None if no_line_formats else LINE_FORMATS.get(system)
            headers = None if no_learned_headers else HeaderLearner()
            messages = decoded_messages(raw, fmt, headers)[0] if len(raw) == len(rows) else []
            if not messages:
                messages = [r["Content"] for r in rows]  # no raw file: the parsed column
            final, texts = mine(messages, config)
            table[number][system] = (
                grouping_accuracy(final, [r["EventId"] for r in rows]),
                parsing_accuracy(texts, [r["EventTemplate"] for r in rows]),
            )
    print(f"{len(candidates)} candidate(s); held-out system scored with the others' choice")
    print(f"{'held out':<12}{'GA':>8}{'PA':>8}   chosen on the other systems")
    gas, pas = [], []
    for held, _ in systems:
        others = [name for name, _ in systems if name != held]

        def train(number: int, others: list[str] = others) -> float:
            return sum(table[number][o][0] for o in others) / len(others)

        best = max(range(len(candidates)), key=lambda n: (train(n), -n))
        ga, pa = table[best][held]
        gas.append(ga)
        pas.append(pa)
        chosen = ", ".join(f"{k}={v}" for k, v in candidates[best].items()) or "defaults"
        print(f"{held:<12}{ga:>8.4f}{pa:>8.4f}   {chosen}")
    print(f"{'mean':<12}{sum(gas) / len(gas):>8.4f}{sum(pas) / len(pas):>8.4f}")
    print(f"lowest GA {min(gas):.4f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Loghub-2k directory")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per system")
    parser.add_argument("--drain3", action="store_true", help="also score Drain3's Drain")
    parser.add_argument(
        "--no-line-formats",
        action="store_true",
        help="decode the raw lines with no header format configured (syslog and plain only)",
    )
    parser.add_argument(
        "--no-learned-headers",
        action="store_true",
        help="decode the raw lines without learning their header (ingest.header)",
    )
    parser.add_argument(
        "--cv", action="store_true", help="leave-one-system-out over the miner's --grid"
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        help="with --cv: a MinerConfig setting and the values to try, name=JSON list",
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no such directory: {args.data}", file=sys.stderr)
        return 2
    systems = find_systems(args.data)
    if not systems:
        print(f"no <S>/<S>_2k.log_structured.csv under {args.data}", file=sys.stderr)
        return 2

    if args.cv:
        return cross_validate(systems, args.grid, args.no_line_formats, args.no_learned_headers)

    drain_column = f"{'Drain3 GA':>11}" if args.drain3 else ""
    print(
        f"{'system':<12}{'lines':>7}{'true':>6}{'found':>7}{'GA':>8}{'PA':>8}{'raw GA':>8}"
        f"{'matched':>8}{'lines/s':>11}{drain_column}"
    )
    drain_scores: list[float] = []
    raw_gas: list[float] = []
    results = []
    alert: AlertResult | None = None
    alert_system = ""
    raw_lines = 0
    raw_seconds = 0.0
    for system, path in systems:
        rows = read_structured(path)
        res = run_system(system, rows, args.repeat)
        results.append(res)
        extra = ""
        if args.drain3:
            drain_scores.append(drain3_accuracy(rows))
            extra = f"{drain_scores[-1]:>11.4f}"
        raw_path = path.with_name(f"{system}_2k.log")
        raw = (
            [line for line in raw_path.read_bytes().splitlines() if line.strip()]
            if raw_path.exists()
            else []
        )
        raw_ga, matched = (
            raw_grouping_accuracy(
                raw,
                rows,
                None if args.no_line_formats else LINE_FORMATS.get(system),
                None if args.no_learned_headers else HeaderLearner(),
            )
            if len(raw) == len(rows)
            else (float("nan"), 0)
        )
        raw_gas.append(raw_ga)
        print(
            f"{system:<12}{res.lines:>7}{res.true_templates:>6}{res.templates:>7}"
            f"{res.grouping_accuracy:>8.4f}{res.parsing_accuracy:>8.4f}{raw_ga:>8.4f}{matched:>8}"
            f"{res.lines_per_second:>11,.0f}{extra}"
        )
        if rows and "Label" in rows[0]:
            alert, alert_system = run_alerts(rows, system.lower()), system
            missing = [c for c in ("Level", "Timestamp", "Node") if c not in rows[0]]
            if missing:
                print(f"  {system}: no {', '.join(missing)} column; alerts scored without it")
        if raw:
            raw_lines += len(raw)
            raw_seconds += run_end_to_end(raw)
    total_lines = sum(r.lines for r in results)
    total_time = sum(r.lines / r.lines_per_second for r in results)
    mean_ga = sum(r.grouping_accuracy for r in results) / len(results)
    mean_pa = sum(r.parsing_accuracy for r in results) / len(results)
    worst = min(results, key=lambda r: r.grouping_accuracy)
    print(
        f"mean GA {mean_ga:.4f}, PA {mean_pa:.4f} over {len(results)} systems; lowest GA "
        f"{worst.system} "
        f"{worst.grouping_accuracy:.4f}; parse-and-mine {total_lines / total_time:,.0f} lines/s "
        "per CPU second (masking + mining, cold miner per system)"
    )
    if raw_gas:
        print(
            f"raw lines through the decoder "
            f"({'no line format' if args.no_line_formats else 'line formats of LINE_FORMATS'}, "
            f"{'no learned header' if args.no_learned_headers else 'learned headers'}): "
            "mean GA "
            f"{sum(raw_gas) / len(raw_gas):.4f}"
        )
    if drain_scores:
        print(f"Drain3 mean GA {sum(drain_scores) / len(drain_scores):.4f}, same masking")
    if raw_lines:
        print(
            f"end to end (raw line -> decode_log_message -> LogMonitor.process): "
            f"{raw_lines / raw_seconds:,.0f} lines per CPU second over {raw_lines} lines"
        )
    if alert is not None:
        print(
            f"{alert_system} alert detection: {alert.alerts} alert lines of {alert.lines}, "
            f"{alert.predicted} flagged; precision {alert.precision:.3f} "
            f"recall {alert.recall:.3f} F1 {alert.f1:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
