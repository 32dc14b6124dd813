"""A deterministic bag-of-words hashing embedder: no model, instant. For tests and dry runs.

Cosine here is plain word overlap, so relevance thresholds stay meaningful in tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import Embedder

_STOPWORDS = frozenset(
    "a an and are as at be by does do for from has have how in is it its of on or that the their "
    "this to was what when which who will with".split())


class HashEmbedder(Embedder):
    backend = "hash"
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
