"""Claim checking: a paragraph from a draft, split into claims, each judged against the plans.

For each claim (a sentence of the draft):
1. scope: the states it names (or the caller's --state); a state not indexed is "not found";
2. evidence: the closest stored sentences of that state's plan (the sentence vectors written at
   index time; only the claim is embedded) and, for a claim pinned on the wrong state, of the
   other indexed plans;
3. details: what must match exactly: numbers (percentages, years, counts, grades, fractions;
   number words read as digits; a plan's 73.55% is a draft's 73.6%), what a count counts
   ("90 clock hours"), names (capitalized runs, acronyms, quoted titles) and negation ("not",
   "leave ... out", "exclude"; "no less than" is a bound, not a negation);
4. verdict: "supported" when a close sentence holds every detail with the same polarity, or its
   passage read a few rows at a time, or two close sentences together hold every number;
   "contradicted" when the sentence on the same point gives another value of a number (a count
   of the same thing, a year, a percentage), says it does where the claim says it does not, or
   another state's plan is the one that says it (which also overrides a support pieced together
   from more than one sentence); "not_found" when nothing close enough is in the plan, or a name
   in the claim is in no passage of it. The template's own questions are never evidence.
The supporting (or contradicting) sentence is cited as an answer cites its quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np


from .answer.compose import make_citation
from .answer.scope import scope_question
from .chunking import sentence_spans
from .export import citation_locator, version_note
from .ingest import text_kind
from .records import TEMPLATE, TOC, Citation, Passage
from .states import STATE_NAMES, state_name
from .terms import TOKEN_RE, stem_words
from .verify import LEXICAL_BAR, content_words

# A sentence of the plan is on the claim's point at this cosine (all-mpnet-base-v2, stored
# sentence vectors; read off the claim set, eval/claims.jsonl) ...
SAME_POINT = 0.62
# ... and with no detail to compare, says the same thing at this one.
SAYS_IT = 0.80
CANDIDATES = 10  # closest sentences compared per plan
PASSAGES = 8  # passages per plan whose sentences are candidates
ROWS = 4  # sentences or table rows read together when a passage's numbers are compared

SUPPORTED, CONTRADICTED, NOT_FOUND = "supported", "contradicted", "not_found"
_JOINERS = frozenset("of for and the to by in on &".split())

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_ORDINALS = {w: str(i) for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}
# Fractions are values too ("reduce the gap by one-third"), written N/M. A claim's "half" is
# not matched by a plan's "50%": the same value in other words stays unconfirmed, never wrong.
_FRACTIONS = {"half": "1/2", "third": "1/3", "thirds": "2/3", "quarter": "1/4", "quarters": "3/4",
              "fourth": "1/4", "fifth": "1/5"}
_FRACTION_WORD = re.compile(r"\b(?:(?:one|a)[- ](half|third|quarter|fourth|fifth)|(two)[- ](thirds)|"
                            r"(three)[- ](quarters)|in (half))\b(?![- ]grade)", re.I)
# details() runs for every candidate sentence of every claim: its patterns are compiled once.
# The word a count counts: the next word, past a hyphen ("5-year") and little words ("of the").
_UNIT = re.compile(r"[\s-]*(?:(?:of|the|a|an|or|and|to|for|in|on|by|at|from|each|more|additional|total|new|"
                   r"full|per)\s+)*(?!(?:and|or|of|the|to|for|in|on|by|at|from|per)\b)([A-Za-z]{3,})")
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1000}
_SPELLED = "|".join([*_NUMBER_WORDS, *_TENS, *_SCALES])
_MONEY_SCALE = re.compile(r"\s*(million|billion|thousand|[MBK])\b", re.I)
# "twenty-seven", "four hundred and eight": one number, not 20 and 7.
_NUMBER_WORD = re.compile(rf"\b(?:{_SPELLED})(?:[- ](?:{_SPELLED})|(?<=hundred)\s+and\s+(?:{_SPELLED}))*\b", re.I)
_ORDINAL_WORD = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(%|percent\b))?", re.I)
_ORDINAL_DIGITS = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I)
_NEGATION = re.compile(r"(?!\b(?:not|no) (?:less|more|fewer|later|earlier|greater|lower|higher) than\b)"
                       r"\b(?:not|no(?!\.?\s*\d)|never|none|neither|nor|without|cannot|n't)\b|n't\b|"
                       # saying "not" without the word: "leave X out of", "exclude", "no longer"
                       r"\bleav(?:e|es|ing)\b[^.;]{0,60}?\bout\b|\b(?:exclud|omit|eliminat)\w*|"
                       r"\b(?:drop|drops|dropped|dropping)\b(?!\s*out)", re.I)
_PROMPT = re.compile(r"(?:If (?:yes|no|so|applicable)\b|(?:Does|Do|Is|Are|Will|Has|Have) the (?:State|SEA|LEA)s?\b)")
_QUOTED = re.compile(r"(?<!\w)[“\"‘']([^“”\"‘’']{3,80}?)[”\"’'](?!\w)")
_NAME = re.compile(r"\b(?:[A-Z][A-Za-z0-9&'’-]*|[A-Z]{2,})(?:\s+(?:of|for|and|the|to|by|in|on|&)?\s*"
                   r"(?:[A-Z][A-Za-z0-9&'’-]*|[A-Z]{2,}|\d+))*")
# Capitalized words that are not names of anything the plans could be checked for.
_NOT_NAMES = frozenset("""
The A An This That These Those It Its In On At By For From With Under Over After Before During Each
Every All Some Most Many Both State States Plan Plans Its Their Our We They He She ESSA Every Student
Succeeds Act Department Education School Schools Students Student Teachers Teacher However Also
Only Through Across Since While When Where Although Because Unlike Like If Once Until Just About
Nearly Almost Roughly More Less Fewer Up Out Of As Beginning Starting According Currently Today
Within Between Among Including
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
            where = "; ".join(f"{state_name(x.state)}, {x.source}{version_note(x)}, {citation_locator(x)}: “{x.quote}”" for x in c.citations)
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
    # (count, the word it counts): "90 clock hours" -> ("90", "clock"); what makes two counts
    # values of the same thing. Years, percentages and fractions carry their kind instead.
    units: frozenset[tuple[str, str]] = frozenset()

    @property
    def any(self) -> bool:
        return bool(self.numbers or self.names)


