"""Online template mining for one log stream.

The miner follows Drain's structure (templates partitioned by token count, compared token
by token, ``<*>`` for parameters) with two changes that matter for accuracy on real logs:

* Lines are masked first (:func:`detectors.logs.masking.mask`), so numbers, addresses,
  ids and paths never decide a grouping, and a cache keyed by the masked line answers most
  lines with one dictionary look-up.
* A constant word is turned into a parameter only on evidence: when ``merge_after``
  templates that differ at one position only have been seen (four user names), when
  templates differing at the same two positions show ``pair_merge_after`` values at
  each, or when a more general template already covers the line. Drain's single
  similarity threshold instead merges ``Changing view acls`` with ``Changing modify acls``
  and splits ``Failed password for invalid user webmaster`` from ``... user test9``.

Template ids are small integers, in order of creation, per miner. When templates merge,
the oldest id survives and the others become aliases of it, so an id handed out once keeps
resolving. The whole state (templates and aliases, not the cache) serialises to a compact
JSON document, see :meth:`TemplateMiner.to_state`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from detectors.logs.config import MinerConfig
from detectors.logs.exceptions import StateError
from detectors.logs.masking import PARAM, mask

OVERFLOW_ID = 0
"""Template id of the lines that arrive once the template cap is reached."""

_STATE_VERSION = 1
_MAX_PAIR_GROUPS = 50_000


@dataclass(frozen=True, slots=True)
class MinedLine:
    """Where one line went.

    Parameters
    ----------
    template_id
        The (resolved) template of the line; :data:`OVERFLOW_ID` past the cap.
    is_new
        Whether this line created the template.
    """

    template_id: int
    is_new: bool


class TemplateMiner:
    """Groups log lines into templates, online.

    Parameters
    ----------
    config
        Mining settings; defaults to :class:`MinerConfig` ().

    Examples
    --------
    >>> miner = TemplateMiner()
    >>> for user in ["alice", "bob", "carol", "dave"]:
    ...     line = miner.add(f"Accepted password for {user} from 10.0.0.1 port 22 ssh2")
    >>> miner.template_text(line.template_id)
    'Accepted password for <*> from <*> port <*> ssh2'
    >>> miner.add("Connection closed by 10.0.0.7 [preauth]").is_new
    True
    """

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._templates: dict[int, list[str]] = {}
        self._sizes: dict[int, int] = {}
        self._alias: dict[int, int] = {}
        self._by_length: dict[int, list[int]] = defaultdict(list)
        # (length, first token) -> ids: the candidates of a line (plus those led by <*>)
        self._by_head: dict[tuple[int, str], list[int]] = defaultdict(list)
        # hash of (length, position, tokens without that position) -> ids differing only
        # there; a hash keeps the index at one int per token (candidates are verified)
        self._holes: dict[int, set[int]] = defaultdict(set)
        # the same for two positions, filled lazily when such a pair of templates is seen
        self._pair_holes: dict[int, set[int]] = defaultdict(set)
        self._cache: dict[str, int] = {}
        self._next_id = 1
        self.cap_hits = 0

    # -- queries -----------------------------------------------------------------------

    @property
    def template_count(self) -> int:
        """Number of live templates (aliases not counted)."""
        return len(self._templates)

    def resolve(self, template_id: int) -> int:
        """The live template an id (possibly merged since) stands for."""
        alias = self._alias
        while template_id in alias:
            template_id = alias[template_id]
        return template_id

    def template_text(self, template_id: int) -> str:
        """The template of an id, parameters as ``<*>``."""
        if template_id == OVERFLOW_ID:
            return "<overflow>"
        tokens = self._templates.get(self.resolve(template_id))
        return " ".join(tokens) if tokens is not None else "<unknown>"

    def size(self, template_id: int) -> int:
        """Lines seen so far in a template (including merged ones)."""
        return self._sizes.get(self.resolve(template_id), 0)

    def siblings(self, template_id: int) -> list[int]:
        """Live templates that differ from this one at exactly one (constant) position.

        A new template with siblings is most likely a new value of a variable word that
        has not been generalised yet (a fourth user name), rather than a new event.
        """
        tid = self.resolve(template_id)
        tokens = self._templates.get(tid)
        if tokens is None:
            return []
        found: set[int] = set()
        for pos, token in enumerate(tokens):
            if token == PARAM:
                continue
            for other in self._holes.get(_hole_key(tokens, pos), ()):
                other = self.resolve(other)
                if other != tid and other not in found and self._is_sibling(other, tokens, pos):
                    found.add(other)
        return sorted(found)

    def templates(self) -> dict[int, str]:
        """All live templates, id to text."""
        return {tid: " ".join(tokens) for tid, tokens in self._templates.items()}

    # -- mining ------------------------------------------------------------------------

    def add(self, message: str) -> MinedLine:
        """Assign one message body to a template, creating or generalising as needed."""
        masked = mask(message)
        cached = self._cache.get(masked)
        if cached == OVERFLOW_ID:
            self.cap_hits += 1
            return MinedLine(OVERFLOW_ID, False)
        if cached is not None:
            tid = self.resolve(cached)
            if tid in self._sizes:
                self._sizes[tid] += 1
                return MinedLine(tid, False)
        tokens = masked.split()
        matched = self._match(tokens)
        if matched is not None:
            self._sizes[matched] += 1
            self._remember(masked, matched)
            return MinedLine(matched, False)
        if len(self._templates) >= self.config.max_templates:
            self.cap_hits += 1
            self._remember(masked, OVERFLOW_ID)
            return MinedLine(OVERFLOW_ID, False)
        created = self._create(tokens)
        tid = self._generalise(created)
        if tid == created:
            tid = self._generalise_pairs(created)
        tid = self._absorb(tid)
        self._sizes[tid] = self._sizes.get(tid, 0) + 1
        self._remember(masked, created)
        return MinedLine(tid, tid == created)

    def _remember(self, masked: str, tid: int) -> None:
        if self.config.cache_size == 0:
            return
        if len(self._cache) >= self.config.cache_size:
            self._cache.clear()
        self._cache[masked] = tid

    def _match(self, tokens: list[str]) -> int | None:
        """The most specific template covering the tokens, if any."""
        best: int | None = None
        best_params = len(tokens) + 1
        length = len(tokens)
        head = tokens[0] if tokens else ""
        candidates = self._by_head.get((length, head), [])
        if head != PARAM:
            candidates = candidates + self._by_head.get((length, PARAM), [])
        for tid in candidates:
            params = 0
            for have, got in zip(self._templates[tid], tokens, strict=True):
                if have == got:
                    continue
                if have == PARAM:
                    params += 1
                    continue
                break
            else:
                if params < best_params:
                    best, best_params = tid, params
        return best

    def _create(self, tokens: list[str]) -> int:
        tid = self._next_id
        self._next_id += 1
        self._templates[tid] = list(tokens)
        self._sizes[tid] = 0
        self._by_length[len(tokens)].append(tid)
        self._by_head[_head(tokens)].append(tid)
        return tid

    def _constant_enough(self, tokens: list[str], skip: int = -1) -> bool:
        constants = sum(1 for i, tok in enumerate(tokens) if i != skip and PARAM not in tok)
        return constants >= self.config.min_constant_ratio * len(tokens)

    def _merge_into(self, keep: int, gone: int) -> None:
        self._alias[gone] = keep
        self._sizes[keep] = self._sizes.get(keep, 0) + self._sizes.pop(gone, 0)
        self._by_length[len(self._templates[gone])].remove(gone)
        self._by_head[_head(self._templates[gone])].remove(gone)
        del self._templates[gone]

    def _generalise(self, tid: int) -> int:
        """Turn a position into a parameter once enough sibling templates differ there."""
        tokens = self._templates[tid]
        for pos, token in enumerate(tokens):
            if token == PARAM:
                continue
            siblings = self._holes[_hole_key(tokens, pos)]
            siblings.add(tid)
            live = {self.resolve(s) for s in siblings}
            live = {s for s in live if self._is_sibling(s, tokens, pos)}
            if len(live) < self.config.merge_after or not self._constant_enough(tokens, pos):
                continue
            keep = min(live)
            merged = list(tokens)
            merged[pos] = PARAM
            for other in live:
                for i, theirs in enumerate(self._templates[other]):
                    if theirs == PARAM:
                        merged[i] = PARAM
            for other in live - {keep}:
                self._merge_into(keep, other)
            self._set_tokens(keep, merged)
            return self._generalise(keep)
        return tid

    def _set_tokens(self, tid: int, tokens: list[str]) -> None:
        """Replace a template's tokens (same length), keeping the head index right."""
        old = _head(self._templates[tid])
        self._templates[tid] = tokens
        new = _head(tokens)
        if new != old:
            self._by_head[old].remove(tid)
            self._by_head[new].append(tid)

    def _generalise_pairs(self, tid: int) -> int:
        """Turn two positions into parameters once they both vary enough (see config)."""
        tokens = self._templates[tid]
        length = len(tokens)
        need = self.config.pair_merge_after
        for other in self._by_length[length]:
            if other == tid:
                continue
            diff = _two_differences(self._templates[other], tokens)
            if diff is None:
                continue
            p1, p2 = diff
            key = _pair_key(tokens, p1, p2)
            if key not in self._pair_holes and len(self._pair_holes) >= _MAX_PAIR_GROUPS:
                self._pair_holes.clear()  # evidence is rebuilt from the templates as they come
            group = self._pair_holes[key]
            group.update((tid, other))
            live = {
                s
                for s in {self.resolve(g) for g in group}
                if s == tid
                or (s in self._templates and _two_differences(self._templates[s], tokens) == diff)
            }
            first = {self._templates[s][p1] for s in live}
            second = {self._templates[s][p2] for s in live}
            if len(first) < need or len(second) < need:
                continue
            merged = list(tokens)
            merged[p1] = merged[p2] = PARAM
            if not self._constant_enough(merged):
                continue
            keep = min(live)
            for gone in live - {keep}:
                self._merge_into(keep, gone)
            self._set_tokens(keep, merged)
            return self._generalise(keep)
        return tid

    def _is_sibling(self, other: int, tokens: list[str], pos: int) -> bool:
        """Whether a template equals ``tokens`` (or is more general) except at ``pos``."""
        theirs = self._templates.get(other)
        if theirs is None or len(theirs) != len(tokens) or theirs[pos] == PARAM:
            return False
        if theirs[:pos] == tokens[:pos] and theirs[pos + 1 :] == tokens[pos + 1 :]:
            return True  # the usual case, compared in C
        return all(
            i == pos or a in (b, PARAM) for i, (a, b) in enumerate(zip(theirs, tokens, strict=True))
        )

    def _absorb(self, tid: int) -> int:
        """Merge the templates that this (more general) one covers into the oldest."""
        tokens = self._templates[tid]
        if not self._constant_enough(tokens):
            return tid
        for other in list(self._by_length[len(tokens)]):
            if other == tid or other not in self._templates:
                continue
            theirs = self._templates[other]
            if all(a in (b, PARAM) for a, b in zip(tokens, theirs, strict=True)):
                keep, gone = min(other, tid), max(other, tid)
                self._set_tokens(keep, list(tokens))
                self._merge_into(keep, gone)
                tid = keep
        return tid

    # -- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot: templates, sizes, aliases and counters."""
        return {
            "v": _STATE_VERSION,
            "next": self._next_id,
            "cap_hits": self.cap_hits,
            "t": [
                [tid, " ".join(toks), self._sizes.get(tid, 0)]
                for tid, toks in self._templates.items()
            ],
            "a": [[k, v] for k, v in self._alias.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: MinerConfig | None = None) -> TemplateMiner:
        """Rebuild a miner from :meth:`to_state`; ids and templates are preserved."""
        miner = cls(config)
        try:
            if state["v"] != _STATE_VERSION:
                raise StateError(f"miner state version {state['v']} is not supported")
            miner._next_id = int(state["next"])
            miner.cap_hits = int(state["cap_hits"])
            for tid, text, size in state["t"]:
                tokens = str(text).split()
                miner._templates[int(tid)] = tokens
                miner._sizes[int(tid)] = int(size)
                miner._by_length[len(tokens)].append(int(tid))
                miner._by_head[_head(tokens)].append(int(tid))
            miner._alias = {int(k): int(v) for k, v in state["a"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"malformed miner state: {exc}") from None
        for tid, tokens in miner._templates.items():
            for pos, token in enumerate(tokens):
                if token != PARAM:
                    miner._holes[_hole_key(tokens, pos)].add(tid)
        return miner


def _hole_key(tokens: list[str], pos: int) -> int:
    """Index key of the templates that equal ``tokens`` everywhere but at ``pos``."""
    return hash((len(tokens), pos, *tokens[:pos], *tokens[pos + 1 :]))


def _two_differences(a: list[str], b: list[str]) -> tuple[int, int] | None:
    """The two positions where two equally long token lists differ, if exactly two and
    neither side holds a parameter there."""
    found: list[int] = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            if x == PARAM or y == PARAM or len(found) == 2:
                return None
            found.append(i)
    return (found[0], found[1]) if len(found) == 2 else None


def _pair_key(tokens: list[str], p1: int, p2: int) -> int:
    """Index key of the templates that equal ``tokens`` everywhere but at ``p1``, ``p2``."""
    rest = [t for i, t in enumerate(tokens) if i not in (p1, p2)]
    return hash((len(tokens), p1, p2, *rest))


def _head(tokens: list[str]) -> tuple[int, str]:
    return len(tokens), tokens[0] if tokens else ""
