"""The dense side: the question's cosine with every chunk (FAISS, exact inner product) and with
every sentence (the late-chunked sentence vectors stored at index time)."""

from __future__ import annotations

import numpy as np


def one_blas_thread() -> None:
    """Run BLAS (numpy's and faiss's OpenBLAS) on one thread in this process, from now on.

    Answering multiplies one question vector by a few thousand stored rows: one thread does that
    in a few milliseconds, and more only help a big batch. OpenBLAS's helper threads spin after
    each product: measured on two cores (20 questions through `Assistant.ask`), they took half the
    CPU of every answer (196 -> 94 ms CPU, 98 -> 47 ms wall per ask) and starved the web app's
    other requests. Concurrency comes from answering several questions at once instead.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class DenseIndex:
    def __init__(self, vectors: np.ndarray, sentence_vectors: np.ndarray, sentence_starts: np.ndarray,
                 sentence_counts: np.ndarray):
        import faiss

        one_blas_thread()  # after `import faiss`: threadpoolctl limits the libraries loaded so far
        self._faiss = faiss.IndexFlatIP(vectors.shape[1])
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # the caller's array, not a copy
        self._faiss.add(self._vectors)
        self.n = len(vectors)
        self._sentences = np.ascontiguousarray(sentence_vectors, dtype=np.float32)
        self._starts = np.asarray(sentence_starts, dtype=np.int64)
        self._counts = np.asarray(sentence_counts, dtype=np.int64)

    def chunk_scores(self, query_vector: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Cosine of the question with every chunk (one exact flat search: the corpus is small), or
        only with `rows` (the scope: one state's plan of 51 is 1/17 of the work); -1 elsewhere."""
        if not self.n:
            return np.zeros(0, dtype=np.float32)
        query = np.asarray(query_vector, dtype=np.float32)
        if rows is not None:
            scores = np.full(self.n, -1.0, dtype=np.float32)
            scores[rows] = self._vectors[rows] @ query
            return scores
        sims, rows = self._faiss.search(query[None, :], self.n)
        scores = np.full(self.n, -1.0, dtype=np.float32)
        valid = rows[0] >= 0
        scores[rows[0][valid]] = sims[0][valid]
        return scores

    def sentence_scores(self, query_vector: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Cosine of the question with every stored sentence, in storage order; with `rows`, only
        those chunks' sentences (-1 for the others')."""
        query = np.asarray(query_vector, dtype=np.float32)
        if rows is None:
            return self._sentences @ query
        counts = self._counts[rows]
        # Each chosen chunk's run of sentence rows: its start, then start+1, ... start+count-1.
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        picked = np.repeat(self._starts[rows], counts) + offsets
        scores = np.full(len(self._sentences), -1.0, dtype=np.float32)
        scores[picked] = self._sentences[picked] @ query
        return scores

    def best_sentence(self, sentence_scores: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """Per chunk, its best sentence's cosine (`fallback`, the chunk's own, when it has none)."""
        best = np.array(fallback, dtype=np.float32, copy=True)
        has = self._counts > 0
        if has.any() and len(sentence_scores):
            reduced = np.maximum.reduceat(sentence_scores, self._starts[has])
            best[has] = reduced
        return best

    def sentence_rows(self, i: int) -> np.ndarray:
        start = int(self._starts[i])
        return self._sentences[start:start + int(self._counts[i])]

    def sentences_of(self, i: int, sentence_scores: np.ndarray) -> np.ndarray:
        start = int(self._starts[i])
        return sentence_scores[start:start + int(self._counts[i])]