def details(text: str) -> Details:
    """What must match exactly in `text`: its numbers (digits, percentages as "N%", fractions as
    "N/M", spelled numbers read as digits), what each count counts, its names, and negation."""
    numbers = set()

    def fraction(m: re.Match) -> str:
        word = next(g for g in m.groups()[::-1] if g and g.lower() not in ("two", "three"))
        numbers.add(_FRACTIONS[word.lower()])
        return " "

    lowered = _ORDINAL_DIGITS.sub(r"\1", _FRACTION_WORD.sub(fraction, text))
    words = _NUMBER_WORD.sub(_spelled_number, lowered)
    words = _ORDINAL_WORD.sub(lambda m: _ORDINALS[m.group(1).lower()], words)
    units = set()
    for m in _NUMBER.finditer(words):
        value = m.group(1).replace(",", "")
        value = value[:-2] if value.endswith(".0") else value
        numbers.add(value + ("%" if m.group(2) else ""))
        if words[max(m.start() - 1, 0):m.start()] == "$":  # "$50M" and "$50 million" alike
            scale = _MONEY_SCALE.match(words, m.end())
            units.add((value, "$" + (scale.group(1)[0].lower() if scale else "")))
            continue
        unit = _UNIT.match(words, m.end())
        if unit and not m.group(2):
            units.add((value, unit.group(1).lower().rstrip("s")[:6]))
    names = set()
    states = {s.lower() for s in STATE_NAMES.values()}
    # "English learners" is a group of students, not a name to find ("English" alone is one).
    for m in _NAME.finditer(re.sub(r"\bEnglish(?= (?:language )?learners?\b)", "english", text)):
        words = m.group(0).split()
        # Trimmed at the edges only: "Bay State Robotics Academy" keeps its "State".
        while words and (words[0] in _NOT_NAMES or _bare(words[0]).lower() in states or
                         words[0].lower() in _JOINERS or words[0].isdigit()):
            words.pop(0)
        while words and (words[-1] in _NOT_NAMES or words[-1].lower() in _JOINERS or words[-1].isdigit()):
            words.pop()
        if not words or " ".join(words).lower() in states or len(" ".join(words)) < 2:
            continue
        if m.start() == 0 and len(words) == 1 and words[0] == m.group(0).split()[0] and not words[0].isupper():
            continue  # the sentence's first word is capitalized anyway
        names.add(" ".join(words))
    for m in _QUOTED.finditer(text):  # a quoted title names something, capitals or not
        if len(m.group(1).split()) >= 2:
            names.add(m.group(1).strip())
    return Details(frozenset(numbers), frozenset(names), bool(_NEGATION.search(text)), frozenset(units))


