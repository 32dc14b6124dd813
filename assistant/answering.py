"""Answering: retrieved passages in, a short extractive answer with sentence-level citations out.

Every answer sentence is copied verbatim from a cited passage, so each claim can be checked
against the plan at the cited page (or paragraph). No language model is needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .chunking import sentence_spans
from .ingest import text_kind
from .records import RESPONSE, TABLE, Answer, CategoryEvidence, Citation, Passage
from .states import state_name
from .tagging import CategoryTagger

MAX_SENTENCES = 5
PER_STATE_SENTENCES = 3
MMR_LAMBDA = 0.7
NEAR_DUPLICATE = 0.92


@dataclass(frozen=True)
class Candidate:
    passage_rank: int  # 0-based position in the retrieved list
    start: int  # offset in the passage text
    end: int
    text: str


def compose_answer(question: str, states: Sequence[str], passages_by_state: dict[str, list[Passage]],
                   embedder, tagger: CategoryTagger, *, per_state: bool,
                   abstain_below: float) -> Answer:
    """An extractive answer; one section per state when `per_state`, else one paragraph."""
    citations: list[Citation] = []
    sections: list[tuple[str, str]] = []
    query_vector = embedder.embed_query(question)
    budget = PER_STATE_SENTENCES if per_state else MAX_SENTENCES
    for state, passages in passages_by_state.items():
        relevant = [p for p in passages if p.similarity >= abstain_below]
        chosen = select_sentences(query_vector, relevant, embedder, budget)
        body = _cite(chosen, relevant, citations)
        if per_state:
            sections.append((state, body or f"The {state_name(state)} plan does not appear to address this."))
        elif body:
            sections.append(("", body))
    if not citations:
        related = [p for ps in passages_by_state.values() for p in ps][:3]
        return abstain(question, states, "No passage in the indexed plans is relevant enough to answer this.",
                       related)
    text = "\n\n".join(f"**{state_name(s)}:** {b}" if s else b for s, b in sections)
    evidence = category_evidence(citations, tagger)
    return Answer(question=question, states=tuple(states), abstained=False, reason=None, answer=text,
                  categories=tuple(dict.fromkeys(e.category for e in evidence)),
                  citations=tuple(citations), evidence=tuple(evidence), sections=tuple(sections))


def abstain(question: str, states: Sequence[str], reason: str, related: Sequence[Passage]) -> Answer:
    """A plain "the plans do not say" answer that still shows the closest passages."""
    shown = tuple(_citation(i + 1, p, _lead_sentence(p)) for i, p in enumerate(related))
    text = f"The indexed plans do not address this. {reason}"
    if shown:
        text += " Possibly related passages are listed below."
    return Answer(question=question, states=tuple(states), abstained=True, reason=reason, answer=text,
                  categories=(), citations=(), related=shown)


def select_sentences(query_vector: np.ndarray, passages: Sequence[Passage], embedder,
                     budget: int) -> list[Candidate]:
    """Relevant, diverse, readable sentences (MMR over sentence embeddings)."""
    candidates = [c for rank, p in enumerate(passages) for c in readable_sentences(p, rank)]
    if not candidates:
        return []
    vectors = embedder.embed([c.text for c in candidates])
    relevance = vectors @ query_vector
    # Earlier passages ranked higher by hybrid retrieval: a small prior keeps their sentences ahead.
    relevance = relevance - 0.01 * np.array([c.passage_rank for c in candidates])
    chosen: list[int] = []
    while len(chosen) < min(budget, len(candidates)):
        best, best_score = -1, -np.inf
        for i in range(len(candidates)):
            if i in chosen:
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            if redundancy >= NEAR_DUPLICATE:
                continue
            score = MMR_LAMBDA * relevance[i] - (1 - MMR_LAMBDA) * redundancy
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            break
        chosen.append(best)
    picked = [candidates[i] for i in chosen]
    return sorted(picked, key=lambda c: (c.passage_rank, c.start))


_STARTS_WELL = re.compile(r"^[\"“(•]?\s*[A-Z0-9]")
_ENDS_WELL = re.compile(r"[.!?][\"”’)]*$")


def readable_sentences(passage: Passage, rank: int) -> list[Candidate]:
    """Whole sentences of the state's own words: no fragments, template text, or table rows."""
    if passage.kind not in (RESPONSE, TABLE):
        return []
    out = []
    for start, end in sentence_spans(passage.text):
        sentence = passage.text[start:end]
        if "\n" in sentence or not (40 <= len(sentence) <= 500):
            continue
        if not _STARTS_WELL.match(sentence) or not _ENDS_WELL.search(sentence):
            continue
        if text_kind(sentence) != RESPONSE or len(re.findall(r"\d+(?:\.\d+)?%?", sentence)) > 6:
            continue
        out.append(Candidate(rank, start, end, sentence))
    return out


def _cite(chosen: list[Candidate], passages: Sequence[Passage], citations: list[Citation]) -> str:
    """Answer text with [n] markers; one citation per quoted sentence."""
    parts = []
    for candidate in chosen:
        passage = passages[candidate.passage_rank]
        number = len(citations) + 1
        citations.append(_citation(number, passage, candidate.text, candidate.start))
        sentence = candidate.text.lstrip("•").strip()
        parts.append(f"{sentence} [{number}]")
    return " ".join(parts)


def _citation(rank: int, passage: Passage, quote: str, offset: int | None = None) -> Citation:
    return Citation(rank=rank, chunk_id=passage.chunk_id, state=passage.state, source=passage.source,
                    page=passage.page, page_label=passage.page_label, section=passage.section,
                    paragraph=quote_paragraph(passage, quote, offset), quote=quote,
                    passage=passage.text, score=passage.score, categories=passage.categories)


def quote_paragraph(passage: Passage, quote: str, offset: int | None = None) -> int | None:
    """The DOCX paragraph that holds the quote: paragraphs are joined by blank lines in a chunk."""
    if passage.paragraph is None:
        return None
    at = passage.text.find(quote) if offset is None else offset
    return passage.paragraph + passage.text[:max(at, 0)].count("\n\n")


def _lead_sentence(passage: Passage) -> str:
    spans = sentence_spans(passage.text)
    return passage.text[spans[0][0]:spans[0][1]] if spans else passage.text


def category_evidence(citations: Sequence[Citation], tagger: CategoryTagger) -> list[CategoryEvidence]:
    """Each category an answer carries, with the first citation whose passage is tagged with it."""
    evidence: dict[str, CategoryEvidence] = {}
    for citation in citations:
        for category in citation.categories:
            if category not in evidence:
                evidence[category] = CategoryEvidence(category, tagger.label(category), citation.rank, 0.0)
    return list(evidence.values())
