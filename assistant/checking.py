"""Claim checking: a paragraph from a draft, split into claims, each judged against the plans.

For each claim (a sentence of the draft):
1. scope: the states it names (or the caller's --state); a state not indexed is "not found";
2. evidence: the closest stored sentences of that state's plan (the sentence vectors written at
   index time; only the claim is embedded) and, for a claim pinned on the wrong state, of the
   other indexed plans;
3. details: what must match exactly: numbers (percentages, years, counts, grades; number words
   read as digits), names (capitalized runs, acronyms, quoted titles) and negation;
4. verdict: "supported" when a close sentence (or its passage) holds every detail with the same
   polarity; "contradicted" when the sentence on the same point gives other numbers, says the
   opposite, or another state's plan is the one that says it; "not_found" when nothing close
   enough is in the plan, or a name in the claim is in no passage of it.
The supporting (or contradicting) sentence is cited as an answer cites its quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


from .answer.compose import make_citation
from .answer.scope import scope_question
from .chunking import sentence_spans
from .records import Citation, Passage
from .states import STATE_NAMES, state_name

# A sentence of the plan is on the claim's point at this cosine (all-mpnet-base-v2, stored
# sentence vectors; read off the claim set, eval/claims.jsonl) ...
SAME_POINT = 0.62
# ... and with no detail to compare, says the same thing at this one.
SAYS_IT = 0.80
CANDIDATES = 6  # closest sentences compared per plan
PASSAGES = 8  # passages per plan whose sentences are candidates

SUPPORTED, CONTRADICTED, NOT_FOUND = "supported", "contradicted", "not_found"
_JOINERS = frozenset("of for and the to by in on &".split())

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_ORDINALS = {w: str(i) for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(%|percent\b))?", re.I)
_ORDINAL_DIGITS = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I)
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|n't)\b|n't\b", re.I)
_NAME = re.compile(r"\b(?:[A-Z][A-Za-z0-9&'’-]*|[A-Z]{2,})(?:\s+(?:of|for|and|the|to|by|in|on|&)?\s*"
                   r"(?:[A-Z][A-Za-z0-9&'’-]*|[A-Z]{2,}|\d+))*")
# Capitalized words that are not names of anything the plans could be checked for.
_NOT_NAMES = frozenset("""
The A An This That These Those It Its In On At By For From With Under Over After Before During Each
Every All Some Most Many Both State States Plan Plans Its Their Our We They He She ESSA Every Student
Succeeds Act Department Education School Schools Students Student Teachers Teacher However Also
""".split())


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    verdict: str  # SUPPORTED | CONTRADICTED | NOT_FOUND
    reason: str
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict:
        return {"claim": self.claim, "verdict": self.verdict, "reason": self.reason,
                "citations": [c.to_dict() for c in self.citations]}


@dataclass(frozen=True)
class CheckReport:
    text: str
    claims: tuple[ClaimCheck, ...]

    def to_dict(self) -> dict:
        return {"claims": [c.to_dict() for c in self.claims]}

    def to_markdown(self) -> str:
        out = ["| # | claim | verdict | reason | source |", "|---:|---|---|---|---|"]
        for n, c in enumerate(self.claims, 1):
            where = "; ".join(f"{state_name(x.state)}, {x.source}, {_place(x)}: “{x.quote}”" for x in c.citations)
            out.append(f"| {n} | {_cell(c.claim)} | {c.verdict} | {_cell(c.reason)} | {_cell(where)} |")
        return "\n".join(out) + "\n"


def split_claims(text: str) -> list[str]:
    """The draft's sentences that say something (three words or more), in the order written."""
    claims = []
    for a, b in sentence_spans(" ".join((text or "").split())):
        sentence = text and " ".join(text.split())[a:b].strip()
        if len(re.findall(r"[A-Za-z]{2,}", sentence)) >= 3:
            claims.append(sentence)
    return claims


@dataclass(frozen=True)
class Details:
    numbers: frozenset[str]
    names: frozenset[str]
    negated: bool

    @property
    def any(self) -> bool:
        return bool(self.numbers or self.names)


