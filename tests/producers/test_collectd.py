"""collectd with write_kafka, ``Format JSON``: real value lists into the metrics topic.

A private collectd (``-C CONF -f``, base directory and pid file in tmp, ``Hostname
"web-7"``, ``Interval 1``) reads cpu, memory and load and writes with the shipped
``deploy/producers/collectd-write_kafka.conf`` (``StoreRates false``, one key per host)
into ``<prefix>.metrics``; a ``PreCache`` chain sets the ``service`` meta data of the
load values, as docs/ingest.md describes. A second topic gets the same values with
write_kafka's own default, ``StoreRates true``, decoded with
``mapping.collectd.store_rates: true``.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from detectors.events import MetricEvent
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import CollectdMapping, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message
from tests.kafka_harness import (
    BrokerHandle,
    WorkerProcess,
    consume_all,
    unique_prefix,
    wait_until,
)
from tests.producers.conftest import (
    Daemon,
    create_topics,
    deadlettered,
    render,
    require_binary,
    require_file,
    wait_for_accepted,
)

pytestmark = [pytest.mark.kafka, pytest.mark.producers]

MAX_BYTES = 64 * 1024
HOST = "web-7"
WRITE_KAFKA = "/usr/lib/collectd/write_kafka.so"
ROUNDS_S = 4.5  # Interval 1: four or five collection rounds


@dataclass(frozen=True)
class CollectdRun:
    prefix: str
    topic: str
    records: list[tuple[int, bytes]]  # (partition, value) in (partition, offset) order
    rates_records: list[bytes]  # the StoreRates true topic


def _config(tmp: Path, bootstrap: str, topic: str, rates_topic: str) -> str:
    shipped = render(
        "collectd-write_kafka.conf",
        AIOPS_KAFKA_BROKER=bootstrap,
        AIOPS_METRICS_TOPIC=topic,
        AIOPS_HOST_KEY=HOST,
    )
    return f"""
Hostname "{HOST}"
FQDNLookup false
Interval 1
BaseDir "{tmp}"
PIDFile "{tmp}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File stderr
</Plugin>
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin match_regex
LoadPlugin target_set
{shipped}
<Plugin write_kafka>
  Property "metadata.broker.list" "{bootstrap}"
  <Topic "{rates_topic}">
    Format JSON
    Key "{HOST}"
  </Topic>
</Plugin>
<Chain "PreCache">
  <Rule "aiops_service">
    <Match "regex">
      Plugin "^load$"
    </Match>
    <Target "set">
      MetaData "service" "checkout"
    </Target>
  </Rule>