def _spelled_number(m: re.Match) -> str:
    """"twenty-seven" -> "27", "four hundred and eight" -> "408", "six" -> "6"."""
    total = current = 0
    for word in re.split(r"[- ]+(?:and\s+)?|\s+and\s+", m.group(0).lower()):
        if word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        elif word in _TENS:
            current += _TENS[word]
        elif word in _NUMBER_WORDS:
            current += int(_NUMBER_WORDS[word])
    return str(total + current)


def _bare(word: str) -> str:
    """A word without its possessive ending: "Massachusetts'" and "Delaware's" are the states."""
    return re.sub(r"(?:['’]s?)$", "", word)


def _holds(claim: Details, text: str, names_in: str | None = None) -> tuple[bool, set[str], set[str]]:
    """(every detail of the claim in `text`, numbers missing, names missing). Names may be looked
    for in a wider text (`names_in`, the whole passage): they set the topic; the numbers must be
    in `text` itself."""
    found = details(text)
    plain = {n.rstrip("%") for n in found.numbers}
    missing_numbers = {n for n in claim.numbers if n not in found.numbers and n.rstrip("%") not in plain
                       and not any(_rounds_to(p, n) for p in found.numbers)}
    lowered = _flat(text if names_in is None else names_in)
    missing_names = {n for n in claim.names if _flat(n) not in lowered
                     and not all(_flat(part) in lowered for part in _name_parts(n))}
    return not missing_numbers and not missing_names, missing_numbers, missing_names


def _rounds_to(value: str, claimed: str) -> bool:
    """The plan's 73.55% is the claim's 73.6%: the same value at the claim's precision (a
    draft rounds; a changed value does not round to the plan's)."""
    if value.endswith("%") != claimed.endswith("%") or "/" in value + claimed:
        return False
    value, claimed = value.rstrip("%"), claimed.rstrip("%")
    decimals = len(claimed.partition(".")[2])
    if len(value.partition(".")[2]) <= decimals:
        return False
    step = Decimal(1).scaleb(-decimals)
    return Decimal(value).quantize(step, rounding=ROUND_HALF_UP) == Decimal(claimed)


def _flat(text: str) -> str:
    """Lower case, one kind of dash and apostrophe, single spaces: how names are compared."""
    return " ".join(re.sub(r"[‐‑‒–—]", "-", text.replace("’", "'")).lower().split())


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
    """The top `n` passages in `states` for `query`, each with its sentences' cosines. The
    template's own text (the Department's questions, "Does the State ...?") and tables of
    contents say nothing about the state: a claim is checked against what the state wrote."""
    signals = retriever.signals(query, list(states))
    if not signals.allowed.any():
        return []
    ranked = [p for p in retriever.rank(signals, 2 * n) if p.kind not in (TEMPLATE, TOC)][:n]
    return [(p, retriever.sentence_similarities(p, signals)) for p in ranked]


def _candidates(retriever, claim: str, states: Sequence[str]) -> list[_Candidate]:
    out = []
    for passage, cosines in _ranked(retriever, claim, states, PASSAGES):
        out += [_Candidate(passage, a, b, float(c)) for (a, b), c in zip(passage.sentences, cosines)
                if len(re.findall(r"[A-Za-z]{2,}", passage.text[a:b])) >= 6  # not a heading or label
                and not _is_prompt(passage.text[a:b])]
    return sorted(out, key=lambda c: -c.cosine)[:CANDIDATES]


def _is_prompt(sentence: str) -> bool:
    """A sentence of the template's questions quoted inside the state's answer ("Does the State
    administer ...?", "If yes, describe ..."): it asks, it does not say."""
    return sentence.rstrip().endswith("?") or bool(_PROMPT.match(sentence)) or text_kind(sentence) == TEMPLATE


def _plan_holds(retriever, state: str, name: str) -> bool:
    """Whether `state`'s plan names `name`: word stems in a row (plurals, apostrophes and case
    aside), or, for a run with "to" or "and" in it, each part on its own ("MCAS to English" is
    two names a sentence joined, not one)."""
    texts = _stemmed_plans(retriever).get(state, ())
    run = _stem_run(name)
    if run.strip() and any(run in t for t in texts):
        return True
    if len(TOKEN_RE.findall(name)) < len(re.findall(r"\w+", name)):
        # Parts too short for the index's tokens ("K-2", "P-3"): the text itself.
        flat = _flat(name)
        return any(flat in _flat(c.text) for c in retriever.chunks if c.state == state)
    parts = _name_parts(name)
    return len(parts) > 1 and all(any(_stem_run(p) in t for t in texts) for p in parts)