def details(text: str) -> Details:
    """What must match exactly in `text`: its numbers (digits, percentages as "N%") and names."""
    lowered = _ORDINAL_DIGITS.sub(r"\1", text)
    words = re.sub(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1).lower()],
                   lowered, flags=re.I)
    words = re.sub(r"\b(" + "|".join(_ORDINALS) + r")\b", lambda m: _ORDINALS[m.group(1).lower()], words,
                   flags=re.I)
    numbers = set()
    for m in _NUMBER.finditer(words):
        value = m.group(1).replace(",", "")
        value = value[:-2] if value.endswith(".0") else value
        numbers.add(value + ("%" if m.group(2) else ""))
    names = set()
    states = {s.lower() for s in STATE_NAMES.values()}
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        # Trimmed at the edges only: "Bay State Robotics Academy" keeps its "State".
        while words and (words[0] in _NOT_NAMES or words[0].lower() in states or words[0].rstrip("’'s").lower() in states):
            words.pop(0)
        while words and (words[-1] in _NOT_NAMES or words[-1].lower() in _JOINERS or words[-1].isdigit()):
            words.pop()
        if not words or " ".join(words).lower() in states:
            continue
        if m.start() == 0 and len(words) == 1 and words[0] == m.group(0).split()[0] and not words[0].isupper():
            continue  # the sentence's first word is capitalized anyway
        names.add(" ".join(words))
    return Details(frozenset(numbers), frozenset(names), bool(_NEGATION.search(text)))


def _holds(claim: Details, text: str) -> tuple[bool, set[str], set[str]]:
    """(every detail of the claim in `text`, numbers missing, names missing)."""
    found = details(text)
    plain = {n.rstrip("%") for n in found.numbers}
    missing_numbers = {n for n in claim.numbers if n not in found.numbers and n.rstrip("%") not in plain}
    lowered = " ".join(text.lower().split())
    missing_names = {n for n in claim.names if n.lower() not in lowered}
    return not missing_numbers and not missing_names, missing_numbers, missing_names


@dataclass(frozen=True)
class _Candidate:
    passage: Passage
    start: int
    end: int
    cosine: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start:self.end]


def _candidates(retriever, claim: str, states: Sequence[str]) -> list[_Candidate]:
    signals = retriever.signals(claim, list(states))
    if not signals.allowed.any():
        return []
    out = []
    for passage in retriever.rank(signals, PASSAGES):
        cosines = retriever.sentence_similarities(passage, signals)
        out += [_Candidate(passage, a, b, float(c)) for (a, b), c in zip(passage.sentences, cosines)
                if len(re.findall(r"[A-Za-z]{2,}", passage.text[a:b])) >= 6]  # not a heading or label
    return sorted(out, key=lambda c: -c.cosine)[:CANDIDATES]


def _plan_holds(retriever, state: str, name: str) -> bool:
    lowered = name.lower()
    return any(c.state == state and lowered in c.text.lower() for c in retriever.chunks)


