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
    anchor = evidence.missing[0] if evidence.missing else evidence.rarest
    topic = topic_phrase(text, evidence.terms, anchor)
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
trains reward rewards push pushes prevent prevents award awards plus
""".split())
# Nouns a topic phrase may run through though they name no topic alone ("school resource officers",
# "student vaping"); at the phrase's right edge they are trimmed like any generic word.
_JOINING = frozenset("school schools student students education state program programs support".split())
_KEPT_ON_LEFT = frozenset("school schools student students".split())
_TRIMMED = _EDGE_VERBS | GENERIC_WORDS


def topic_phrase(text: str, terms: Sequence[TopicalTerm], anchor: TopicalTerm | None) -> str:
    """The question's own words for its topic: the run of topical words around `anchor` (the
    rarest missing term, or with nothing missing the rarest term)."""
    if not terms or anchor is None:
        return ""
    tokens = list(TOKEN_RE.finditer(text))
    topical = {t.position for t in terms}
    index = next((i for i, m in enumerate(tokens) if m.start() == anchor.start), None)
    if index is None:
        return text[anchor.start:anchor.end]

    def inside(i: int) -> bool:
        word = tokens[i].group().lower()
        return i in topical or word in _JOINING or (word.isdigit() and i - 1 in topical)

    first = last = index
    while first > 0 and inside(first - 1) and _adjacent(text, tokens[first - 1], tokens[first]):
        first -= 1
    while last + 1 < len(tokens) and inside(last + 1) and _adjacent(text, tokens[last], tokens[last + 1]):
        last += 1
    while first < index and tokens[first].group().lower() in _TRIMMED - _KEPT_ON_LEFT:
        first += 1
    while last > index and tokens[last].group().lower() in _TRIMMED:
        last -= 1
    return text[tokens[first].start():tokens[last].end()]


def _adjacent(text: str, left: re.Match, right: re.Match) -> bool:
    """Only spaces or a hyphen between two words ("four-day school week"), no punctuation."""
    return bool(re.fullmatch(r"\s*-?\s*|\s+", text[left.end():right.start()]))
