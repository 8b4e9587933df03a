"""Masking: variable parts become <*>, constant words stay."""

from __future__ import annotations

import pytest

from detectors.logs.masking import mask


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("from 10.0.0.12 port 22", "from <*> port <*>"),
        ("connect to 10.0.0.12:5432 failed", "connect to <*> failed"),
        ("peer fe80::1ff:fe23:4567:890a down", "peer <*> down"),
        ("req 6b2c0d4e-1f9a-4c3e-9a57-0d8e0b5f6a21 done", "req <*> done"),
        ("addr 0x7ffde3a0 bad", "addr <*> bad"),
        ("open /var/lib/data/blk_1.meta", "open <*>"),
        ("GET https://shop.example.com/cart?id=3 ok", "GET <*> ok"),
        ("took 125ms", "took <*>"),
        ("stored 5.2 KB free 3 GB", "stored <*> free <*>"),
        ("block blk_-1608999687919862906 ok", "block <*> ok"),
        ("task attempt_1445_0020_m_000001_0 done", "task <*> done"),
        ("HWID=1973 state", "HWID=<*> state"),
        ("mac 00:1a:2b:3c:4d:5e up", "mac <*> up"),
        ("[09:21:58.929] host available", "[<*>] host available"),
        ("at Fri Jun 17 07:07:00 2005 done", "at Fri Jun <*> done"),
        ("Fan speeds ( 3552 3534 **** 3515 )", "Fan speeds ( <*> **** <*> )"),
        ("nodes 1, 2, 3; 4 ok", "nodes <*> ok"),
        ("Core: C:\\Windows\\winsxs\\cbscore.dll loaded", "Core: <*> loaded"),
        ("sent 1190 bytes (1.16 KB), lifetime 00:02", "sent <*> bytes, lifetime <*>"),
    ],
)
def test_variables_are_masked(line: str, masked: str) -> None:
    assert mask(line) == masked


@pytest.mark.parametrize(
    "line",
    [
        "Registered signal handlers for [TERM, HUP, INT]",
        "Changing view acls to: yarn,curi",
        "pam_unix(sshd:auth): check pass; user unknown",
        "Server environment:java.vendor=Oracle Corporation",
        "std::vector out of range",
    ],
)
def test_constant_lines_are_unchanged(line: str) -> None:
    assert mask(line) == line


def test_words_with_one_trailing_digit_stay_constant() -> None:
    assert mask("via interface eth0 using ssh2") == "via interface eth0 using ssh2"
