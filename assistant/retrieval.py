"""Retrieval: hybrid dense (FAISS) + BM25 (bm25s) search with state and category filters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import TEMPLATE, TOC, Chunk, Passage
from .tagging import CategoryTagger

MODES = ("hybrid", "dense", "bm25")
# The state's own words beat the Department's template and the contents pages.
KIND_WEIGHT = {TEMPLATE: 0.5, TOC: 0.2}
CANDIDATES = 100  # from each ranker before fusion
CATEGORY_BOOST = 0.5


class Retriever:
    def __init__(self, chunks: Sequence[Chunk], vectors: np.ndarray, embedder,
                 tagger: CategoryTagger, rrf_k: int = 60, faiss_index=None):
        import faiss

        self.chunks = tuple(chunks)
        self.embedder = embedder
        self.tagger = tagger
        self.rrf_k = rrf_k
        self._states = np.array([c.state for c in self.chunks])
        self._kind_weight = np.array([KIND_WEIGHT.get(c.kind, 1.0) for c in self.chunks], dtype=np.float32)
        self._carried = [set(tagger.carried(c.categories)) for c in self.chunks]
        if faiss_index is None:
            faiss_index = faiss.IndexFlatIP(vectors.shape[1])
            faiss_index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._faiss = faiss_index
        self._bm25, self._stemmer = _bm25_index([c.text for c in self.chunks])

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._states.tolist())))

    def search(self, query: str, k: int = 10, states: Sequence[str] | None = None,
               categories: Sequence[str] | None = None, mode: str = "hybrid",
               boost: Sequence[str] = ()) -> list[Passage]:
        """Ranked passages; `categories` restricts to tagged passages, `boost` favours them."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {MODES}")
        allowed = self._mask(states, categories)
        if not allowed.any() or not query.strip():
            return []
        query_vector = self.embedder.embed_query(query)
        dense = self._dense_scores(query_vector, allowed)
        fused = self._fuse(query, dense, allowed, mode)
        fused = fused * self._kind_weight
        if boost:
            wanted = set(boost)
            fused = fused * np.array([1 + CATEGORY_BOOST if wanted & carried else 1.0
                                      for carried in self._carried], dtype=np.float32)
        fused[~allowed] = -np.inf
        order = np.argsort(-fused)[:k]
        return [self._passage(int(i), float(fused[i]), float(dense[i])) for i in order
                if np.isfinite(fused[i]) and fused[i] > 0]

    def term_document_frequency(self, stem: str, states: Sequence[str] | None = None) -> int:
        """How many chunks (of `states`, or of all) hold `stem`, a lower-case Snowball English stem
        as the BM25 index spells it; 0 for a stem the index has never seen."""
        column = getattr(self._bm25, "vocab_dict", {}).get(stem) if stem else None
        if column is None:
            return 0
        scores = self._bm25.scores
        docs = scores["indices"][scores["indptr"][column]:scores["indptr"][column + 1]]
        if not states:
            return int(len(docs))
        return int(np.isin(self._states[docs], [s.upper() for s in states]).sum())

    def _mask(self, states, categories) -> np.ndarray:
        allowed = np.ones(len(self.chunks), dtype=bool)
        if states:
            allowed &= np.isin(self._states, [s.upper() for s in states])
        if categories:
            wanted = set(categories)
            allowed &= np.array([bool(wanted & carried) for carried in self._carried], dtype=bool)
        return allowed

    def _dense_scores(self, query_vector: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Cosine similarity for every chunk (exact flat search; the corpus is small)."""
        import faiss

        n = len(self.chunks)
        ids = np.flatnonzero(allowed).astype(np.int64)
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids)) if len(ids) < n else None
        sims, rows = self._faiss.search(query_vector[None, :].astype(np.float32), len(ids), params=params)
        scores = np.full(n, -1.0, dtype=np.float32)
        valid = rows[0] >= 0
        scores[rows[0][valid]] = sims[0][valid]
        return scores

    def _fuse(self, query: str, dense: np.ndarray, allowed: np.ndarray, mode: str) -> np.ndarray:
        if mode == "dense":
            return np.where(allowed, np.maximum(dense, 1e-6), 0.0).astype(np.float32)
        lexical = self._bm25_scores(query)
        lexical[~allowed] = 0.0
        if mode == "bm25":
            return lexical
        fused = np.zeros(len(self.chunks), dtype=np.float32)
        for scores in (np.where(allowed, dense, -np.inf), np.where(lexical > 0, lexical, -np.inf)):
            # argpartition: only the top candidates matter for fusion, unordered is fine.
            top = np.argpartition(-scores, min(CANDIDATES, len(scores) - 1))[:CANDIDATES]
            top = top[np.isfinite(scores[top])]
            ranked = top[np.argsort(-scores[top])]
            fused[ranked] += 1.0 / (self.rrf_k + np.arange(1, len(ranked) + 1))
        return fused

    def _bm25_scores(self, query: str) -> np.ndarray:
        import bm25s

        tokens = bm25s.tokenize(query, stopwords="en", stemmer=self._stemmer, return_ids=False,
                                show_progress=False)[0]
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def _passage(self, i: int, score: float, similarity: float) -> Passage:
        c = self.chunks[i]
        return Passage(chunk_id=c.id, text=c.text, state=c.state, source=c.source, page=c.page,
                       page_label=c.page_label, section=c.section, paragraph=c.paragraph,
                       score=round(score, 6), kind=c.kind,
                       categories=self.tagger.carried(c.categories),
                       category_scores=dict(c.categories), unit=c.unit, char_start=c.char_start,
                       similarity=round(similarity, 4), paragraph_end=c.paragraph_end)


def _bm25_index(texts: list[str]):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    if texts:
        retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
                        show_progress=False)
    return retriever, stemmer
