"""The lexical side: BM25 (bm25s) over each chunk's header and text, stemmed with the one
Snowball stemmer everything comparing words with the index shares (assistant.terms)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..terms import stemmer


class LexicalIndex:
    """BM25 scores for a query over every document, and how many documents hold a stem."""

    def __init__(self, texts: Sequence[str]):
        import bm25s

        self._bm25 = bm25s.BM25()
        self.n = len(texts)
        if texts:
            self._bm25.index(bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer(),
                                            show_progress=False), show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        import bm25s

        vocabulary = getattr(self._bm25, "vocab_dict", {})
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer(), return_ids=False,
                                show_progress=False)[0]
        known = [t for t in tokens if t in vocabulary]
        if not known:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def documents_with(self, stem: str) -> np.ndarray:
        """Indexes of the documents holding `stem` (a lower-case Snowball stem as the index spells
        it); empty for a stem the index has never seen."""
        column = getattr(self._bm25, "vocab_dict", {}).get(stem) if stem else None
        if column is None:
            return np.zeros(0, dtype=np.int64)
        scores = self._bm25.scores
        return np.asarray(scores["indices"][scores["indptr"][column]:scores["indptr"][column + 1]])
