"""Stage 4, the decision: answer or say the plans are silent, one calibrated decision per group.

A fitted model (`essa-qa fit`, cross-validated on the eval set) reads the evidence features: how
close the best sentence and passage are, the second stage's confidence, how much of the
question's topic the top passages hold and how rare what is missing is. Without a model fitted
for the index's embedder, a fixed rule stands in (the cosine bar and the absent-topic check).

An abstention names the topic in the question's own words: the phrase around its rarest missing
term ("school resource officers"), never a list of stray words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..learning import LinearModel
from ..terms import GENERIC_WORDS, TOKEN_RE, TopicalTerm
from .evidence import DECISION_FEATURES, Evidence

# The rule without a fitted model: below the embedder's cosine bar nothing counts, and a topic
# missing from every passage decides when the closest passage is not close enough to outweigh it.
TOPIC_BAR_RATIO = 1.15
TOPIC_COVERAGE_BAR = 0.34


@dataclass(frozen=True)
class DecisionModel:
    model: LinearModel
    threshold: float  # answer when the probability that the plans answer it reaches this

    def to_table(self) -> dict:
        return {**self.model.to_table(), "threshold": round(self.threshold, 6)}

    @classmethod
    def from_table(cls, table: dict) -> "DecisionModel":
        model = LinearModel.from_table(table)
        unknown = sorted(set(model.features) - set(DECISION_FEATURES))
        if unknown:
            raise ValueError(f"decision features unknown to this version: {', '.join(unknown)}")
        return cls(model, float(table["threshold"]))


@dataclass(frozen=True)
class Decision:
    group: str
    answer: bool
    probability: float | None  # from the fitted model; None under the fallback rule
    topic: str  # the topic in the question's words ("" when it has no topical words)

    def reason(self, where: str = "The indexed plans") -> str:
        if self.topic:
            return f"{where} do not appear to address {self.topic}."
        return f"{where} hold no passage close enough to answer this question."


def decide(evidence: Evidence, text: str, model: DecisionModel | None, bar: float) -> Decision:
    """`text` is the question as searched (Scope.text); `bar` the embedder's fallback cosine bar."""
    topic = topic_phrase(text, evidence.terms, topic_anchor(text, evidence))
    if not evidence.passages:
        return Decision(evidence.group, False, 0.0 if model else None, topic)
    if model is not None:
        row = evidence.feature_row(model.model.features)
        probability = float(model.model.probability(row[None, :])[0])
        return Decision(evidence.group, probability >= model.threshold, round(probability, 4), topic)
    f = evidence.features
    close = f["best_dense"] >= bar or (f["phrase"] and f["best_dense"] >= 0.85 * bar)
    absent = (f["rarest_missing"] and f["coverage"] < TOPIC_COVERAGE_BAR
              and f["best_dense"] < TOPIC_BAR_RATIO * bar)
    return Decision(evidence.group, bool(close and not absent), None, topic)


# Verbs at the edge of a phrase say what is asked, not what about: "create private school vouchers".
_EDGE_VERBS = frozenset("""
create creates require requires required fund funds funded allow allows allowed offer offers give
gives put puts run runs keep keeps start starts need needs want wants take takes set sets ensure
ensures hand hands earn earns pay pays doing done plan plans expand expands teach teaches train
trains reward rewards push pushes prevent prevents award awards plus hold holds expanding creating
requiring offering pushing
""".split())
# Nouns a topic phrase may run through though they name no topic alone ("school resource officers",
# "student vaping"); at the phrase's right edge they are trimmed like any generic word.
_JOINING = frozenset("school schools student students education state program programs support".split())
_KEPT_ON_LEFT = frozenset("school schools student students".split())
_TRIMMED = _EDGE_VERBS | GENERIC_WORDS
# Words that count or sort what follows "of": the topic is what is counted ("minutes of recess").
_MEASURES = frozenset("minutes hours days number numbers amount amounts percent share kinds kind types type "
                      "rules rule use uses role roles level levels".split())


def topic_anchor(text: str, evidence: Evidence) -> TopicalTerm | None:
    """The word the topic is named around: the rarest missing term that names a thing; else, when
    only verbs are missing ("reward", "earn"), a phrase no passage holds ("National Board"
    certification: each word is in the plan, the phrase is not); else the rarest term."""
    def word(term: TopicalTerm) -> str:
        return text[term.start:term.end].lower()

    things = [t for t in evidence.missing if word(t) not in _EDGE_VERBS]
    if things:
        return things[0]
    named = [pair for pair in evidence.absent_phrases if not {word(t) for t in pair} & _EDGE_VERBS]
    if named:
        return named[0][0]
    return evidence.missing[0] if evidence.missing else evidence.rarest


def topic_phrase(text: str, terms: Sequence[TopicalTerm], anchor: TopicalTerm | None) -> str:
    """The question's own words for its topic: the run of topical words around `anchor` (the
    rarest missing term, or with nothing missing the rarest term). A hyphenated word stays whole
    ("grow-your-own"), "of" joins two topical words ("seal of biliteracy"), and a verb inside the
    run ends it ("teachers earn tenure" -> "tenure")."""
    if not terms or anchor is None:
        return ""
    tokens = list(TOKEN_RE.finditer(text))
    topical = {t.position for t in terms}
    index = next((i for i, m in enumerate(tokens) if m.start() == anchor.start), None)
    if index is None:
        return text[anchor.start:anchor.end]

    def word(i: int) -> str:
        return tokens[i].group().lower()

    def hyphen(i: int, j: int) -> bool:
        return text[tokens[i].end():tokens[j].start()] == "-"

    def joins(i: int, j: int) -> bool:
        """Token j may join the run next to token i."""
        if hyphen(min(i, j), max(i, j)):
            return True
        if not _adjacent(text, tokens[min(i, j)], tokens[max(i, j)]):
            return False
        if word(j) == "of":  # "seal of biliteracy"; not "minutes of recess"
            beyond = j + (j - i)
            measure = word(min(i, beyond)) in _MEASURES if 0 <= beyond < len(tokens) else True
            return i in topical and 0 <= beyond < len(tokens) and beyond in topical and not measure
        return j in topical or word(j) in _JOINING or (word(j).isdigit() and j - 1 in topical)

    first = last = index
    while first > 0 and joins(first, first - 1):
        first -= 1
    while last + 1 < len(tokens) and joins(last, last + 1):
        last += 1
    # A verb inside the run starts a clause about the topic, not the topic.
    for i in range(index - 1, first - 1, -1):
        if word(i) in _EDGE_VERBS and not hyphen(i, i + 1):
            first = i + 1
            break
    for i in range(index + 1, last + 1):
        if word(i) in _EDGE_VERBS and not hyphen(i - 1, i):
            last = i - 1
            break
    while first < index and word(first) in _TRIMMED - _KEPT_ON_LEFT and not hyphen(first, first + 1):
        first += 1
    while last > index and (word(last) in _TRIMMED or word(last) == "of") and not hyphen(last - 1, last):
        last -= 1
    return text[tokens[first].start():tokens[last].end()]


def _adjacent(text: str, left: re.Match, right: re.Match) -> bool:
    """Only spaces or a hyphen between two words ("four-day school week"), no punctuation."""
    return bool(re.fullmatch(r"\s*-?\s*|\s+", text[left.end():right.start()]))
