"""The configuration shown in docs/ingest.md is what the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingest.formats.mapping import GraphiteTemplate
from ingest.formats.structured_logs import StructuredLogConfig, fluentbit_mapping
from ingest.metrics import MetricIngestConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


def yaml_blocks() -> list[object]:
    if not DOC.exists():
        pytest.skip("docs/ingest.md is not in this checkout")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def test_metric_config_block_is_the_defaults_plus_a_template():
    block = next(b for b in yaml_blocks() if isinstance(b, dict) and "mapping" in b)
    config = MetricIngestConfig.model_validate(block)
    assert config.mapping.graphite.templates == (
        GraphiteTemplate(match="servers.*", template="_.host.service.metric*"),
    )
    defaults = MetricIngestConfig()
    assert config.model_dump(exclude={"mapping": {"graphite": {"templates"}}}) == (
        defaults.model_dump(exclude={"mapping": {"graphite": {"templates"}}})
    )


def test_fluentbit_block_is_the_default_mapping():
    block = next(b for b in yaml_blocks() if isinstance(b, dict) and "fluentbit" in b)
    config = StructuredLogConfig.model_validate({"fluentbit": block["fluentbit"]})
    assert config.fluentbit == fluentbit_mapping()
