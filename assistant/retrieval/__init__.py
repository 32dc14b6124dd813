"""Retrieval: lexical (BM25) and dense (chunk and sentence vectors) signals, a fused first stage
and a learned second stage. `Retriever` is the entry point."""

from .fusion import Fusion
from .search import MODES, QuerySignals, RetrievalModels, Retriever

__all__ = ["Fusion", "MODES", "QuerySignals", "RetrievalModels", "Retriever"]
