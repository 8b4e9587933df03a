"""collectd's JSON as ``write_kafka`` (``Format JSON``) sends it.

Fixture ``collectd_write_kafka.json`` follows collectd's ``src/utils_format_json.c``
(``values``/``dstypes``/``dsnames``/``time``/``interval``/``host``/``plugin``/
``plugin_instance``/``type``/``type_instance``, optional ``meta``; NaN gauges as
``null``) and collectd.conf(5) on ``write_kafka``'s ``StoreRates``.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson

from ingest.exceptions import Reason
from ingest.formats.cumulative import CumulativeState
from ingest.formats.mapping import CollectdMapping, MetricMapping
from ingest.metrics import MetricIngestConfig, decode_metric_message

FIXTURES = Path(__file__).parent / "fixtures"
AUTO = MetricIngestConfig()
PAYLOAD = (FIXTURES / "collectd_write_kafka.json").read_bytes()


def decode(payload: bytes, config: MetricIngestConfig = AUTO, state=None):
    return decode_metric_message(payload, config=config, max_bytes=1 << 20, state=state)


def test_write_kafka_message():
    decoded = decode(PAYLOAD, state=CumulativeState())
    metrics = {(e.metric, e.labels): e for e in decoded.events}
    idle = metrics[("cpu_percent", (("cpu", "0"), ("type", "idle")))]
    assert (idle.service, idle.host, idle.value, idle.timestamp) == (
        "db-1",
        "db-1",
        97.5,
        1700000000.0,
    )
    assert metrics[("load_midterm", ())].value == 0.41
    assert math.isnan(metrics[("memory", (("type", "used"),))].value)  # null: a gap
    orders = metrics[("statsd_count_rate", (("type", "orders"),))]
    assert orders.value == 12.0  # absolute 120 over a 10 s interval
    assert orders.service == "orders"  # from meta data
    # derive values only prime the state on their first value list
    assert not any(e.metric.startswith("interface") for e in decoded.events)
    assert len(decoded.events) == 6
    [error] = decoded.errors
    assert error.index == 5
    assert error.error.detail == (
        "collectd: [5] (db-1/broken/gauge): 'values', 'dstypes' and 'dsnames' differ in length"
    )
    assert orjson.loads(error.raw)["plugin"] == "broken"


def test_derive_becomes_a_rate_on_the_next_value_list():
    state = CumulativeState()
    decode(PAYLOAD, state=state)
    later = orjson.loads(PAYLOAD)[2]
    later.update(time=1700000010.0, values=[1843254336 + 50_000, 893126976 + 10_000])
    decoded = decode(orjson.dumps([later]), state=state)
    rates = {e.metric: e.value for e in decoded.events}
    assert rates == {"interface_if_octets_rx_rate": 5000.0, "interface_if_octets_tx_rate": 1000.0}
    assert decoded.events[0].labels == (("interface", "eth0"),)


def test_store_rates_values_are_taken_as_rates():
    config = MetricIngestConfig(
        format="collectd",
        mapping=MetricMapping(collectd=CollectdMapping(store_rates=True, prefix="collectd")),
    )
    interface = orjson.loads(PAYLOAD)[2]
    interface["values"] = [5000.0, 1000.0]
    decoded = decode(orjson.dumps([interface]), config)
    assert {e.metric: e.value for e in decoded.events} == {
        "collectd_interface_if_octets_rx_rate": 5000.0,
        "collectd_interface_if_octets_tx_rate": 1000.0,
    }


def test_unknown_dstype_is_named():
    item = orjson.loads(PAYLOAD)[0]
    item["dstypes"] = ["histogram"]
    decoded = decode(orjson.dumps([item]))
    assert decoded.errors[0].error.reason is Reason.INVALID_VALUE
    assert "collectd: [0] (db-1/cpu-0/percent-idle)" in decoded.errors[0].error.detail
    assert "'histogram'" in decoded.errors[0].error.detail


# write_kafka 5.12 with StoreRates true (its default): the first rate of a derive series.
FIRST_RATE = (
    b'[{"values":[null],"dstypes":["derive"],"dsnames":["value"],"time":1795729321.676,'
    b'"interval":1.000,"host":"web-7","plugin":"cpu","plugin_instance":"0","type":"cpu",'
    b'"type_instance":"user"}]'
)
STORE_RATES = MetricIngestConfig(mapping=MetricMapping(collectd=CollectdMapping(store_rates=True)))


def test_null_first_rate_is_a_gap_of_the_rate_series():
    [event] = decode(FIRST_RATE, STORE_RATES).events
    assert event.metric == "cpu_rate" and math.isnan(event.value)
    assert event.labels == (("cpu", "0"), ("type", "user"))


def test_null_counter_without_store_rates_is_a_gap_of_the_rate_series():
    state = CumulativeState()
    for dstype in ("derive", "counter", "absolute"):
        payload = FIRST_RATE.replace(b'"derive"', f'"{dstype}"'.encode())
        [event] = decode(payload, state=state).events
        assert event.metric == "cpu_rate" and math.isnan(event.value)
    # the gap does not prime the counter state: the next value only primes it
    payload = FIRST_RATE.replace(b"null", b"1000")
    assert decode(payload, state=state).events == []
