"""Stage 1, scope: which states a question is about, whether to answer state by state, which
approach it asks about, and its topical terms. Markup in a question is read as text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..records import MAX_K
from ..states import asks_across_states, detect_states, normalize_state, state_name
from ..tagging import CategoryTagger
from ..terms import TopicalTerm, topical_terms
from ..versions import ALL, describe, plan_versions

# Tags are blanked, and so is what a script or style element holds: "alert(1)" is not a topic.
_MARKUP = re.compile(r"<(script|style)\b[^>]{0,200}>.{0,2000}?</\1\s*>|<[^>]{0,200}>",
                     re.IGNORECASE | re.DOTALL)


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
    version: str | None = None  # plan version searched: None each state's newest, "all", or one

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


def check_request(k: int, states: Sequence[str] | None, categories: Sequence[str] | None,
                  tagger: CategoryTagger) -> None:
    """The caller's options, refused in one line before anything is searched: a k of 0 or an
    unknown category would otherwise come back as an abstention that blames the plans."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    for state in states or ():
        if normalize_state(str(state)) is None:
            raise ConfigError(f"{state!r} is not a state's postal code or name (e.g. DE, Delaware)")
    for category in categories or ():
        if category not in tagger.ids:
            raise ConfigError(f"{category!r} is not a category; one of: {', '.join(tagger.ids)}")


def scope_question(question: str, indexed: Sequence[str], tagger: CategoryTagger,
                   states: Sequence[str] | None = None,
                   categories: Sequence[str] | None = None) -> Scope:
    text = " ".join(_MARKUP.sub(" ", question).split())
    named = [normalize_state(s) for s in states] if states else detect_states(text)
    named = list(dict.fromkeys(named))
    missing = [s for s in named if s not in indexed]
    present = [s for s in named if s in indexed]
    per_state = len(named) > 1 or (not named and asks_across_states(text))
    searched = present or list(indexed)
    return Scope(question=question, text=text, named=tuple(named), missing=tuple(missing),
                 searched=tuple(searched), per_state=per_state,
                 intent=tagger.question_categories(text), categories=tuple(categories or ()),
                 terms=topical_terms(text))


def scope_version(scope: Scope, plans: Mapping[str, Mapping], version: str | None) -> Scope:
    """The scope limited to one plan version ("2017", "2019 amended"; None: each state's newest,
    "all": every version). A state named that has no such version is refused in one line naming
    the versions it has, rather than answered from another version or abstained on."""
    version = (version or "").strip() or None
    if version is None or version.lower() == ALL:
        return replace(scope, version=version)
    versions = plan_versions(plans)
    having = [s for s in scope.searched if any(v.matches(version) for v in versions.get(s, ()))]
    lacking = [s for s in scope.named if s in scope.searched and s not in having]
    if lacking or not having:
        shown = lacking or list(scope.searched)
        held = "; ".join(f"{state_name(s)}: {describe(versions.get(s, ()))}" for s in shown)
        who = ", ".join(state_name(s) for s in lacking) if lacking else "No indexed plan"
        raise ConfigError(f"{who} has no plan version {version!r} in the index "
                          f"(indexed versions: {held})")
    return replace(scope, searched=tuple(having), version=version)
