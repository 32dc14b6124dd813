"""Stage 5, composition: an extractive answer whose every sentence is copied verbatim from a
cited passage, so each claim can be checked against the plan at the cited page (or paragraph).

Sentences are chosen by relevance (a fitted model over the stored sentence cosine, the question's
words in the sentence and the passage's own standing; a fixed mix without one) and diversity
(MMR over the stored sentence vectors), from the groups the decision answers. No language model
is needed; `answer_from_checked` turns a verified model reply into the same Answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..chunking import sentence_spans
from ..ingest import LEADING_BULLET, heading_level, text_kind
from ..learning import LinearModel
from ..records import RESPONSE, Answer, CategoryEvidence, Citation, Passage
from ..states import state_name
from ..tagging import CategoryTagger
from .decision import Decision
from .evidence import Evidence, Sentence
from .scope import Scope

MAX_SENTENCES = 5
MIN_SENTENCES = 3
PER_STATE_SENTENCES = 3
PER_PASSAGE_SENTENCES = 2  # an answer draws on several passages, not one passage's neighbours
MMR_LAMBDA = 0.7
NEAR_DUPLICATE = 0.92
SENTENCE_FEATURES = ("cosine", "overlap", "passage_relevance", "passage_sentence", "passage_rank",
                     "best_in_passage")
# Without a fitted sentence model: relevance = cosine + these nudges (read off eval answers), and a
# sentence is kept when its cosine reaches SENTENCE_BAR x the embedder's bar and its relevance is
# within RELEVANCE_MARGIN of the best sentence's.
LEXICAL_WEIGHT = 0.25
PASSAGE_WEIGHT = 0.3
RANK_PENALTY = 0.02
SENTENCE_BAR = 0.6
RELEVANCE_MARGIN = 0.2


@dataclass(frozen=True)
class SentenceModel:
    """P(a sentence belongs in the answer); kept when it reaches `threshold` (the best always is)."""

    model: LinearModel
    threshold: float

    def to_table(self) -> dict:
        return {**self.model.to_table(), "threshold": round(self.threshold, 6)}

    @classmethod
    def from_table(cls, table: dict) -> "SentenceModel":
        return cls(LinearModel.from_table(table), float(table["threshold"]))


def sentence_features(evidence: Evidence) -> np.ndarray:
    """One row per sentence of `evidence`, columns SENTENCE_FEATURES."""
    best: dict[int, float] = {}
    for s in evidence.sentences:
        best[s.passage] = max(best.get(s.passage, -1.0), s.cosine)
    return np.array([[s.cosine, s.overlap, evidence.passages[s.passage].relevance or 0.0,
                      evidence.passages[s.passage].sentence_similarity, float(s.passage),
                      float(s.cosine >= best[s.passage])] for s in evidence.sentences],
                    dtype=np.float64).reshape(len(evidence.sentences), len(SENTENCE_FEATURES))


def compose(scope: Scope, evidence: Sequence[Evidence], decisions: Sequence[Decision],
            tagger: CategoryTagger, model: SentenceModel | None, bar: float) -> Answer:
    """An extractive answer; one section per state when the scope answers state by state."""
    citations: list[Citation] = []
    sections: list[tuple[str, str]] = []
    budget = PER_STATE_SENTENCES if scope.per_state else MAX_SENTENCES
    for group, decision in zip(evidence, decisions):
        chosen = select_sentences(group, budget, model, bar) if decision.answer else []
        body = _cite(chosen, group, citations)
        if scope.per_state:
            name = state_name(group.group)
            sections.append((group.group, body or decision.reason(f"The {name} plan").replace(
                "do not appear", "does not appear").replace("hold no", "holds no")))
        elif body:
            sections.append(("", body))
    if not citations:
        topic = next((d for d in decisions if d.topic), decisions[0] if decisions else None)
        reason = topic.reason() if topic else "No passage in the indexed plans is relevant enough to answer this."
        return abstain(scope.question, scope.answer_states, reason, closest_passages(evidence))
    text = "\n\n".join(f"**{state_name(s)}:** {b}" if s else b for s, b in sections)
    found = category_evidence(citations, tagger, scope.text)
    return Answer(question=scope.question, states=scope.answer_states, abstained=False, reason=None,
                  answer=text, categories=tuple(dict.fromkeys(e.category for e in found)),
                  citations=tuple(citations), evidence=tuple(found), sections=tuple(sections))


def select_sentences(evidence: Evidence, budget: int, model: SentenceModel | None,
                     bar: float) -> list[Sentence]:
    """Relevant, diverse, readable sentences (MMR over the stored sentence vectors).

    A sentence must clear a relevance bar of its own: a relevant passage often holds sentences on
    another topic, and those would read as off-topic padding.
    """
    readable = [i for i, s in enumerate(evidence.sentences) if is_readable_sentence(s.text)]
    if not readable:
        return []
    sentences = [evidence.sentences[i] for i in readable]
    vectors = evidence.vectors[readable]
    if model is not None:
        probability = model.model.probability(sentence_features(evidence)[readable])
        relevance = probability
        eligible = probability >= min(model.threshold, float(probability.max()))
        later = eligible
    else:
        cosine = np.array([s.cosine for s in sentences])
        # Sentence cosine alone is noisy for short sentences: the passage's own similarity and the
        # question's words in the sentence steady it; earlier passages were ranked higher.
        relevance = (cosine + LEXICAL_WEIGHT * np.array([s.overlap for s in sentences])
                     + PASSAGE_WEIGHT * np.array([evidence.passages[s.passage].similarity for s in sentences])
                     - RANK_PENALTY * np.array([s.passage for s in sentences]))
        eligible = cosine >= SENTENCE_BAR * bar
        later = eligible & (relevance >= relevance.max() - RELEVANCE_MARGIN)
    # The answer leads with the best sentence of the best-ranked passage that has one: the
    # second stage's first choice is the likeliest place of the answer.
    lead_passage = min(s.passage for s, ok in zip(sentences, eligible) if ok) if eligible.any() else -1
    chosen: list[int] = []
    per_passage: dict[int, int] = {}
    while len(chosen) < budget:
        best_i, best_score = -1, -np.inf
        for i in range(len(sentences)):
            # The first MIN_SENTENCES only need the bar; later ones must also be near the best.
            if i in chosen or not eligible[i] or (len(chosen) >= MIN_SENTENCES and not later[i]):
                continue
            if (not chosen and sentences[i].passage != lead_passage
                    or per_passage.get(sentences[i].passage, 0) >= PER_PASSAGE_SENTENCES):
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            if redundancy >= NEAR_DUPLICATE:
                continue
            score = MMR_LAMBDA * relevance[i] - (1 - MMR_LAMBDA) * redundancy
            if score > best_score:
                best_i, best_score = i, score
        if best_i < 0:
            break
        chosen.append(best_i)
        per_passage[sentences[best_i].passage] = per_passage.get(sentences[best_i].passage, 0) + 1
    return sorted((sentences[i] for i in chosen), key=lambda s: (s.passage, s.start))


def closest_passages(evidence: Sequence[Evidence], n: int = 3) -> list[Passage]:
    """The closest passages over all groups: what an abstained answer shows as "possibly related"."""
    pooled = [p for group in evidence for p in group.wider]
    return sorted(pooled, key=lambda p: -p.sentence_similarity)[:n]


def abstain(question: str, states: Sequence[str], reason: str, related: Sequence[Passage]) -> Answer:
    """A plain "the plans do not say" answer that still shows the closest passages."""
    shown = tuple(make_citation(i + 1, p, _lead_sentence(p)) for i, p in enumerate(related))
    text = reason
    if shown:
        text += " Possibly related passages are listed below."
    return Answer(question=question, states=tuple(states), abstained=True, reason=reason, answer=text,
                  categories=(), citations=(), related=shown)


_STARTS_WELL = re.compile(r"^[\"“(]?\s*[A-Z0-9]")
_ENDS_WELL = re.compile(r"[.!?][\"”’)]*$")
# Openings that lean on a sentence the reader will not see.
_LEANS_ON_CONTEXT = re.compile(
    r"^(?:This|These|Those|That|It|Its|They|Their|Such|He|She|Also|Furthermore|Moreover|Additionally|"
    r"However|Therefore|Thus|Hence|Conversely|Similarly|Likewise|Finally|Second|Third|Then|In response|"
    r"In addition|As a result|As such|For example|For instance|In this way|To that end|Here|"
    r"A similar|The same|Another|(?:Many|Some|All|Each|Most|One|Both) of (?:these|those|them|the above))\b")
# The Department's template asks, and plan cross-references, are not the state's policy.
_TEMPLATE_LIKE = re.compile(
    r"^(?:Does the State|Is the State|Will the State|The State[’']s strategies|The description|"
    r"Describe|Provide|Identify|Explain|Indicate|List)\b|\bin the text box\b|\bESEA section \d+\([a-z]\)\([0-9]\)\([A-Z]\)",
    re.IGNORECASE)
_CROSS_REFERENCE = re.compile(r"\b(?:please see|see (?:Appendix|Table|Figure|page|section|the link|this link)|"
                              r"this link|click here|https?://)", re.IGNORECASE)
# "A. Title ..." / "4.1 Title ..." / "2) ..." item labels glued to a sentence; "Scale: 194.5 ..." stat lines.
_ITEM_LABEL = re.compile(r"^(?:[A-Z]\.|[a-z]\)|\d+(?:\.\d+)+\.?|\d+[.)]|\(\w{1,4}\))\s")
_BARE_STAT = re.compile(r"^[A-Z][\w ]{0,30}:\s*[\d$]")


_LEGAL_REFERENCE = re.compile(r"C\.F\.R\.|§")
_GERUND_OPENING = re.compile(r"^[A-Z][a-z]+ing\b")
_FINITE_VERB = re.compile(r"\b(?:is|are|was|were|will|has|have|had|can|may|must|should|would|could|"
                          r"does|did|provides?|includes?|helps?|allows?|ensures?|supports?)\b")


def is_readable_sentence(sentence: str) -> bool:
    """A sentence that stands on its own as the state's words."""
    if "\n" in sentence or "|" in sentence or not (40 <= len(sentence) <= 500):
        return False
    if not _STARTS_WELL.match(sentence) or not _ENDS_WELL.search(sentence) or sentence.endswith("?"):
        return False
    if text_kind(sentence) != RESPONSE or _TEMPLATE_LIKE.search(sentence):
        return False
    if _LEANS_ON_CONTEXT.match(sentence) or _CROSS_REFERENCE.search(sentence):
        return False
    if _ITEM_LABEL.match(sentence) or _BARE_STAT.match(sentence) or heading_level(sentence):
        return False
    if _LEGAL_REFERENCE.search(sentence) or (_GERUND_OPENING.match(sentence) and not _FINITE_VERB.search(sentence)):
        return False  # "Promoting social and emotional learning (SEL)." is a heading, not a claim
    if not _balanced(sentence):
        return False  # "225, 78%) met ..." starts inside a parenthesis: a fragment
    words = re.findall(r"[A-Za-z]{2,}", sentence)
    numbers = re.findall(r"\d+(?:[.,]\d+)*%?", sentence)
    return len(words) >= 6 and len(numbers) <= 6 and len(numbers) <= len(words) / 3


