"""Stage 2, retrieval: one ranked list per group of the scope (per state, or one for all)."""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Passage
from ..retrieval import QuerySignals, Retriever
from .scope import Scope

# Passages per group that evidence looks through (the answer quotes from the top k of them):
# a topic found only at rank 6-10 still shows the plan covers it.
EVIDENCE_DEPTH = 10


@dataclass(frozen=True)
class Hits:
    group: str  # a state code, or "" when the question is answered as one
    passages: tuple[Passage, ...]  # ranked, EVIDENCE_DEPTH or k of them, whichever is more
    signals: QuerySignals


def retrieve(retriever: Retriever, scope: Scope, k: int = 5, mode: str = "hybrid") -> tuple[Hits, ...]:
    depth = max(k, EVIDENCE_DEPTH)
    out = []
    for group in scope.groups:
        signals = retriever.signals(scope.text, scope.group_states(group), scope.categories, scope.intent,
                                    scope.version)
        passages = retriever.rank(signals, depth, mode=mode) if signals.allowed.any() else []
        out.append(Hits(group, tuple(passages), signals))
    return tuple(out)
