"""Settings: defaults, file and environment, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import load_settings
from streams.exceptions import ConfigError


def test_defaults_need_no_file() -> None:
    settings = load_settings(env={})
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.topics.metrics == "telemetry.metrics"
    assert settings.topics.deadletter == "aiops.deadletter"


def test_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "aiops.yaml"
    file.write_text("topics:\n  partitions: 6\n  metrics: m.in\nkafka:\n  bootstrap: k:9092\n")
    settings = load_settings(
        file, env={"AIOPS_KAFKA_BOOTSTRAP": "other:9093", "AIOPS_TOPICS__PARTITIONS": "12"}
    )
    assert settings.topics.metrics == "m.in"
    assert settings.topics.partitions == 12
    assert settings.kafka.bootstrap == "other:9093"


def test_config_file_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("worker:\n  web_port: 7000\n")
    assert load_settings(env={"AIOPS_CONFIG": str(file)}).worker.web_port == 7000


def test_bad_value_names_file_key_and_problem(tmp_path: Path) -> None:
    file = tmp_path / "aiops.yaml"
    file.write_text("topics:\n  partitions: many\n")
    with pytest.raises(ConfigError) as err:
        load_settings(file, env={})
    message = str(err.value)
    assert str(file) in message
    assert "topics.partitions" in message
    assert "integer" in message


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    file = tmp_path / "aiops.yaml"
    file.write_text("kafka:\n  bootstrap_server: x:1\n")
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_server.*unknown key"):
        load_settings(file, env={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"AIOPS_KAFKA_BOOTSTRAP.*kafka\.bootstrap"):
        load_settings(env={"AIOPS_KAFKA_BOOTSTRAP": "no-port"})


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, env={})


def test_console_credentials_from_the_environment_stay_secret() -> None:
    settings = load_settings(
        env={"AIOPS_CONSOLE__USERS": "{alice: 'wonder land'}", "AIOPS_CONSOLE__TOKENS": ""}
    )
    assert settings.console.users["alice"].get_secret_value() == "wonder land"
    assert settings.console.tokens == {}, "an empty variable (Compose's unset) means none"
    assert "wonder land" not in repr(settings) and "wonder land" not in str(settings.console)
    with pytest.raises(ConfigError, match="AIOPS_CONSOLE__USERS"):
        load_settings(env={"AIOPS_CONSOLE__USERS": "alice"})
