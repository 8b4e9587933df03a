"""RCA benchmark: replay Sock-Shop-layout fault cases through detectors, correlator and ranker.

Each case directory ``<service>-<fault>/<run>/`` holds ``normal.csv`` and ``anomalous.csv``
(rows 1 s apart: ``time`` and one column per ``<container>_<metric>``). A case is replayed
as one stream: the normal rows, then the anomalous rows re-stamped to continue the normal
clock at 1 s steps. Nothing tells the engine where the fault starts. Every sample goes
to :class:`~detectors.metric.MetricMonitor` (anomalies to the engine) and to
:meth:`~rca.engine.IncidentEngine.on_metric`; the engine ticks once per row.

Scoring follows RCAEval: the service of a column is the container name (the column
without its ``_<metric>`` suffix, so ``carts-db_cpu`` is ``carts-db``); the root cause is
the service in the case folder's name. The ranking scored is the last snapshot of the
incident opened in the anomalous part that comes first in triage order (most severe, then
largest deviation of its top root cause, then earliest; see :func:`incident_priority`).
AC@k is the share of cases whose root cause is in the top k; Avg@5 is the mean of
AC@1..AC@5.

Run::

    python -m benchmarks.rca --data ../shared/data/rca/sock-shop
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
import tracemalloc
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.events import MetricEvent
from detectors.metric import MetricDetectionConfig, MetricMonitor
from rca.config import RcaConfig
from rca.engine import IncidentEngine
from rca.model import Incident
from rca.topology import Topology, load_topology

_METRIC_SUFFIX = re.compile(r"^(?P<service>.+?)_(?P<metric>cpu|mem|lod|lat_\d+)$")


def split_column(column: str) -> tuple[str, str]:
    """``carts-db_cpu -> ("carts-db", "cpu")``; ``carts_lat_90 -> ("carts", "lat_90")``.

    >>> split_column("carts-db_cpu"), split_column("carts_lat_90")
    (('carts-db', 'cpu'), ('carts', 'lat_90'))
    """
    found = _METRIC_SUFFIX.match(column)
    if found:
        return found["service"], found["metric"]
    service, _, metric = column.rpartition("_")
    return (service or column), (metric or column)


def _read(path: Path) -> tuple[list[str], list[list[float]]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [
            [float(x) if x not in ("", "nan", "NaN") else float("nan") for x in row]
            for row in reader
        ]
    return header, rows


@dataclass
class CaseResult:
    """What one replayed case produced."""

    name: str
    fault: str
    truth: str
    ranking: list[str] = field(default_factory=list)
    first_ranking: list[str] = field(default_factory=list)
    first_incident_ranking: list[str] = field(default_factory=list)
    normal_incidents: list[Incident] = field(default_factory=list)
    anomalous_incidents: int = 0
    detection_delay_s: float | None = None
    publish_delay_s: float | None = None
    published: int = 0
    samples: int = 0
    anomalies: int = 0
    engine_s: float = 0.0
    ring_bytes: int = 0
    state_bytes: int = 0
    truth_flagged: bool = False

    def rank_of_truth(self) -> int | None:
        """0-based position of the true root cause, None if absent."""
        return self.ranking.index(self.truth) if self.truth in self.ranking else None


def _mean_per_step(rows: list[list[float]], step: int) -> list[list[float]]:
    """Rows of ``step`` consecutive 1 s rows averaged (NaN ignored), as a scraper every
    ``step`` seconds that reports the mean would see them; a partial last step is kept."""
    out = []
    for start in range(0, len(rows), step):
        block = np.array(rows[start : start + step], dtype=float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
            out.append(np.nanmean(block, axis=0).tolist())
    return out


def replay_rows(
    case: Path, *, resample: int = 1, restamp: float = 1.0
) -> Iterator[tuple[float, list[str], list[float], bool]]:
    """``(time, columns, values, in_anomalous_part)`` per row, re-stamped as one stream.

    ``resample`` averages that many 1 s rows into one sample ``resample`` seconds apart
    (each part apart, so no sample mixes normal and faulty rows); ``restamp`` instead keeps
    every row and puts them that many seconds apart (a slower clock, the same points).
    """
    header, normal = _read(case / "normal.csv")
    header2, anomalous = _read(case / "anomalous.csv")
    if header2 != header:
        raise ValueError(f"{case}: normal.csv and anomalous.csv have different columns")
    t_idx = header.index("time")
    columns = [c for i, c in enumerate(header) if i != t_idx]
    start = normal[0][t_idx] if normal else 0.0
    if resample > 1:
        normal, anomalous = _mean_per_step(normal, resample), _mean_per_step(anomalous, resample)
    spacing = float(resample) if resample > 1 else restamp
    t = start
    for row in normal:
        yield t, columns, [v for i, v in enumerate(row) if i != t_idx], False
        t += spacing
    for row in anomalous:
        yield t, columns, [v for i, v in enumerate(row) if i != t_idx], True
        t += spacing


def run_case(
    case: Path,
    *,
    truth: str,
    fault: str,
    config: RcaConfig,
    detection: MetricDetectionConfig,
    topology: Topology | None,
    resample: int = 1,
    restamp: float = 1.0,
) -> CaseResult:
    """Replay one case; the engine and detectors start empty."""
    engine = IncidentEngine(config=config, topology=topology)
    monitor = MetricMonitor(detection)
    result = CaseResult(name=f"{case.parent.name}/{case.name}", fault=fault, truth=truth)
    latest: dict[str, Incident] = {}
    opened_anomalous: list[str] = []
    first_snapshot: dict[str, Incident] = {}
    first_anomalous: str | None = None
    fault_start: float | None = None
    idents: list[tuple[str, str]] = []
    for t, columns, values, anomalous in replay_rows(case, resample=resample, restamp=restamp):
        if not idents:
            idents = [split_column(c) for c in columns]
        if anomalous and fault_start is None:
            fault_start = t
        published: list[Incident] = []
        for (service, metric), value in zip(idents, values, strict=True):
            event = MetricEvent(timestamp=t, service=service, metric=metric, value=value)
            started = time.perf_counter()
            engine.on_metric(event)
            result.engine_s += time.perf_counter() - started
            anomaly = monitor.process(event)
            if anomaly is not None:
                result.anomalies += 1
                started = time.perf_counter()
                published.extend(engine.on_anomaly(anomaly).incidents)
                result.engine_s += time.perf_counter() - started
            result.samples += 1
        started = time.perf_counter()
        published.extend(engine.tick(t).incidents)
        result.engine_s += time.perf_counter() - started
        for incident in published:
            result.published += 1
            if incident.version == 1:
                if not anomalous:
                    result.normal_incidents.append(incident)
                else:
                    result.anomalous_incidents += 1
                    opened_anomalous.append(incident.id)
                    first_snapshot[incident.id] = incident
                    if first_anomalous is None:
                        first_anomalous = incident.id
            latest[incident.id] = incident
    result.ring_bytes = engine.memory_bytes
    result.state_bytes = len(engine.dump_state())
    if opened_anomalous:
        main = max((latest[i] for i in opened_anomalous), key=incident_priority)
        result.ranking = [c.service for c in main.root_causes]
        result.truth_flagged = truth in main.services
        opened = first_snapshot[main.id]
        result.first_ranking = [c.service for c in opened.root_causes]
        result.detection_delay_s = opened.opened_at - (fault_start or 0.0)
        result.publish_delay_s = opened.updated_at - (fault_start or 0.0)
    if first_anomalous is not None:
        result.first_incident_ranking = [c.service for c in latest[first_anomalous].root_causes]
    return result


def incident_priority(incident: Incident) -> tuple[int, float, float]:
    """Triage order: most severe, then the largest deviation of its top root cause, then
    the earliest; the incident an operator would look at first."""
    top = incident.root_causes[0].magnitude if incident.root_causes else None
    return (incident.severity.rank, top or 0.0, -incident.opened_at)


def find_cases(root: Path) -> list[tuple[Path, str, str]]:
    """``(case dir, root-cause service, fault)`` for every ``<svc>-<fault>/<run>/``."""
    cases = []
    for fault_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        truth, _, fault = fault_dir.name.rpartition("-")
        for run in sorted(p for p in fault_dir.iterdir() if (p / "anomalous.csv").exists()):
            cases.append((run, truth or fault_dir.name, fault or "fault"))
    return cases


def ac_at(ranks: list[int | None], k: int) -> float:
    """Share of cases whose root cause is within the top ``k``."""
    return sum(1 for r in ranks if r is not None and r < k) / len(ranks) if ranks else 0.0


def avg5(ranks: list[int | None]) -> float:
    """Mean of AC@1..AC@5."""
    return sum(ac_at(ranks, k) for k in range(1, 6)) / 5


def run_cases(
    cases: list[tuple[Path, str, str]],
    config: RcaConfig,
    detection: MetricDetectionConfig,
    topology: Topology | None,
    resample: int = 1,
    restamp: float = 1.0,
) -> list[CaseResult]:
    """:func:`run_case` on every ``(case, truth, fault)``."""
    return [
        run_case(
            case,
            truth=truth,
            fault=fault,
            config=config,
            detection=detection,
            topology=topology,
            resample=resample,
            restamp=restamp,
        )
        for case, truth, fault in cases
    ]


def cadence_table(
    args: argparse.Namespace,
    cases: list[tuple[Path, str, str]],
    config: RcaConfig,
    detection: MetricDetectionConfig,
    topology: Topology | None,
) -> int:
    """One line per sampling step: AC@1, AC@3, Avg@5, missed cases, normal-part incidents."""
    runs: list[tuple[str, float]] = [
        ("resample", int(s)) for s in args.resample.split(",") if s.strip()
    ]
    runs += [("restamp", float(s)) for s in args.restamp.split(",") if s.strip()]
    print(
        f"{'cadence':<16}{'cases':>6}{'AC@1':>7}{'AC@3':>7}{'Avg@5':>7}{'missed':>8}"
        f"{'normal inc':>11}{'onset s (median)':>18}"
    )
    for kind, value in runs:
        resample, restamp = (int(value), 1.0) if kind == "resample" else (1, float(value))
        results = run_cases(cases, config, detection, topology, resample, restamp)
        ranks = [r.rank_of_truth() for r in results]
        missed = sum(1 for r in results if r.anomalous_incidents == 0)
        normal = sum(len(r.normal_incidents) for r in results)
        delays = sorted(r.detection_delay_s for r in results if r.detection_delay_s is not None)
        onset = f"{delays[len(delays) // 2]:.0f}" if delays else "-"
        print(
            f"{kind + ' ' + format(value, 'g') + ' s':<16}{len(results):>6}"
            f"{ac_at(ranks, 1):>7.3f}{ac_at(ranks, 3):>7.3f}{avg5(ranks):>7.3f}"
            f"{missed:>8}{normal:>11}{onset:>18}",
            flush=True,
        )
    return 0


def _runs(args: argparse.Namespace) -> list[tuple[int, float]]:
    """``(resample, restamp)`` of every cadence asked for (1 s alone if none)."""
    runs = [(int(s), 1.0) for s in args.resample.split(",") if s.strip()]
    runs += [(1, float(s)) for s in args.restamp.split(",") if s.strip()]
    return runs or [(1, 1.0)]


def _cadence_name(resample: int, restamp: float) -> str:
    return f"resample {resample} s" if resample > 1 else f"restamp {restamp:g} s"


def _objective(results: list[list[CaseResult]]) -> tuple[float, float, float]:
    """What a candidate is chosen by, over its cases at every cadence: mean AC@1, then
    fewer incidents in normal parts per case, then mean Avg@5 (larger is better)."""
    ranks = [[r.rank_of_truth() for r in rs] for rs in results]
    normal = sum(len(r.normal_incidents) for rs in results for r in rs)
    cases = max(1, sum(len(rs) for rs in results))
    return (
        float(np.mean([ac_at(rk, 1) for rk in ranks])),
        -normal / cases,
        float(np.mean([avg5(rk) for rk in ranks])),
    )


def _part(results: list[list[CaseResult]], service: str, *, inside: bool) -> list[list[CaseResult]]:
    """The results of the cases whose root cause is (or is not) ``service``."""
    return [[r for r in rs if (r.truth == service) == inside] for rs in results]


def cross_validate(
    args: argparse.Namespace,
    cases: list[tuple[Path, str, str]],
    detection: MetricDetectionConfig,
    topology: Topology | None,
) -> int:
    """Leave one root-cause service out: each ``--grid`` candidate of the correlation
    settings is scored on the cases of the other services (at every cadence asked for), the
    best is kept, and the held-out service's cases are scored with it."""
    from benchmarks.nab.cv import parse_grid

    candidates = parse_grid(args.grid)
    runs = _runs(args)
    print(
        f"{len(cases)} cases, {len(candidates)} candidate(s), cadences: "
        + ", ".join(_cadence_name(*r) for r in runs)
    )
    started = time.perf_counter()
    table: dict[tuple[tuple[str, Any], ...], list[list[CaseResult]]] = {}
    for candidate in candidates:
        correlation = RcaConfig().correlation.model_copy(update=dict(candidate))
        config = RcaConfig(correlation=correlation)
        table[candidate] = [
            run_cases(cases, config, detection, topology, resample, restamp)
            for resample, restamp in runs
        ]
        label = ", ".join(f"{k}={v}" for k, v in candidate) or "defaults"
        score = _objective(table[candidate])
        print(f"  {label}: AC@1 {score[0]:.3f} (all cases, in-sample)", flush=True)
    print(f"replays: {time.perf_counter() - started:.0f} s")
    services = sorted({truth for _, truth, _ in cases})
    held: dict[int, list[CaseResult]] = defaultdict(list)  # cadence index -> held-out results
    print(f"{'held-out service':<18}{'cases':>6}  chosen on the other services")
    for service in services:
        chosen = max(candidates, key=lambda c: _objective(_part(table[c], service, inside=False)))
        mine = _part(table[chosen], service, inside=True)
        for i, rs in enumerate(mine):
            held[i].extend(rs)
        label = ", ".join(f"{k}={v}" for k, v in chosen) or "defaults"
        print(f"{service:<18}{len(mine[0]):>6}  {label}")
    print(
        f"{'out of fold':<18}{'cases':>6}{'AC@1':>7}{'AC@3':>7}{'Avg@5':>7}{'missed':>8}"
        f"{'normal inc':>11}"
    )
    for i, run in enumerate(runs):
        results = held[i]
        ranks = [r.rank_of_truth() for r in results]
        missed = sum(1 for r in results if r.anomalous_incidents == 0)
        normal = sum(len(r.normal_incidents) for r in results)
        print(
            f"{_cadence_name(*run):<18}{len(results):>6}{ac_at(ranks, 1):>7.3f}"
            f"{ac_at(ranks, 3):>7.3f}{avg5(ranks):>7.3f}{missed:>8}{normal:>11}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/rca/sock-shop"))
    parser.add_argument("--topology", type=Path, default=None, help="topology YAML (optional)")
    parser.add_argument("--only", default="", help="regex on '<svc>-<fault>/<run>' to filter")
    parser.add_argument("--memory", action="store_true", help="trace peak memory (slower)")
    parser.add_argument(
        "--resample",
        default="",
        help="comma-separated steps in seconds: each case averaged to one sample per step "
        "(mean per step) and scored at each",
    )
    parser.add_argument(
        "--restamp",
        default="",
        help="comma-separated spacings in seconds: every row kept, that many seconds apart",
    )
    parser.add_argument(
        "--cv",
        action="store_true",
        help="leave one root-cause service out, choosing among --grid on the other services' "
        "cases (at every --restamp/--resample cadence) and scoring the held-out one",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        help="with --cv: a correlation setting and the values to try, name=JSON list",
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no such directory: {args.data}", file=sys.stderr)
        return 2
    topology = load_topology(args.topology) if args.topology else None
    config = RcaConfig()
    detection = MetricDetectionConfig()
    cases = [
        c for c in find_cases(args.data) if re.search(args.only, f"{c[0].parent.name}/{c[0].name}")
    ]
    if args.cv:
        return cross_validate(args, cases, detection, topology)
    if args.resample or args.restamp:
        return cadence_table(args, cases, config, detection, topology)
    if args.memory:
        tracemalloc.start()
    started = time.perf_counter()
    results = run_cases(cases, config, detection, topology)
    elapsed = time.perf_counter() - started
    print(
        f"RCA benchmark on {args.data} ({len(results)} cases, "
        f"topology: {args.topology or 'none, learned co-occurrence'}), {elapsed:.1f}s"
    )
    by_fault: dict[str, list[int | None]] = defaultdict(list)
    for r in results:
        by_fault[r.fault].append(r.rank_of_truth())
    print(f"{'fault':<10}{'cases':>6}{'AC@1':>8}{'AC@3':>8}{'Avg@5':>8}")
    for fault, ranks in sorted(by_fault.items()):
        print(
            f"{fault:<10}{len(ranks):>6}{ac_at(ranks, 1):>8.3f}{ac_at(ranks, 3):>8.3f}"
            f"{avg5(ranks):>8.3f}"
        )
    ranks = [r.rank_of_truth() for r in results]
    print(
        f"{'overall':<10}{len(ranks):>6}{ac_at(ranks, 1):>8.3f}{ac_at(ranks, 3):>8.3f}"
        f"{avg5(ranks):>8.3f}"
    )
    first_inc = [
        r.first_incident_ranking.index(r.truth) if r.truth in r.first_incident_ranking else None
        for r in results
    ]
    print(
        f"scoring the first incident opened instead of the first in triage order: "
        f"AC@1 {ac_at(first_inc, 1):.3f}, Avg@5 {avg5(first_inc):.3f}"
    )
    first = [
        r.first_ranking.index(r.truth) if r.truth in r.first_ranking else None for r in results
    ]
    print(
        f"ranking at the first snapshot of the scored incident: AC@1 {ac_at(first, 1):.3f}, "
        f"Avg@5 {avg5(first):.3f}"
    )
    for label, attr in (("onset", "detection_delay_s"), ("first publication", "publish_delay_s")):
        delays = sorted(v for r in results if (v := getattr(r, attr)) is not None)
        if delays:
            print(
                f"incident {label} after the fault start: median {delays[len(delays) // 2]:.0f}s,"
                f" max {delays[-1]:.0f}s"
            )
    unflagged = [r.name for r in results if r.anomalous_incidents and not r.truth_flagged]
    print(
        f"cases whose root-cause service has no anomaly record in the scored incident "
        f"(ranked from raw samples only): {len(unflagged)}"
        + (f" ({', '.join(unflagged)})" if unflagged else "")
    )
    missed = [r.name for r in results if r.anomalous_incidents == 0]
    print(
        f"cases with no incident in the anomalous part: {len(missed)}"
        + (f" ({', '.join(missed)})" if missed else "")
    )
    normal = [(r.name, i) for r in results for i in r.normal_incidents]
    print(f"incidents opened during the normal part: {len(normal)}")
    for name, incident in normal:
        print(f"  {name}: {incident.title} at +{incident.opened_at:.0f}")
    extra = [(r.name, r.anomalous_incidents) for r in results if r.anomalous_incidents > 1]
    print(
        f"cases with more than one incident in the anomalous part: {len(extra)}"
        + (" (" + ", ".join(f"{n}: {c}" for n, c in extra) + ")" if extra else "")
    )
    wrong = [r for r in results if r.rank_of_truth() != 0]
    for r in wrong:
        pos = r.rank_of_truth()
        print(
            f"  not first: {r.name}: truth {r.truth} at {'-' if pos is None else pos + 1}, "
            f"ranking {r.ranking}"
        )
    samples = sum(r.samples for r in results)
    engine_s = sum(r.engine_s for r in results)
    print(
        f"engine: {1e6 * engine_s / max(samples, 1):.1f} us per sample (on_metric, on_anomaly "
        f"and tick, {sum(r.anomalies for r in results)} anomaly records in all); "
        f"metric rings {max(r.ring_bytes for r in results) / 1e3:.0f} kB, "
        f"state dump {max(r.state_bytes for r in results) / 1e3:.0f} kB at most per case"
    )
    if args.memory:
        _, peak = tracemalloc.get_traced_memory()
        print(f"peak traced memory: {peak / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