def _name_parts(name: str) -> list[str]:
    """"MCAS to English" -> ["MCAS", "English"]: "of", "for" and "by" belong inside names ("Read
    by Grade 3"); "to", "and", "in", "on" join two (a run of capitals the sentence joined)."""
    parts = [p for p in re.split(r"\s+(?:and|to|in|on|&)\s+", name) if p]
    return parts if len(parts) > 1 else []


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
            # With no detail to match, a sentence on the point holding most of the claim's words
            # is enough to contradict a "does not" (the plan says it does); to support a claim
            # the sentence must say it (SAYS_IT): read that way for support too, one altered
            # claim more was judged supported on the claim set, and no faithful one gained.
            holds = _holds(wanted, context, candidate.passage.text)[0] if wanted.any else \
                not note and _says(query, candidate, lexical=True)
            if not holds:
                continue
            if _negated(candidate.text) == wanted.negated:
                # Names alone set the topic, not what is said about it: a claim with no number
                # to match is supported where the sentence says it, as one with no detail.
                if not wanted.numbers and (note or not _says(query, candidate)):
                    continue
                found = ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + note, _cite([candidate]))
                strong = not note and (not wanted.any or _holds(wanted, candidate.text)[0])
                return found if strong else _unless_elsewhere(assistant, scope, query, named, wanted, found)
            if wanted.negated:  # "does not" against a plan that says it does
                return ClaimCheck(claim, CONTRADICTED, "The plan says it does.", _cite([candidate]))
            # A "not" in the plan's sentence may belong to another clause: not evidence either
            # way (read as a contradiction it turned faithful claims on the claim set into
            # "contradicted": a "no" of a clause beside the point).
    if wanted.numbers:
        found = _numbers_verdict(claim, retriever, query, named, wanted, close)
        if found is not None:
            return found if found.verdict != SUPPORTED else \
                _unless_elsewhere(assistant, scope, query, named, wanted, found)
    best = close[0]
    other = _wrong_state(assistant, query, named, wanted) if scope.named else None
    if other is not None:
        return other
    missing = _holds(wanted, _window(best))[1] if wanted.numbers else set()
    detail = f" ({_listed(missing)} is not in it)" if missing else ""
    return ClaimCheck(claim, NOT_FOUND, f"The closest passage of {where} does not say this{detail}.",
                      _cite([best]))


def _says(query: str, candidate: _Candidate, lexical: bool = False) -> bool:
    """The sentence says what the claim says: nearly the same meaning (SAYS_IT), or on the point
    and holding most of the claim's content words (the verifier's bar for a model's sentence)."""
    if candidate.cosine >= SAYS_IT:
        return True
    if not lexical:
        return False
    words = content_words(query)
    return len(words & content_words(candidate.text)) / max(len(words), 1) >= LEXICAL_BAR


def _unless_elsewhere(assistant, scope, query: str, named: Sequence[str], wanted: Details,
                      found: ClaimCheck) -> ClaimCheck:
    """A support pieced together (the sentences around, the passage, two sentences) gives way
    to another state's plan saying the claim in one sentence: the claim has the wrong state.
    (Plans share much, and two states can both exit English learners at 5.0; asking the other
    sentence to be at SAYS_IT kept two such faithful claims but let three wrong-state claims
    through on the claim sets: the error that matters more here.)"""
    other = _wrong_state(assistant, query, named, wanted) if scope.named else None
    return found if other is None else other


