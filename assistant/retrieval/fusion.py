"""First stage: one score per chunk from the ranked lists (dense chunk cosine, best-sentence
cosine, BM25), with weights fitted by cross-validation (`essa-qa fit`); a weight of 0 drops a list.

Two forms: weighted reciprocal-rank fusion, and a weighted sum of the raw cosines and of BM25
scaled by the best BM25 score in scope. The default (no fitted model for the index's embedder) is
today's: equal-weight RRF of the dense and BM25 lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LISTS = ("dense", "sentence", "bm25")
METHODS = ("rrf", "linear")
RRF_CANDIDATES = 100  # each list's top entries that take part in RRF


@dataclass(frozen=True)
class Fusion:
    method: str = "rrf"
    weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "sentence": 0.0, "bm25": 1.0})
    rrf_k: int = 60

    def fuse(self, signals: dict[str, np.ndarray], allowed: np.ndarray) -> np.ndarray:
        """Fused scores, higher is better; -inf outside `allowed`."""
        if self.method not in METHODS:
            raise ValueError(f"unknown fusion method {self.method!r}")
        fused = np.zeros(len(allowed), dtype=np.float64)
        for name in LISTS:
            weight = self.weights.get(name, 0.0)
            if weight <= 0:
                continue
            scores = np.where(allowed, signals[name], -np.inf)
            if name == "bm25":
                scores = np.where(signals[name] > 0, scores, -np.inf)  # no term in common: not listed
            if self.method == "rrf":
                fused += weight * rrf(scores, self.rrf_k)
            else:
                fused += weight * np.where(np.isfinite(scores), normalized(name, scores), 0.0)
        return np.where(allowed, fused, -np.inf)

    def to_table(self) -> dict:
        return {"method": self.method, "rrf_k": self.rrf_k, "weights": dict(self.weights)}

    @classmethod
    def from_table(cls, table: dict) -> "Fusion":
        weights = {name: float(table.get("weights", {}).get(name, 0.0)) for name in LISTS}
        return cls(method=str(table.get("method", "rrf")), weights=weights, rrf_k=int(table.get("rrf_k", 60)))


def rrf(scores: np.ndarray, k: int) -> np.ndarray:
    """1 / (k + rank) for the top RRF_CANDIDATES finite scores, 0 elsewhere."""
    out = np.zeros(len(scores), dtype=np.float64)
    n = min(RRF_CANDIDATES, len(scores))
    if not n:
        return out
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.isfinite(scores[top])]
    ranked = top[np.argsort(-scores[top], kind="stable")]
    out[ranked] = 1.0 / (k + np.arange(1, len(ranked) + 1))
    return out


def normalized(name: str, scores: np.ndarray) -> np.ndarray:
    """Cosines as they are; BM25 divided by the best in scope (its scale depends on the query)."""
    if name != "bm25":
        return scores
    finite = scores[np.isfinite(scores)]
    best = float(finite.max()) if len(finite) else 0.0
    return scores / best if best > 0 else np.zeros_like(scores)
