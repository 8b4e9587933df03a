"""The Kafka transport of the worker: Faust's aiokafka driver with a short fetch wait.

Faust's driver hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer: a partition
with little traffic is then read in 1.5 s steps, which is most of the latency from a sample
to its anomaly. This transport (URL scheme ``aiops://``, registered as a Faust transport
entry point) only changes that wait, to ``worker.fetch_max_wait_ms``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from faust.transport.drivers import aiokafka as faust_aiokafka

DEFAULT_FETCH_MAX_WAIT_MS = 100


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Consumer thread whose worker consumer waits at most ``fetch_max_wait_ms``."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "aiops_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        consumer._fetch_max_wait_ms = int(wait)  # read when the consumer starts
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`ConsumerThread`."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer`."""

    Consumer: ClassVar[Any] = Consumer
