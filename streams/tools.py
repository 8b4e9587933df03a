"""Commands to feed and watch a running aiops-stream: ``aiops send`` and ``aiops tail``."""

from __future__ import annotations

import argparse
from typing import Any


def register_tools(sub: Any) -> None:
    """Add the tool sub-commands to the ``aiops`` parser."""
    del sub


def _unused(args: argparse.Namespace) -> int:
    return 0