</Chain>
"""


def _records(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    got = asyncio.run(consume_all(bootstrap, topic, idle_s=2.0, timeout_s=20))
    got.sort(key=lambda r: (r.partition, r.offset))
    return [(r.partition, bytes(r.value)) for r in got]


@pytest.fixture(scope="module")
def collectd_run(kafka: BrokerHandle, tmp_path_factory: pytest.TempPathFactory) -> CollectdRun:
    collectd = require_binary("collectd", "collectd-core")
    require_file(WRITE_KAFKA, "collectd-core")
    require_file("/usr/lib/*/librdkafka.so.1", "librdkafka1")
    tmp = tmp_path_factory.mktemp("collectd")
    prefix = unique_prefix("collectd")
    topic, rates_topic = f"{prefix}.metrics", f"{prefix}-rates.metrics"
    create_topics(kafka.bootstrap, topic, rates_topic)
    conf = tmp / "collectd.conf"
    conf.write_text(_config(tmp, kafka.bootstrap, topic, rates_topic))
    check = subprocess.run([collectd, "-t", "-C", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, f"collectd rejects the configuration:\n{check.stderr}"
    daemon = Daemon([collectd, "-C", str(conf), "-f"], tmp / "collectd.log").start()
    try:
        time.sleep(ROUNDS_S)
        assert daemon.alive(), f"collectd exited:\n{daemon.output()}"
    finally:
        daemon.stop()  # write_kafka's librdkafka handle flushes on shutdown
    records = _records(kafka.bootstrap, topic)
    rates = [value for _, value in _records(kafka.bootstrap, rates_topic)]
    assert records and rates, f"nothing reached the topics; collectd said:\n{daemon.output()}"
    return CollectdRun(prefix, topic, records, rates)


def _time(value: bytes) -> float:
    return float(orjson.loads(value)[0]["time"])


def _decode_all(records: list[bytes], config: MetricIngestConfig) -> list[MetricEvent]:
    state = CumulativeState()
    events: list[MetricEvent] = []
    for value in records:
        decoded = decode_metric_message(value, config=config, max_bytes=MAX_BYTES, state=state)
        assert decoded.errors == [], decoded.errors
        events.extend(decoded.events)
    return events


def _main_partition(records: list[tuple[int, bytes]]) -> int:
    counts = Counter(partition for partition, _ in records)
    return counts.most_common(1)[0][0]


def test_one_key_per_host_keeps_the_host_on_one_partition(collectd_run: CollectdRun) -> None:
    # write_kafka's partitioner moves a message to the next partition while the keyed
    # one has no known leader: the first values after start may land elsewhere.
    main = _main_partition(collectd_run.records)
    first = min(_time(value) for _, value in collectd_run.records)
    late = [p for p, value in collectd_run.records if _time(value) >= first + 1.5]
    assert late and set(late) == {main}


def test_value_lists_decode_to_the_documented_names(collectd_run: CollectdRun) -> None:
    events = _decode_all([v for _, v in collectd_run.records], MetricIngestConfig())
    by_metric: dict[str, list[MetricEvent]] = {}
    for event in events:
        by_metric.setdefault(event.metric, []).append(event)
    # derive values (cpu) become <metric>_rate; gauges keep plugin/type/data source names.
    assert set(by_metric) == {
        "cpu_rate",
        "memory",
        "load_shortterm",
        "load_midterm",
        "load_longterm",
    }
    assert all(e.host == HOST for e in events)
    assert {e.service for e in by_metric["load_shortterm"]} == {"checkout"}  # meta.service
    assert {e.service for e in by_metric["memory"] + by_metric["cpu_rate"]} == {HOST}
    assert all(math.isfinite(e.value) for e in events)
    memory = {dict(e.labels)["type"] for e in by_metric["memory"]}
    assert {"used", "free"} <= memory and all(e.value >= 0 for e in by_metric["memory"])
    cpu = by_metric["cpu_rate"]
    assert {dict(e.labels)["type"] for e in cpu} >= {"user", "system", "idle"}
    assert {"cpu"} <= {k for e in cpu for k, _ in e.labels}
    # jiffies per second of one CPU: USER_HZ is 100 on Linux
    assert all(-1.0 <= e.value <= 110.0 for e in cpu)


STORE_RATES = MetricIngestConfig(mapping=MetricMapping(collectd=CollectdMapping(store_rates=True)))


def test_collectds_own_rates_decode_with_store_rates(collectd_run: CollectdRun) -> None:
    events = _decode_all(collectd_run.rates_records, STORE_RATES)
    cpu = [e for e in events if e.metric == "cpu_rate"]
    finite = [e for e in cpu if math.isfinite(e.value)]
    assert finite and all(-1.0 <= e.value <= 110.0 for e in finite)
    assert {"memory", "load_shortterm"} <= {e.metric for e in events}


def test_null_first_rate_is_a_gap_of_the_rate_series(collectd_run: CollectdRun) -> None:
    events = _decode_all(collectd_run.rates_records, STORE_RATES)
    assert "cpu" not in {e.metric for e in events}
    assert any(e.metric == "cpu_rate" and math.isnan(e.value) for e in events)


def test_worker_accepts_every_value_list(
    collectd_run: CollectdRun, kafka: BrokerHandle, tmp_path: Path
) -> None:
    in_time_order = sorted((v for _, v in collectd_run.records), key=_time)
    expected = len(_decode_all(in_time_order, MetricIngestConfig()))
    worker = WorkerProcess(
        kafka.bootstrap,
        collectd_run.prefix,
        tmp_path,
        extra_env={"AIOPS_WORKER__MAX_MESSAGE_BYTES": str(MAX_BYTES)},
    ).start()
    try:
        topic = collectd_run.topic
        assert wait_until(
            lambda: (
                worker.metric("aiops_messages_consumed_total", topic=topic)
                >= len(collectd_run.records)
            ),
            timeout=40,
        )
        accepted = wait_for_accepted(worker, topic, expected, timeout=3)
        assert worker.metric("aiops_messages_consumed_total", topic=topic) == len(
            collectd_run.records
        )
        assert deadlettered(worker, topic) == {}
        # Partitions are read concurrently: a derive point of the start-up round that
        # landed on another partition may come after a newer one of its series and give
        # no rate (dropped as out of order), so at most that many rates fewer.
        main = _main_partition(collectd_run.records)
        elsewhere = sum(1 for p, _ in collectd_run.records if p != main)
        assert expected - elsewhere <= accepted <= expected
    finally:
        worker.stop()
