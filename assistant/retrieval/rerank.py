"""Second stage: the top RERANK_DEPTH first-stage candidates re-ordered by a learned linear score
over what is known about each (fitted with cross-validation by `essa-qa fit`).

The strongest offline signals: the best sentence's cosine (sentence vectors stored at index
time, so nothing is embedded per question), how much of the question's topic the header (plan
title and section path) and the text hold, the first-stage evidence, and the kind of text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RERANK_DEPTH = 40
FEATURES = ("dense", "sentence", "sentence_2", "bm25", "first_rank", "header", "coverage",
            "template", "toc", "table", "intent")


@dataclass(frozen=True)
class CandidateSignals:
    """Everything the features are computed from, for one question's candidates (row = candidate)."""

    dense: np.ndarray
    sentence: np.ndarray
    sentence_2: np.ndarray  # mean of the two best sentences (a single lucky sentence is weaker)
    bm25: np.ndarray  # scaled by the best BM25 score in scope
    first_rank: np.ndarray  # 0-based rank in the first stage
    header: np.ndarray  # idf-weighted share of the question's topical terms in the header
    coverage: np.ndarray  # ... in the chunk's own text
    kinds: tuple[str, ...]
    intent: np.ndarray  # 1 when the chunk carries an approach the question asks about

    def matrix(self) -> np.ndarray:
        kinds = np.array(self.kinds)
        columns = {
            "dense": self.dense, "sentence": self.sentence, "sentence_2": self.sentence_2,
            "bm25": self.bm25, "first_rank": np.log1p(self.first_rank), "header": self.header,
            "coverage": self.coverage, "template": (kinds == "template").astype(float),
            "toc": (kinds == "toc").astype(float), "table": (kinds == "table").astype(float),
            "intent": self.intent,
        }
        return np.column_stack([np.asarray(columns[f], dtype=np.float64) for f in FEATURES])