def check_claim(assistant, claim: str, states: Sequence[str] | None = None) -> ClaimCheck:
    scope = scope_question(claim, assistant.states, assistant.tagger, states)
    if scope.nothing_to_search:
        names = ", ".join(state_name(s) for s in scope.missing)
        return ClaimCheck(claim, NOT_FOUND, f"The indexed plans do not include {names}.")
    named = [s for s in scope.named if s not in scope.missing] or list(assistant.states)
    retriever = assistant.retriever
    wanted = details(scope.text)
    where = " or ".join(f"the {state_name(s)} plan" for s in named) if scope.named else "the indexed plans"
    for name in sorted(wanted.names):
        if not any(_plan_holds(retriever, s, name) for s in named):
            elsewhere = [s for s in assistant.states if s not in named and _plan_holds(retriever, s, name)]
            if elsewhere:
                other = _candidates(retriever, claim, elsewhere)
                return ClaimCheck(claim, CONTRADICTED,
                                  f"“{name}” is in the {state_name(elsewhere[0])} plan, not in {where}.",
                                  _cite(other[:1]))
            return ClaimCheck(claim, NOT_FOUND, f"No passage of {where} names “{name}”.")
    close = [c for c in _candidates(retriever, claim, named) if c.cosine >= SAME_POINT]
    if not close:
        other = _wrong_state(assistant, claim, named, wanted) if scope.named else None
        if other is not None:
            return other
        return ClaimCheck(claim, NOT_FOUND, f"No passage of {where} is on this point.")
    for candidate in close:
        ok, _, _ = _holds(wanted, candidate.text) if wanted.any else (candidate.cosine >= SAYS_IT, (), ())
        if ok and _negated(candidate.text) == wanted.negated:
            return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted), _cite([candidate]))
    for candidate in close:  # the detail may sit in the sentence's neighbours
        ok, _, _ = _holds(wanted, candidate.passage.text) if wanted.any else (False, (), ())
        if ok and _negated(_window(candidate)) == wanted.negated:
            return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + " (in the passage around it)",
                              _cite([candidate]))
    best = close[0]
    if wanted.numbers:  # the closest sentence on the point that gives numbers gives other ones
        kinds = {_number_kind(n) for n in wanted.numbers}
        numbered = next((c for c in close if kinds & {_number_kind(n) for n in details(c.text).numbers}), None)
        if numbered is not None:
            theirs = details(numbered.text).numbers
            return ClaimCheck(claim, CONTRADICTED,
                              f"The plan gives {_listed(theirs)} on this point, not {_listed(wanted.numbers)}.",
                              _cite([numbered]))
    if _negated(best.text) != wanted.negated and best.cosine >= SAME_POINT:
        said = "does not say so: it says the opposite" if wanted.negated else "says the opposite"
        return ClaimCheck(claim, CONTRADICTED, f"The plan {said} on this point.", _cite([best]))
    other = _wrong_state(assistant, claim, named, wanted) if scope.named else None
    if other is not None:
        return other
    missing = _holds(wanted, best.passage.text)[1] if wanted.numbers else set()
    detail = f" ({_listed(missing)} is not in it)" if missing else ""
    return ClaimCheck(claim, NOT_FOUND, f"The closest passage of {where} does not say this{detail}.",
                      _cite([best]))


def _wrong_state(assistant, claim: str, named: Sequence[str], wanted: Details) -> ClaimCheck | None:
    """Another state's plan says what the claim pins on `named`: contradicted, citing it."""
    others = [s for s in assistant.states if s not in named]
    if not others:
        return None
    for candidate in _candidates(assistant.retriever, claim, others):
        if candidate.cosine < SAME_POINT:
            break
        ok = _holds(wanted, candidate.text)[0] if wanted.any else candidate.cosine >= SAYS_IT
        if ok and _negated(candidate.text) == wanted.negated:
            return ClaimCheck(claim, CONTRADICTED,
                              f"The {state_name(candidate.passage.state)} plan says this, not the "
                              f"{' or '.join(state_name(s) for s in named)} plan.", _cite([candidate]))
    return None


def check_text(assistant, text: str, states: Sequence[str] | None = None) -> CheckReport:
    return CheckReport(text, tuple(check_claim(assistant, c, states) for c in split_claims(text)))


def _number_kind(value: str) -> str:
    """A year, a percentage or a count: a claim's 25% is contradicted by a 15%, not by a 2030."""
    if value.endswith("%"):
        return "percent"
    return "year" if re.fullmatch(r"(?:19|20)\d\d", value) else "count"


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def _window(candidate: _Candidate) -> str:
    spans = candidate.passage.sentences
    i = next((n for n, (a, _) in enumerate(spans) if a == candidate.start), 0)
    lo, hi = spans[max(i - 1, 0)][0], spans[min(i + 1, len(spans) - 1)][1]
    return candidate.passage.text[lo:hi]


def _supported_reason(wanted: Details) -> str:
    shown = sorted(wanted.numbers) + sorted(wanted.names)
    return ("The plan says this; " + _listed(shown) + " match." if shown else
            "The plan says this in other words.")


def _cite(candidates: Sequence[_Candidate]) -> tuple[Citation, ...]:
    return tuple(make_citation(i + 1, c.passage, c.text, c.start) for i, c in enumerate(candidates))


def _listed(values) -> str:
    values = sorted(values)
    return ", ".join(values[:-1]) + " and " + values[-1] if len(values) > 1 else (values[0] if values else "")


def _place(citation: Citation) -> str:
    from .export import citation_locator

    return citation_locator(citation)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