def _numbers_verdict(claim: str, retriever, query: str, named: Sequence[str], wanted: Details,
                     close: Sequence[_Candidate]) -> ClaimCheck | None:
    """Where no one sentence holds every detail: the claim's numbers in a passage, in two
    sentences on the point, or another value where the plan gives this one. The names were
    found in the plan already; here only the numbers are compared."""
    numbers = Details(wanted.numbers, frozenset(), wanted.negated)
    if len(wanted.numbers) == 1 and close:
        # One value, and the closest sentence on the point gives another of its kind: that
        # outweighs the value turning up somewhere in a passage (a table of interim years).
        theirs, ours, _ = _other_values(wanted, details(close[0].text), set(wanted.numbers))
        if theirs and not _holds(numbers, _window(close[0]))[0]:
            return ClaimCheck(claim, CONTRADICTED,
                              f"The plan gives {_listed(theirs)} on this point, not {_listed(ours)}.",
                              _cite([close[0]]))
    # The passages ranked first for the claim, read a few sentences (or table rows) at a time:
    # tables state numbers in rows, not sentences. A small count (1-12: grades, years, steps) is
    # in most passages: it alone confirms nothing.
    # The small counts may be anywhere in the passage or its section's title ("Four-year
    # adjusted cohort graduation rate" heads the table whose rows give the rates).
    rare = Details(frozenset(filter(_distinctive, wanted.numbers)), frozenset(), wanted.negated)
    common = Details(wanted.numbers - rare.numbers, frozenset(), wanted.negated)
    if rare.numbers:
        for passage, sentence in _top_passages(retriever, query, named, PASSAGES):
            if sentence.cosine >= SAME_POINT and _negated(sentence.text) == wanted.negated \
                    and _holds(common, passage.section + "\n" + passage.text)[0] \
                    and any(_holds(rare, run)[0] for run in _runs(passage, ROWS)):
                return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + " (in the passage)",
                                  _cite([sentence]))
    # A claim may join two statements of the plan: two sentences on the point, each holding
    # some of its numbers and together all of them.
    holding = [(c, wanted.numbers - _holds(numbers, _window(c))[1]) for c in close
               if _negated(c.text) == wanted.negated]
    for i, (first, theirs) in enumerate(holding):
        for second, more in holding[i + 1:]:
            if theirs | more == wanted.numbers and any(map(_distinctive, theirs - more)) \
                    and any(map(_distinctive, more - theirs)):
                return ClaimCheck(claim, SUPPORTED, _supported_reason(wanted) + " (in two sentences)",
                                  _cite([first, second]))
    # The sentence on the point gives another value of a number that no sentence on the point
    # holds: a count of the same thing ("90 clock hours" for "120 clock hours"), a year or a
    # percentage. With several numbers, the sentence must also hold one of the claim's that few
    # passages share, or two of them (it is about the same thing).
    held = set().union(*(theirs for _, theirs in holding)) if holding else set()
    for candidate in close:
        missing = _holds(numbers, candidate.text)[1]
        theirs, ours, counted = _other_values(wanted, details(candidate.text), missing - held)
        if not theirs:
            continue
        shared = wanted.numbers - missing
        if counted or len(wanted.numbers) == 1 or len(shared) > 1 or any(map(_distinctive, shared)):
            return ClaimCheck(claim, CONTRADICTED,
                              f"The plan gives {_listed(theirs)} on this point, not {_listed(ours)}.",
                              _cite([candidate]))
    return None


def _other_values(wanted: Details, found: Details, missing: set[str]) -> tuple[set[str], set[str], bool]:
    """(the values `found` gives, the claim's values they replace, whether one is a count of the
    same thing) for the claim's `missing` numbers: a count against counts of the same thing, a
    year or percentage against its kind."""
    theirs, ours, counted = set(), set(), False
    for n in missing:
        kind = _number_kind(n)
        unit = next((u for v, u in wanted.units if v == n), None) if kind == "count" else None
        others = {v for v, u in found.units if u == unit} - wanted.numbers if unit else set()
        if "/" in n:  # a fraction against the plan's fraction: "one-third", not "half"
            others = {v for v in found.numbers if "/" in v} - wanted.numbers
        counted |= bool(others)
        if not others:  # no count of the same thing: any value of the kind
            others = {v for v in found.numbers if _number_kind(v) == kind}
        others -= wanted.numbers
        if others:
            theirs |= others
            ours.add(n)
    return theirs, ours, counted


def _top_passages(retriever, query: str, states: Sequence[str], n: int):
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
    # "leave X out of Y" -> "include X in Y"; "exclude X" -> "include X": the object stays.
    text = re.sub(r"\bleav(?:e|es|ing)\b([^.;]{0,60}?)\bout(?:\s+of)?\b", r"include\1in", text, flags=re.I)
    text = re.sub(r"\b(?:exclud|omit|eliminat)\w*", "include", text, flags=re.I)
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
    if value.endswith("%") or "/" in value:
        return "percent"
    return "year" if re.fullmatch(r"(?:19|20)\d\d", value) else "count"


def _runs(passage: Passage, width: int):
    """The passage's text `width` sentences at a time, each window starting one sentence on."""
    spans = passage.sentences or [(0, len(passage.text))]
    for i in range(max(len(spans) - width + 1, 1)):
        yield passage.text[spans[i][0]:spans[min(i + width, len(spans)) - 1][1]]


def _distinctive(value: str) -> bool:
    """A year, a percentage, a fraction or a count above 12: a value few passages share."""
    return _number_kind(value) != "count" or float(value) > 12


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
