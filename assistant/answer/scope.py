"""Stage 1, scope: which states a question is about, whether to answer state by state, which
approach it asks about, and its topical terms. Markup in a question is read as text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..states import asks_across_states, detect_states, normalize_state
from ..tagging import CategoryTagger
from ..terms import TopicalTerm, topical_terms

_MARKUP = re.compile(r"<[^>]{0,200}>")


@dataclass(frozen=True)
class Scope:
    question: str  # as asked (shown back to the user)
    text: str  # what is searched: the question with any markup blanked out
    named: tuple[str, ...]  # states the question (or the caller) names
    missing: tuple[str, ...]  # of those, the ones not indexed
    searched: tuple[str, ...]  # indexed states searched
    per_state: bool  # one answer section per state
    intent: tuple[str, ...]  # approach categories the question asks about (boosted)
    categories: tuple[str, ...]  # the caller's category filter (restricts)
    terms: tuple[TopicalTerm, ...]  # what the question is about, in its own words

    @property
    def nothing_to_search(self) -> bool:
        """Every state the question names is missing from the index."""
        return bool(self.missing) and len(self.missing) == len(self.named)

    @property
    def answer_states(self) -> tuple[str, ...]:
        return self.named or (self.searched if self.per_state else ())

    @property
    def groups(self) -> tuple[str, ...]:
        """Retrieval groups: one per state when answering state by state, else one ("")."""
        return self.searched if self.per_state else ("",)

    def group_states(self, group: str) -> list[str] | None:
        if group:
            return [group]
        present = [s for s in self.named if s not in self.missing]
        return present or None


def scope_question(question: str, indexed: Sequence[str], tagger: CategoryTagger,
                   states: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None) -> Scope:
    text = " ".join(_MARKUP.sub(" ", question).split())
    named = [normalize_state(s) or s.upper() for s in states] if states else detect_states(text)
    named = list(dict.fromkeys(named))
    missing = [s for s in named if s not in indexed]
    present = [s for s in named if s in indexed]
    per_state = len(named) > 1 or (not named and asks_across_states(text))
    searched = present or list(indexed)
    return Scope(question=question, text=text, named=tuple(named), missing=tuple(missing),
                 searched=tuple(searched), per_state=per_state,
                 intent=tagger.question_categories(text), categories=tuple(categories or ()),
                 terms=topical_terms(text))
