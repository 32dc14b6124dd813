"""The embedding interface: the base class batches, caches and normalizes once; a backend writes
only `embed_batch` (and, when it can pool token spans itself, `embed_spans_batch`).

Vectors are unit-length float32, so a dot product is a cosine everywhere downstream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from .cache import EmbeddingCache

QUERY_CACHE_SIZE = 256
CACHE_WRITE_ROWS = 64
Spans = Sequence[tuple[int, int]]


class Embedder:
    """Unit-length float32 vectors for texts and for character spans (sentences) inside them."""

    backend: str = ""  # the factory's name for this backend ("mpnet", "minilm", "hash")
    name: str = ""  # the model's own name
    dim: int = 0
    batch_size: int = 32
    model_dir: str = ""  # tokenizer for chunk sizing; empty when not a transformer
    max_tokens: int = 0  # longest input the model reads, in its word pieces; 0 = no limit
    precision: str = "fp32"
    runtime: str = ""  # what runs the model ("torch", "onnx"); empty when there is no model
    # Question-passage cosine below which nothing counts as evidence when no fitted decision model
    # exists for this embedder (cosines are not comparable across models).
    abstain_similarity: float = 0.3

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_spans_batch(self, texts: Sequence[str], spans: Sequence[Spans]) -> list[np.ndarray]:
        """Per text, a (1 + len(spans), dim) array: the whole text, then each span. This default
        embeds each span as a text of its own; a transformer backend pools the span's tokens from
        the same forward pass instead (no extra model time)."""
        flat: list[str] = []
        for text, text_spans in zip(texts, spans):
            flat.append(text)
            flat.extend(text[a:b] for a, b in text_spans)
        vectors = self.embed_batch(flat)
        out, row = [], 0
        for text_spans in spans:
            out.append(vectors[row:row + 1 + len(text_spans)])
            row += 1 + len(text_spans)
        return out

    @property
    def fingerprint(self) -> str:
        """Changes whenever vectors for the same text would change."""
        return self.name

    def load(self) -> None:
        """Load the model now rather than on the first text (a server warms up before it listens)."""

    def info(self) -> dict:
        return {"backend": self.backend, "name": self.name, "dim": self.dim,
                "precision": self.precision, "runtime": self.runtime, "fingerprint": self.fingerprint}

    # ------------------------------------------------------------ batching (not overridden)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
              cache: EmbeddingCache | None = None) -> np.ndarray:
        return self.embed_with_spans(texts, [()] * len(texts), progress=progress, cache=cache)[0]

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Spans],
                         progress: Callable[[int], None] | None = None,
                         cache: EmbeddingCache | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """(text vectors, per text an array of its span vectors). With a cache, only texts it has
        not seen under this model's fingerprint reach the model."""
        if len(texts) != len(spans):
            raise ValueError("one list of spans per text")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        span_out: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(texts)
        keys = cache.keys(self.fingerprint, texts, spans) if cache is not None else None
        found = cache.get_many(keys) if cache is not None else {}
        todo = []
        for i in range(len(texts)):
            hit = found.get(keys[i]) if keys is not None else None
            if hit is not None and hit.shape == (1 + len(spans[i]), self.dim):
                out[i], span_out[i] = hit[0], hit[1:]
            else:
                todo.append(i)
        # The same text with the same spans (template text repeats across plans) is embedded once.
        first: dict[tuple, int] = {}
        copies: dict[int, list[int]] = {}
        for i in todo:
            copies.setdefault(first.setdefault((texts[i], tuple(spans[i])), i), []).append(i)
        unique = list(copies)
        if progress and len(unique) < len(texts):
            progress(len(texts) - len(unique))
        # Batches of similar length pad less: longest first, results put back in input order.
        unique.sort(key=lambda i: -len(texts[i]))
        pending: list[int] = []
        for start in range(0, len(unique), self.batch_size):
            rows = unique[start:start + self.batch_size]
            if any(spans[i] for i in rows):
                pooled = self.embed_spans_batch([texts[i] for i in rows], [spans[i] for i in rows])
            else:
                pooled = list(self.embed_batch([texts[i] for i in rows])[:, None, :])
            for i, vectors in zip(rows, pooled):
                vectors = _normalized(vectors)
                for j in copies[i]:
                    out[j], span_out[j] = vectors[0], vectors[1:]
            pending.extend(rows)
            if cache is not None and (len(pending) >= CACHE_WRITE_ROWS or start + len(rows) >= len(unique)):
                # Written in groups: one transaction per chunk would cost more than it saves.
                cache.put_many([keys[i] for i in pending], [np.vstack([out[i:i + 1], span_out[i]]) for i in pending])
                pending = []
            if progress:
                progress(len(rows))
        return out, span_out

    def embed_query(self, text: str) -> np.ndarray:
        """One question's vector, remembered: an answer searches each state and ranks sentences
        with the same question, and each would otherwise embed it again. Safe across the web app's
        worker threads: the cache is only read and changed under its lock, the model runs outside it."""
        # dict.setdefault is atomic under the GIL: every thread gets the same lock.
        lock = self.__dict__.setdefault("_query_lock", threading.Lock())
        with lock:
            cache = self.__dict__.setdefault("_query_cache", {})
            vector = cache.get(text)
        if vector is not None:
            return vector
        vector = self.embed([text])[0]
        vector.setflags(write=False)
        with lock:
            if len(cache) >= QUERY_CACHE_SIZE and text not in cache:
                cache.pop(next(iter(cache)))  # oldest first: dicts keep insertion order
            cache[text] = vector
        return vector


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
