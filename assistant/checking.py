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

import numpy as np


from .answer.compose import make_citation
from .answer.scope import scope_question
from .chunking import sentence_spans
from .export import citation_locator
from .records import Citation, Passage
from .states import STATE_NAMES, state_name
from .terms import TOKEN_RE, stem_words

# A sentence of the plan is on the claim's point at this cosine (all-mpnet-base-v2, stored
# sentence vectors; read off the claim set, eval/claims.jsonl) ...
SAME_POINT = 0.62
# ... and with no detail to compare, says the same thing at this one.
SAYS_IT = 0.80
CANDIDATES = 10  # closest sentences compared per plan
PASSAGES = 8  # passages per plan whose sentences are candidates

SUPPORTED, CONTRADICTED, NOT_FOUND = "supported", "contradicted", "not_found"
_JOINERS = frozenset("of for and the to by in on &".split())

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_ORDINALS = {w: str(i) for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}
# details() runs for every candidate sentence of every claim: its patterns are compiled once.
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_ORDINAL_WORD = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\b", re.I)
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
            where = "; ".join(f"{state_name(x.state)}, {x.source}, {citation_locator(x)}: “{x.quote}”" for x in c.citations)
            out.append(f"| {n} | {_cell(c.claim)} | {c.verdict} | {_cell(c.reason)} | {_cell(where)} |")
        return "\n".join(out) + "\n"


def split_claims(text: str) -> list[str]:
    """The draft's sentences that say something (three words or more), in the order written."""
    flat = " ".join((text or "").split())
    claims = [flat[a:b].strip() for a, b in sentence_spans(flat)]
    return [c for c in claims if len(re.findall(r"[A-Za-z]{2,}", c)) >= 3]


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
    words = _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()], lowered)
    words = _ORDINAL_WORD.sub(lambda m: _ORDINALS[m.group(1).lower()], words)
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
        while words and (words[0] in _NOT_NAMES or _bare(words[0]).lower() in states):
            words.pop(0)
        while words and (words[-1] in _NOT_NAMES or words[-1].lower() in _JOINERS or words[-1].isdigit()):
            words.pop()
        if not words or " ".join(words).lower() in states or len(" ".join(words)) < 2:
            continue
        if m.start() == 0 and len(words) == 1 and words[0] == m.group(0).split()[0] and not words[0].isupper():
            continue  # the sentence's first word is capitalized anyway
        names.add(" ".join(words))
    return Details(frozenset(numbers), frozenset(names), bool(_NEGATION.search(text)))


def _bare(word: str) -> str:
    """A word without its possessive ending: "Massachusetts'" and "Delaware's" are the states."""
    return re.sub(r"(?:['’]s?)$", "", word)


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


def _ranked(retriever, query: str, states: Sequence[str], n: int):
    """The top `n` passages in `states` for `query`, each with its sentences' cosines."""
    signals = retriever.signals(query, list(states))
    if not signals.allowed.any():
        return []
    return [(p, retriever.sentence_similarities(p, signals)) for p in retriever.rank(signals, n)]


def _candidates(retriever, claim: str, states: Sequence[str]) -> list[_Candidate]:
    out = []
    for passage, cosines in _ranked(retriever, claim, states, PASSAGES):
        out += [_Candidate(passage, a, b, float(c)) for (a, b), c in zip(passage.sentences, cosines)
                if len(re.findall(r"[A-Za-z]{2,}", passage.text[a:b])) >= 6]  # not a heading or label
    return sorted(out, key=lambda c: -c.cosine)[:CANDIDATES]


def _plan_holds(retriever, state: str, name: str) -> bool:
    """Whether `state`'s plan names `name`: word stems in a row (plurals, apostrophes and case
    aside), or, for a run with "to" or "and" in it, each part on its own ("MCAS to English" is
    two names a sentence joined, not one)."""
    texts = _stemmed_plans(retriever).get(state, ())
    if _stem_run(name) and any(_stem_run(name) in t for t in texts):
        return True
    # "of", "for" and "by" belong inside names ("Read by Grade 3"); "to", "and", "in" join two.
    parts = [p for p in re.split(r"\s+(?:and|to|in|on|&)\s+", name) if p]
    return len(parts) > 1 and all(any(_stem_run(p) in t for t in texts) for p in parts)


_STEMMED: dict[int, dict[str, tuple[str, ...]]] = {}


