"""Service dependency graph, from a YAML file, and learned co-occurrence when there is none."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from rca.exceptions import ConfigError


@dataclass(frozen=True)
class Topology:
    """Who calls whom: ``dependencies[a]`` are the services ``a`` depends on.

    Parameters
    ----------
    dependencies
        Service to the services it calls (databases, queues, downstream APIs).

    >>> topo = Topology.from_mapping({"front-end": ["carts"], "carts": ["carts-db"]})
    >>> sorted(topo.dependents("carts"))
    ['front-end']
    >>> topo.distance("front-end", "carts-db")
    2
    """

    dependencies: Mapping[str, frozenset[str]]
    _dependents: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dependents: dict[str, set[str]] = {}
        for src, dsts in self.dependencies.items():
            dependents.setdefault(src, set())
            for dst in dsts:
                dependents.setdefault(dst, set()).add(src)
        object.__setattr__(self, "_dependents", {k: frozenset(v) for k, v in dependents.items()})

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Topology:
        """Build from ``{service: [dependency, ...]}``."""
        deps: dict[str, frozenset[str]] = {
            str(k): frozenset(map(str, v)) for k, v in mapping.items()
        }
        for dsts in list(deps.values()):
            for dst in dsts:
                deps.setdefault(dst, frozenset())
        return cls(dependencies=deps)

    @property
    def services(self) -> frozenset[str]:
        """Every service named in the graph."""
        return frozenset(self.dependencies)

    def knows(self, service: str) -> bool:
        """True if the service is in the graph."""
        return service in self.dependencies

    def dependencies_of(self, service: str) -> frozenset[str]:
        """Services that ``service`` calls."""
        return self.dependencies.get(service, frozenset())

    def dependents(self, service: str) -> frozenset[str]:
        """Services that call ``service``."""
        return self._dependents.get(service, frozenset())

    def distance(self, a: str, b: str, limit: int = 64) -> int | None:
        """Edges between two services, ignoring direction; None if farther than ``limit``."""
        if a == b:
            return 0
        if not (self.knows(a) and self.knows(b)):
            return None
        seen = {a}
        queue: deque[tuple[str, int]] = deque([(a, 0)])
        while queue:
            node, dist = queue.popleft()
            if dist >= limit:
                continue
            for nxt in self.dependencies_of(node) | self.dependents(node):
                if nxt == b:
                    return dist + 1
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, dist + 1))
        return None

    def to_dict(self) -> dict[str, list[str]]:
        """``{service: sorted dependencies}``, the YAML file's ``services`` block."""
        return {k: sorted(v) for k, v in sorted(self.dependencies.items())}


def load_topology(path: str | Path) -> Topology:
    """Read a topology file.

    The file holds ``services:``, a mapping of each service to the list of services it
    depends on (calls). Raises :class:`~rca.exceptions.ConfigError` naming the file, the
    key and the problem.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file ({exc.strerror})") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML ({exc})") from exc
    return parse_topology(doc, source=source)


def parse_topology(doc: Any, *, source: str = "<config>") -> Topology:
    """Validate a parsed topology document (see :func:`load_topology`)."""
    if not isinstance(doc, dict) or "services" not in doc:
        raise ConfigError(source, "", "expected a mapping with a 'services' key")
    unknown = set(doc) - {"services"}
    if unknown:
        raise ConfigError(source, ", ".join(sorted(map(str, unknown))), "unknown key")
    services = doc["services"]
    if not isinstance(services, dict):
        raise ConfigError(source, "services", "expected a mapping of service -> dependencies")
    mapping: dict[str, list[str]] = {}
    for name, deps in services.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(source, f"services.{name}", "service names must be strings")
        if deps is None:
            deps = []
        if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
            raise ConfigError(source, f"services.{name}", "expected a list of service names")
        if name in deps:
            raise ConfigError(source, f"services.{name}", "a service cannot depend on itself")
        mapping[name] = deps
    return Topology.from_mapping(mapping)


class CoOccurrence:
    """Learned relatedness of services: how often they shared an incident.

    Counts are updated once per resolved incident. Two services are related when either
    has too little history to tell (``min_support``), or when they appeared together in
    at least ``min_cooccurrence`` of the incidents of the rarer one.

    Parameters
    ----------
    min_support
        Incidents a service needs before it can be told apart from others.
    min_cooccurrence
        Share of shared incidents that makes two services related.
    max_services
        Bound on tracked services (the least seen are forgotten first).

    >>> co = CoOccurrence(min_support=2, min_cooccurrence=0.5)
    >>> for _ in range(3):
    ...     co.observe(["a", "b"]); co.observe(["c"])
    >>> co.related("a", "b"), co.related("a", "c"), co.related("a", "new")
    (True, False, True)
    """

    def __init__(
        self, *, min_support: int = 5, min_cooccurrence: float = 0.2, max_services: int = 2000
    ) -> None:
        self.min_support = min_support
        self.min_cooccurrence = min_cooccurrence
        self.max_services = max_services
        self.counts: dict[str, int] = {}
        self.pairs: dict[tuple[str, str], int] = {}

    def observe(self, services: Iterable[str]) -> None:
        """Record one incident's set of services."""
        members = sorted(set(services))
        for s in members:
            self.counts[s] = self.counts.get(s, 0) + 1
        for a, b in combinations(members, 2):
            self.pairs[(a, b)] = self.pairs.get((a, b), 0) + 1
        if len(self.counts) > self.max_services:
            self._forget()

    def related(self, a: str, b: str) -> bool:
        """True if anomalies of ``a`` and ``b`` close in time belong together."""
        if a == b:
            return True
        na, nb = self.counts.get(a, 0), self.counts.get(b, 0)
        if min(na, nb) < self.min_support:
            return True
        shared = self.pairs.get((a, b) if a < b else (b, a), 0)
        return shared >= self.min_cooccurrence * min(na, nb)

    def _forget(self) -> None:
        keep = set(sorted(self.counts, key=lambda s: -self.counts[s])[: self.max_services])
        self.counts = {s: n for s, n in self.counts.items() if s in keep}
        self.pairs = {p: n for p, n in self.pairs.items() if p[0] in keep and p[1] in keep}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "counts": self.counts,
            "pairs": [[a, b, n] for (a, b), n in self.pairs.items()],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore state written by :meth:`to_dict`."""
        self.counts = {str(k): int(v) for k, v in data.get("counts", {}).items()}
        self.pairs = {(str(a), str(b)): int(n) for a, b, n in data.get("pairs", [])}