def _balanced(sentence: str) -> bool:
    depth = 0
    for ch in sentence:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0 and sentence.count("“") == sentence.count("”")


def _cite(chosen: Sequence[Sentence], evidence: Evidence, citations: list[Citation]) -> str:
    """Answer text with [n] markers; one citation per quoted sentence."""
    parts = []
    for sentence in chosen:
        number = len(citations) + 1
        citations.append(make_citation(number, evidence.passages[sentence.passage], sentence.text, sentence.start))
        parts.append(f"{sentence.text} [{number}]")
    return " ".join(parts)


def make_citation(rank: int, passage: Passage, quote: str, offset: int | None = None) -> Citation:
    return Citation(rank=rank, chunk_id=passage.chunk_id, state=passage.state, source=passage.source,
                    page=passage.page, page_label=passage.page_label, section=passage.section,
                    paragraph=quote_paragraph(passage, quote, offset), quote=quote,
                    passage=passage.text, score=passage.score, categories=passage.categories,
                    ocr=passage.ocr, version=passage.version, year=passage.year)


def quote_paragraph(passage: Passage, quote: str, offset: int | None = None) -> int | None:
    """The DOCX paragraph that holds the quote: paragraphs are joined by blank lines in a chunk."""
    if passage.paragraph is None:
        return None
    at = passage.text.find(quote) if offset is None else offset
    return passage.paragraph + passage.text[:max(at, 0)].count("\n\n")


