"""Stage 3, evidence: per group, the quotable sentences of the passages an answer may quote,
scored against the question from the sentence vectors stored at index time (nothing is embedded
here), and the numbers the answer decision reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..records import RESPONSE, TABLE, Passage
from ..retrieval import Retriever
from ..terms import TopicalTerm, coverage, idf_weights, question_phrases, stems
from .retrieve import Hits
from .scope import Scope

DECISION_FEATURES = ("best_sentence", "best_dense", "relevance", "coverage", "missing_rarity",
                     "rarest_missing", "phrase", "bm25_best")


@dataclass(frozen=True)
class Sentence:
    passage: int  # index into Evidence.passages
    start: int  # offsets in the passage's text
    end: int
    text: str
    cosine: float  # the question's cosine with the sentence (read in its chunk's context)
    overlap: float  # idf-weighted share of the question's topical terms in the sentence


@dataclass(frozen=True)
class Evidence:
    group: str  # a state code, or "" when the question is answered as one
    passages: tuple[Passage, ...]  # what the answer may quote: the top k
    wider: tuple[Passage, ...]  # the top EVIDENCE_DEPTH: what coverage is measured on
    sentences: tuple[Sentence, ...]  # every quotable sentence of `passages`
    vectors: np.ndarray = field(repr=False)  # one row per sentence (redundancy in composition)
    terms: tuple[TopicalTerm, ...] = ()
    missing: tuple[TopicalTerm, ...] = ()  # terms in none of `wider`, rarest first
    rarest: TopicalTerm | None = None  # the term fewest chunks in scope hold
    features: dict[str, float] = field(default_factory=dict)  # DECISION_FEATURES
    # adjacent topical words of the question ("National Board") that no passage of `wider` holds
    # as a phrase, though each word may appear on its own
    absent_phrases: tuple[tuple[TopicalTerm, TopicalTerm], ...] = ()

    def feature_row(self, names: Sequence[str] = DECISION_FEATURES) -> np.ndarray:
        """The named features in that order: a model reads the features it was fitted on."""
        return np.array([self.features[name] for name in names], dtype=np.float64)


def gather(retriever: Retriever, scope: Scope, hits: Sequence[Hits], k: int = 5) -> tuple[Evidence, ...]:
    return tuple(_evidence(retriever, scope, h, k) for h in hits)


def _evidence(retriever: Retriever, scope: Scope, hits: Hits, k: int) -> Evidence:
    terms = scope.terms
    n_scope = max(int(hits.signals.allowed.sum()), 1)
    frequency = {t.stem: retriever.document_frequency(t.stem, hits.signals.allowed) for t in terms}
    idf = idf_weights(terms, frequency.__getitem__, n_scope)
    term_stems = [t.stem for t in terms]
    wider = hits.passages
    found = set().union(*(retriever.text_stems(retriever.row(p.chunk_id)) for p in wider)) if wider else set()
    missing = tuple(sorted((t for t in terms if t.stem not in found), key=lambda t: frequency[t.stem]))
    rarest = min(terms, key=lambda t: frequency[t.stem]) if terms else None
    max_idf = float(np.log((n_scope + 1) / 0.5))  # a term in no passage of the scope
    missing_idf = max((w for t, w in zip(terms, idf) if t in missing), default=0.0)
    phrases = question_phrases(terms)
    pairs = [(a, b) for a, b in zip(terms, terms[1:]) if b.position == a.position + 1]
    held_phrases = [any(retriever.holds_phrase(retriever.row(p.chunk_id), [phrase]) for p in wider)
                    for phrase in phrases]
    absent_phrases = tuple(pair for pair, held in zip(pairs, held_phrases) if not held)
    quoted = wider[:k]
    sentences, rows = [], []
    for rank, passage in enumerate(quoted):
        cosines = retriever.sentence_similarities(passage, hits.signals)
        vectors = retriever.sentence_vectors(passage)
        if passage.kind not in (RESPONSE, TABLE):
            continue  # the Department's template and the contents pages are never quoted
        for (a, b), cosine, vector in zip(passage.sentences, cosines, vectors):
            text = passage.text[a:b]
            sentences.append(Sentence(rank, a, b, text, round(float(cosine), 4),
                                      round(coverage(term_stems, idf, stems(text)), 4)))
            rows.append(vector)
    features = {
        "best_sentence": max((p.sentence_similarity for p in wider), default=0.0),
        "best_dense": max((p.similarity for p in wider), default=0.0),
        "relevance": max((p.relevance or 0.0 for p in wider[:1]), default=0.0),
        "coverage": coverage(term_stems, idf, found),
        "missing_rarity": float(min(missing_idf / max_idf, 1.0)),
        "rarest_missing": float(rarest is not None and rarest in missing),
        "phrase": float(any(held_phrases)),
        "bm25_best": _bm25_best(hits.signals),
    }
    dim = hits.signals.vector.shape[0]
    return Evidence(hits.group, tuple(quoted), tuple(wider), tuple(sentences),
                    np.array(rows, dtype=np.float32).reshape(len(rows), dim), terms, missing, rarest,
                    absent_phrases=absent_phrases, features=features)


def _bm25_best(signals) -> float:
    """The best BM25 score in scope. A topic a plan never mentions leaves its rare words unmatched,
    so the best lexical score falls even when a near-topic passage stays close in the dense space
    (held out, `essa-qa eval --cv 5`: abstention recall 0.860 -> 0.930, false abstentions 0.071 ->
    0.028). BM25's idf is over the whole index: a refit is due when many plans are added."""
    return float(signals.bm25[signals.allowed].max()) if signals.allowed.any() else 0.0