def _stemmed_plans(retriever) -> dict[str, tuple[str, ...]]:
    """Each state's chunks as runs of stems, once per retriever (an index generation)."""
    key = id(retriever.chunks)
    if key not in _STEMMED:
        by_state: dict[str, list[str]] = {}
        for chunk in retriever.chunks:
            by_state.setdefault(chunk.state, []).append(_stem_run(chunk.text))
        _STEMMED.clear()  # one generation at a time is enough
        _STEMMED[key] = {state: tuple(texts) for state, texts in by_state.items()}
    return _STEMMED[key]


def _stem_run(text: str) -> str:
    return " " + " ".join(stem_words(TOKEN_RE.findall(text.replace("’", "'").lower()))) + " "


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
    # The model reads "does not" poorly: a negated claim is searched as its positive statement,
    # and polarity is compared in words.
    query = _positive(scope.text) if wanted.negated else scope.text
    close = [c for c in _candidates(retriever, query, named) if c.cosine >= SAME_POINT]
    if not close:
        other = _wrong_state(assistant, query, named, wanted) if scope.named else None
        if other is not None:
            return other
        return ClaimCheck(claim, NOT_FOUND, f"No passage of {where} is on this point.")
    for candidate in close:  # the sentence itself, then with the sentences either side of it
        for context, note in ((candidate.text, ""), (_window(candidate), " (with the sentences around it)")):
            holds = _holds(wanted, context)[0] if wanted.any else (not note and candidate.cosine >= SAYS_IT)
            if not holds:
                continue
            if _negated(candidate.text) == wanted.negated:
                return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + note, _cite([candidate]))
            if wanted.negated:  # "does not" against a plan that says it does
                return ClaimCheck(claim, CONTRADICTED, "The plan says it does.", _cite([candidate]))
            # A "not" in the plan's sentence may belong to another clause: not evidence either way.
    if wanted.numbers:
        # The passages ranked first for the claim, as wholes (tables state numbers in rows, not
        # sentences): one holding every detail supports it.
        for passage, sentence in _top_passages(retriever, query, named):
            if _holds(wanted, passage.text)[0] and _negated(sentence.text) == wanted.negated:
                return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + " (in the passage)",
                                  _cite([sentence]))
        # The closest sentence on the point that gives numbers of the claim's kind (a year, a
        # percentage, a count) gives none of the claim's: another value.
        kinds = {_number_kind(n) for n in wanted.numbers}
        for candidate in close:
            theirs = {n for n in details(candidate.text).numbers if _number_kind(n) in kinds}
            if not theirs:
                continue
            if not theirs & wanted.numbers:
                return ClaimCheck(claim, CONTRADICTED,
                                  f"The plan gives {_listed(theirs)} on this point, not "
                                  f"{_listed(n for n in wanted.numbers if _number_kind(n) in kinds)}.",
                                  _cite([candidate]))
            break
    best = close[0]
    other = _wrong_state(assistant, query, named, wanted) if scope.named else None
    if other is not None:
        return other
    missing = _holds(wanted, _window(best))[1] if wanted.numbers else set()
    detail = f" ({_listed(missing)} is not in it)" if missing else ""
    return ClaimCheck(claim, NOT_FOUND, f"The closest passage of {where} does not say this{detail}.",
                      _cite([best]))


def _top_passages(retriever, query: str, states: Sequence[str], n: int = 3):
    """(passage, its sentence closest to the claim) for the top `n` passages in `states`."""
    out = []
    for passage, cosines in _ranked(retriever, query, states, n):
        if len(cosines):
            i = int(np.argmax(cosines))
            a, b = passage.sentences[i]
            out.append((passage, _Candidate(passage, a, b, float(cosines[i]))))
    return out


def _positive(text: str) -> str:
    """The claim without its negation: "Nevada does not use letter grades" -> "Nevada use letter grades"."""
    text = re.sub(r"\b(?:does|do|did|will|would|is|are|was|were|has|have)\s+(?:not|never)\b|\b\w+n't\b",
                  " ", text, flags=re.I)
    return " ".join(_NEGATION.sub(" ", text).split())


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


def _window(candidate: _Candidate, width: int = 2) -> str:
    """The candidate sentence with `width` sentences of its passage either side."""
    spans = candidate.passage.sentences
    i = next((n for n, (a, _) in enumerate(spans) if a == candidate.start), 0)
    lo, hi = spans[max(i - width, 0)][0], spans[min(i + width, len(spans) - 1)][1]
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


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
