"""Versioned, compact bytes for a series' state, and a loader that only builds known types."""

from __future__ import annotations

import io
import pickle
from typing import Any

from detectors.metric.exceptions import StateError

STATE_VERSION = 5
"""First byte of every state; bump it when the layout changes incompatibly.

Version 2: a seasonal profile of ``robust_likelihood`` keeps one bit per bucket (whether
it has had a value) instead of a count. Version 3: ``robust_likelihood`` pickles its row of
a bank (two float arrays) and only the parameters that differ from the defaults, instead of
every slot by name. Version 4: the row of ``robust_likelihood`` holds the change-of-pattern
CUSUM (four columns before the profiles). Version 5: the row of ``robust_likelihood`` holds
the season-departure CUSUM (six columns before the profiles) and its profile's buckets
(after the other buckets). Versions 1 to 4 are still read (and converted).
"""

READABLE_VERSIONS = frozenset({1, 2, 3, 4, STATE_VERSION})
"""State versions :func:`load_state` reads."""

_ALLOWED_MODULES = ("detectors.metric", "river.", "array", "collections", "copyreg")
_ALLOWED_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "float", "int"})
_ALLOWED_CLASSES = frozenset(
    {
        ("random", "Random"),  # River's Gaussian and HalfSpaceTrees keep a generator
        ("functools", "partial"),  # HalfSpaceTrees' default limits (of allowed callables only)
    }
)


class _SafeUnpickler(pickle.Unpickler):
    """Builds only detector types, River estimators and plain containers."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module == "detectors.metric" or module.startswith(_ALLOWED_MODULES):
            return super().find_class(module, name)
        if (module, name) in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        raise StateError(f"state refers to a type that is not allowed: {module}.{name}")


def dump_state(obj: object) -> bytes:
    """Version byte followed by the pickled object.

    >>> load_state(dump_state({"a": 1.5}))
    {'a': 1.5}
    """
    return bytes([STATE_VERSION]) + pickle.dumps(obj, protocol=5)


def load_state(data: bytes) -> Any:
    """Inverse of :func:`dump_state`; raises :class:`StateError` on foreign bytes."""
    if not data:
        raise StateError("empty state")
    if data[0] not in READABLE_VERSIONS:
        raise StateError(f"unsupported state version {data[0]} (expected {STATE_VERSION})")
    try:
        return _SafeUnpickler(io.BytesIO(data[1:])).load()
    except StateError:
        raise
    except Exception as exc:  # any unpickling failure means unusable bytes
        raise StateError(f"corrupt state: {exc}") from exc