def _lead_sentence(passage: Passage) -> str:
    spans = sentence_spans(passage.text)
    return passage.text[spans[0][0]:spans[0][1]] if spans else passage.text


def category_evidence(citations: Sequence[Citation], tagger: CategoryTagger,
                      question: str = "") -> list[CategoryEvidence]:
    """The categories an answer is about, each with the first citation tagged with it.

    A category counts when at least half of the citations carry it, or when the question asks
    about it and any citation carries it: one stray tagged passage does not make an answer about
    an approach (on the eval set, answer-level category F1 0.60 with every tag, 0.68 with this).
    """
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for citation in citations:
        for category in citation.categories:
            counts[category] = counts.get(category, 0) + 1
            first.setdefault(category, citation.rank)
    asked = set(tagger.question_categories(question)) if question else set()
    kept = [c for c in counts if 2 * counts[c] >= len(citations) or c in asked]
    return [CategoryEvidence(c, tagger.label(c), first[c], counts[c] / len(citations))
            for c in sorted(kept, key=lambda c: (-counts[c], first[c]))]


def answer_from_checked(question: str, states: Sequence[str], checked: Sequence, passages: Sequence[Passage],
                        tagger: CategoryTagger) -> Answer:
    """An answer from a verified model reply: only supported sentences, each citing its best quote.

    Removed sentences are counted in the text, so a reader knows the model said more than is shown.
    """
    citations: list[Citation] = []
    paragraphs: list[str] = []
    ranks: dict[tuple[int, int], int] = {}  # a quote cited twice keeps its first number
    said: set[str] = set()
    for item in checked:
        said_as = " ".join(item.claim.text.lower().split())
        if not item.supported or said_as in said:
            continue  # small models repeat themselves: a sentence is shown once
        said.add(said_as)
        passage = passages[item.passage]
        start, end = item.quote_start, item.quote_end
        bullet = LEADING_BULLET.match(passage.text[start:end])
        start += bullet.end() if bullet else 0
        if (item.passage, start) not in ranks:
            citations.append(make_citation(len(citations) + 1, passage, passage.text[start:end], start))
            ranks[(item.passage, start)] = len(citations)
        sentence = f"{item.claim.text} [{ranks[(item.passage, start)]}]"
        if item.claim.heading or not paragraphs:
            paragraphs.append(f"**{item.claim.heading}:** {sentence}" if item.claim.heading else sentence)
        else:
            paragraphs[-1] += " " + sentence
    removed = [c for c in checked if not c.supported]
    if not citations:
        reason = ("The language model's answer could not be verified against the plan passages."
                  if removed else "No passage in the indexed plans is relevant enough to answer this.")
        return abstain(question, states, reason, list(passages)[:3])
    text = "\n\n".join(paragraphs)
    attributed = sum(c.supported and c.attributed for c in checked)
    if attributed:
        text += (f"\n\n_{attributed} sentence(s) of the generated answer cited no passage; each is shown "
                 "with the passage the checker found supporting it._")
    if removed:
        text += (f"\n\n_{len(removed)} sentence(s) of the generated answer were removed because the "
                 "cited plan passages do not support them._")
    evidence = category_evidence(citations, tagger, question)
    return Answer(question=question, states=tuple(states), abstained=False, reason=None, answer=text,
                  categories=tuple(dict.fromkeys(e.category for e in evidence)),
                  citations=tuple(citations), evidence=tuple(evidence))
