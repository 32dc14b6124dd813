"""The retriever: every chunk's signals for a question, the fused first stage, the learned second.

    signals = retriever.signals(question, states=["DE"])     # per-chunk arrays (what fitting reads)
    passages = retriever.search(question, k=5, states=["DE"])  # ranked Passages
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..learning import LinearModel
from ..records import TEMPLATE, TOC, Chunk, Passage
from ..tagging import CategoryTagger
from ..terms import coverage, holds_phrase, idf_weights, stemmed_text, stems, topical_terms
from ..versions import sources_for
from .dense import DenseIndex
from .fusion import Fusion, normalized
from .lexical import LexicalIndex
from .rerank import RERANK_DEPTH, CandidateSignals

MODES = ("hybrid", "rrf", "dense", "sentence", "bm25")
# The state's own words beat the Department's template and the contents pages.
KIND_WEIGHT = {TEMPLATE: 0.5, TOC: 0.2}
CATEGORY_BOOST = 0.5


@dataclass(frozen=True)
class RetrievalModels:
    """The learned parts of retrieval; defaults when none was fitted for this embedder."""

    fusion: Fusion = Fusion()
    rerank: LinearModel | None = None


@dataclass(frozen=True)
class QuerySignals:
    """Per-chunk arrays for one question within one scope (states, categories)."""

    query: str
    vector: np.ndarray
    allowed: np.ndarray
    dense: np.ndarray
    sentence: np.ndarray  # best sentence cosine per chunk
    sentence_scores: np.ndarray  # every stored sentence's cosine
    bm25: np.ndarray
    boosted: np.ndarray  # chunks carrying an approach the question asks about

    def lists(self) -> dict[str, np.ndarray]:
        return {"dense": self.dense, "sentence": self.sentence, "bm25": self.bm25}


SUBSET_SHARE = 0.5  # a scope smaller than this share of the index is scored alone


class Retriever:
    def __init__(self, chunks: Sequence[Chunk], vectors: np.ndarray, sentence_vectors: np.ndarray,
                 embedder, tagger: CategoryTagger, models: RetrievalModels | None = None,
                 lexical_cache: Path | None = None):
        self.chunks = tuple(chunks)
        self.embedder = embedder
        self.tagger = tagger
        self.models = models or RetrievalModels()
        self._states = np.array([c.state for c in self.chunks])
        self._sources = np.array([c.source for c in self.chunks])
        self.plans = {c.source: {"state": c.state, "version": c.version, "year": c.year} for c in self.chunks}
        self._version_masks: dict[str, np.ndarray] = {}
        self._kind_weight = np.array([KIND_WEIGHT.get(c.kind, 1.0) for c in self.chunks])
        self._carried = [set(tagger.carried(c.categories)) for c in self.chunks]
        self._row = {c.id: i for i, c in enumerate(self.chunks)}
        counts = np.array([len(c.sentences) for c in self.chunks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
        self.dense = DenseIndex(vectors, sentence_vectors, starts, counts)
        self.lexical = LexicalIndex([f"{c.header}\n{c.text}" if c.header else c.text for c in self.chunks],
                                    lexical_cache)
        # Word stems are read for a question's candidates only, so they are made when first read
        # (at 51 plans, making all 49,000 at load took 2.1 s of a 7.8 s start); a header is shared
        # by every chunk of its section. Filling a dict from several threads at once is harmless.
        self._text_stems: dict[int, set[str]] = {}
        self._header_stems: dict[str, set[str]] = {}
        self._stemmed_text: dict[int, str] = {}
        self.candidate_source = None  # stores.pg_search.DatabaseCandidates where pg_search = "database"

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._states.tolist())))

    def with_models(self, models: RetrievalModels) -> "Retriever":
        """The same index under other learned models (cross-validation swaps them per fold)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.models = models
        return clone

    # ------------------------------------------------------------ signals

    def mask(self, states: Sequence[str] | None = None,
             categories: Sequence[str] | None = None, version: str | None = None) -> np.ndarray:
        """Chunks in scope. `version`: None for each state's newest plan, "all", or one version."""
        allowed = self._version_mask(version).copy()
        if states:
            allowed &= np.isin(self._states, [s.upper() for s in states])
        if categories:
            wanted = set(categories)
            allowed &= np.array([bool(wanted & carried) for carried in self._carried], dtype=bool)
        return allowed

    def _version_mask(self, version: str | None) -> np.ndarray:
        key = (version or "").strip().lower()
        if key not in self._version_masks:
            sources = sources_for(self.plans, version)
            self._version_masks[key] = (np.ones(len(self.chunks), dtype=bool) if sources is None
                                        else np.isin(self._sources, sorted(sources)))
        return self._version_masks[key]

    def signals(self, query: str, states: Sequence[str] | None = None,
                categories: Sequence[str] | None = None, boost: Sequence[str] = (),
                version: str | None = None) -> QuerySignals:
        allowed = self.mask(states, categories, version)
        vector = self.embedder.embed_query(query)
        # Only the chunks in scope are scored when the scope is a part of the index (a state's
        # plan among many): nothing outside it is ever read (fusion and evidence mask by `allowed`).
        rows = np.flatnonzero(allowed) if allowed.sum() < SUBSET_SHARE * len(allowed) else None
        dense = self.dense.chunk_scores(vector, rows)
        sentence_scores = self.dense.sentence_scores(vector, rows)
        bm25 = self.lexical.scores(query)
        bm25 = np.where(allowed, bm25, 0.0)
        wanted = set(boost)
        boosted = np.array([bool(wanted & carried) for carried in self._carried], dtype=bool) \
            if wanted else np.zeros(len(self.chunks), dtype=bool)
        return QuerySignals(query, vector, allowed, dense, self.dense.best_sentence(sentence_scores, dense),
                            sentence_scores, bm25, boosted)

    def first_stage(self, signals: QuerySignals, mode: str = "hybrid") -> np.ndarray:
        """One score per chunk (-inf outside scope), kinds weighted, asked-about approaches boosted."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {MODES}")
        allowed = signals.allowed
        if mode in ("dense", "sentence"):
            scores = np.where(allowed, getattr(signals, mode), -np.inf)
        elif mode == "bm25":
            scores = np.where(allowed & (signals.bm25 > 0), signals.bm25, -np.inf)
        else:
            fusion = Fusion() if mode == "rrf" else self.models.fusion
            scores = fusion.fuse(signals.lists(), allowed)
        finite = np.isfinite(scores)
        if not finite.any():
            return scores
        # Weights multiply a positive score: shift so the weakest chunk in scope sits just above 0.
        positive = scores - scores[finite].min() + 1e-6
        positive = positive * self._kind_weight * np.where(signals.boosted, 1 + CATEGORY_BOOST, 1.0)
        return np.where(finite, positive, -np.inf)

    def candidate_signals(self, signals: QuerySignals, candidates: np.ndarray) -> CandidateSignals:
        """The second stage's inputs for `candidates` (chunk rows in first-stage order)."""
        terms = topical_terms(signals.query)
        term_stems = [t.stem for t in terms]
        n_scope = int(signals.allowed.sum())
        idf = idf_weights(terms, lambda s: self.document_frequency(s, signals.allowed), n_scope)
        top2 = []
        for i in candidates:
            own = np.sort(self.dense.sentences_of(int(i), signals.sentence_scores))[::-1][:2]
            top2.append(float(own.mean()) if len(own) else float(signals.dense[i]))
        bm25 = normalized("bm25", np.where(signals.allowed, signals.bm25, -np.inf))
        return CandidateSignals(
            dense=signals.dense[candidates], sentence=signals.sentence[candidates],
            sentence_2=np.array(top2), bm25=np.where(np.isfinite(bm25), bm25, 0.0)[candidates],
            first_rank=np.arange(len(candidates), dtype=np.float64),
            header=np.array([coverage(term_stems, idf, self.header_stems(int(i))) for i in candidates]),
            coverage=np.array([coverage(term_stems, idf, self.text_stems(int(i))) for i in candidates]),
            kinds=tuple(self.chunks[i].kind for i in candidates),
            intent=signals.boosted[candidates].astype(np.float64))

    # ------------------------------------------------------------ search

    def search(self, query: str, k: int = 10, states: Sequence[str] | None = None,
               categories: Sequence[str] | None = None, mode: str = "hybrid",
               boost: Sequence[str] = (), rerank: bool = True, version: str | None = None) -> list[Passage]:
        """Ranked passages; `categories` restricts to tagged passages, `boost` favours them;
        `version` as in `mask`. In "hybrid" mode the learned second stage re-orders the top candidates."""
        if k <= 0 or not query.strip():
            return []
        signals = self.signals(query, states, categories, boost, version)
        if not signals.allowed.any():
            return []
        return self.rank(signals, k, mode=mode, rerank=rerank)

    def rank(self, signals: QuerySignals, k: int, mode: str = "hybrid", rerank: bool = True) -> list[Passage]:
        first = self.first_stage(signals, mode)
        if self.candidate_source is not None and mode == "hybrid":
            # Only the chunks the database's text search proposes, and as many nearest by vector,
            # are ranked (stores/pg_search.py).
            source = self.candidate_source
            states = sorted(set(self._states[signals.allowed].tolist()))
            proposed = np.zeros(len(first), dtype=bool)
            proposed[source.rows(signals.query, states)] = True
            dense = np.where(signals.allowed, signals.dense, -np.inf)
            proposed[np.argsort(-dense, kind="stable")[:source.per_list]] = True
            first = np.where(proposed & signals.allowed, first, -np.inf)
        finite = np.flatnonzero(np.isfinite(first))
        order = finite[np.argsort(-first[finite], kind="stable")]
        model = self.models.rerank if (rerank and mode == "hybrid") else None
        if model is None:
            return [self._passage(int(i), float(first[i]), signals) for i in order[:k]]
        head = order[:max(k, RERANK_DEPTH)]
        x = self.candidate_signals(signals, head).matrix()
        score = model.score(x)
        probability = model.probability(x)
        reordered = np.argsort(-score, kind="stable")
        return [replace(self._passage(int(head[j]), float(score[j]), signals), relevance=round(float(probability[j]), 4))
                for j in reordered[:k]]

    def document_frequency(self, stem: str, allowed: np.ndarray | Sequence[str] | None = None) -> int:
        """How many chunks (in `allowed`: a mask or state codes; else all) hold `stem`, a Snowball
        stem as the BM25 index spells it."""
        docs = self.lexical.documents_with(stem)
        if allowed is None or not len(docs):
            return int(len(docs))
        if not isinstance(allowed, np.ndarray):
            allowed = self.mask(allowed)
        return int(allowed[docs].sum())

    def row(self, chunk_id: str) -> int:
        return self._row[chunk_id]

    def sentence_similarities(self, passage: Passage, signals: QuerySignals) -> np.ndarray:
        """The question's cosine with each of a passage's quotable sentences (in `Chunk.sentences` order)."""
        return self.dense.sentences_of(self._row[passage.chunk_id], signals.sentence_scores)

    def text_stems(self, i: int) -> set[str]:
        """The stems of chunk i's own text (not its header)."""
        found = self._text_stems.get(i)
        if found is None:
            found = self._text_stems[i] = stems(self.chunks[i].text)
        return found

    def header_stems(self, i: int) -> set[str]:
        """The stems of chunk i's header (plan title and section path)."""
        header = self.chunks[i].header
        found = self._header_stems.get(header)
        if found is None:
            found = self._header_stems[header] = stems(header)
        return found

    def holds_phrase(self, i: int, phrases) -> bool:
        """Chunk i holds one of the question's adjacent-word phrases (its stems kept once made)."""
        if not phrases:
            return False
        if i not in self._stemmed_text:
            self._stemmed_text[i] = stemmed_text(self.chunks[i].text)
        return holds_phrase(self.chunks[i].text, phrases, self._stemmed_text[i])

    def sentence_vectors(self, passage: Passage) -> np.ndarray:
        return self.dense.sentence_rows(self._row[passage.chunk_id])

    def passage(self, i: int, score: float = 0.0) -> Passage:
        """Chunk i as a passage, outside any search."""
        c = self.chunks[i]
        return Passage.from_chunk(c, score, self.tagger.carried(c.categories))

    def _passage(self, i: int, score: float, signals: QuerySignals) -> Passage:
        c = self.chunks[i]
        return Passage.from_chunk(c, round(score, 6), self.tagger.carried(c.categories),
                                  similarity=round(float(signals.dense[i]), 4),
                                  sentence_similarity=round(float(signals.sentence[i]), 4))
