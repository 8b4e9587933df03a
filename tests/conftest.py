"""Shared fixtures. Kafka tests use one real broker per session (see tests/kafka_harness.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.kafka_harness import BrokerHandle, start_broker


@pytest.fixture(scope="session")
def kafka() -> Iterator[BrokerHandle]:
    """The real broker: ``AIOPS_KAFKA_BOOTSTRAP`` if set, else the local one (started if needed)."""
    handle = start_broker(os.environ.get("AIOPS_KAFKA_BOOTSTRAP"))
    yield handle
    handle.close()
