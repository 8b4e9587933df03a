"""A missing producer skips its tests, or fails them when CI requires the producers."""

from __future__ import annotations

import pytest

from tests.producers.conftest import REQUIRE_ENV, require_binary, require_file


def test_missing_producer_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="install-producers"):
        require_binary("aiops-no-such-producer", "no-such-package")


def test_missing_producer_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-package"):
        require_binary("aiops-no-such-producer", "no-such-package")
    with pytest.raises(pytest.fail.Exception, match="no-such-package"):
        require_file("/nonexistent/*/plugin.so", "no-such-package")


def test_present_binary_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    assert require_binary("sh", "dash").endswith("/sh")
